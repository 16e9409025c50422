"""Two notify replicas on one database (a SQLite file, or one PostgreSQL schema) share the durable
consumer, the timers and the deliveries: every notification exists once and every e-mail is sent once,
although both replicas fire timers and deliver at the same time (claims: BEGIN IMMEDIATE on SQLite,
FOR UPDATE SKIP LOCKED on PostgreSQL; unique idempotency keys as the backstop)."""

import asyncio
import datetime as dt

import nats
import notify_support as support
import pytest
from notify_support import INSTITUTION, SmtpSink, publish, start_inprocess, stop_inprocess, wait_for

from bjsv.notify.v1 import notify_pb2 as K
from bjsv.notify.v1 import notify_pb2_grpc
from common import pki
from common.clock import SHANGHAI
from supervisionctl.natsd import free_port
from tests import auth_support

pytestmark = pytest.mark.asyncio(loop_scope="session")

N = 12  # dispatches, 2 members each


async def _two_replicas_deliver_exactly_once(nats_server, data_dir, first: int, **db):
    smtp = SmtpSink(free_port()).start()
    replicas = [await start_inprocess(data_dir, nats_server.url, smtp, **db) for _ in range(2)]
    channels = [auth_support.aio_channel(f"127.0.0.1:{port}") for port, _, _ in replicas]
    a, b = (notify_pb2_grpc.NotifyServiceStub(c) for c in channels)
    nc = await nats.connect(nats_server.url, tls=pki.ssl_context())
    try:
        await a.SetContact(K.SetContactRequest(contact=K.Contact(recipient=INSTITUTION, email="inst@x.cn")))
        await a.SetClock(K.SetClockRequest(fixed_time=support.ts(dt.datetime(2025, 9, 30, 18, tzinfo=SHANGHAI))))
        for n in range(first, first + N):
            await publish(nc.jetstream(), support.dispatch_created(n, end=dt.date(2025, 9, 30)))

        async def all_in():
            r = await b.ListNotifications(K.ListNotificationsRequest(recipient=INSTITUTION, page_size=1))
            return r.total_size >= N

        await wait_for(all_in, limit=60, what="dispatch notices")
        # the reminder day, set on replica B; both replicas fire at once
        await b.SetClock(K.SetClockRequest(fixed_time=support.ts(dt.datetime(2025, 10, 11, 9, tzinfo=SHANGHAI))))
        await asyncio.gather(
            a.RunDueTimers(K.RunDueTimersRequest()),
            b.RunDueTimers(K.RunDueTimersRequest()),
            a.RunDueTimers(K.RunDueTimersRequest()),
        )
        expected_mails = N + 2 * N  # dispatch notice + one Annex 4 reminder per supervisor
        await wait_for(lambda: _ge(len(smtp.keys()), expected_mails), limit=60, what="mails")
        await asyncio.sleep(0.5)
        keys = smtp.keys()
        assert len(keys) == expected_mails and len(set(keys)) == expected_mails
        inbox = await a.ListNotifications(K.ListNotificationsRequest(recipient=INSTITUTION, page_size=500))
        assert inbox.total_size == expected_mails
        assert len({n.idempotency_key for n in inbox.notifications}) == expected_mails
        for n in range(first, first + N):
            sup = await b.ListNotifications(K.ListNotificationsRequest(recipient=f"supervisors/{n * 100}"))
            assert sup.total_size == 2  # dispatch notice + Annex 3 reminder, once
    finally:
        for c in channels:
            await c.close()
        await nc.close()
        for _port, stop, task in replicas:
            await stop_inprocess(stop, task)
        smtp.stop()


async def _ge(value, n):
    return value >= n


async def test_two_replicas_on_one_sqlite_file_fire_and_deliver_exactly_once(nats_server, tmp_path):
    await _two_replicas_deliver_exactly_once(nats_server, tmp_path, first=31)


@pytest.mark.postgres
async def test_two_replicas_on_postgresql_fire_and_deliver_exactly_once(nats_server, tmp_path, pg_url):
    url, prefix = pg_url
    await _two_replicas_deliver_exactly_once(nats_server, tmp_path, first=61, database_url=url, db_schema_prefix=prefix)
