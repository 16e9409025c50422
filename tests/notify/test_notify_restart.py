"""Restart test: the notify service is killed (SIGKILL) while timers are pending *and* while e-mails are
in the middle of the SMTP conversation; after the restart every due notification is delivered exactly
once — counted at a real SMTP server and in the inboxes. A second kill right after delivering and a
third start change nothing. Runs `python -m services.notify` as a subprocess, like production."""

import datetime as dt

import nats
import notify_support as support
import pytest
from notify_support import INSTITUTION, NotifyProcess, SmtpSink, publish, wait_for

from bjsv.notify.v1 import notify_pb2 as K
from common import pki
from supervisionctl.natsd import free_port

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


async def _ge(value, n):
    return value >= n


async def _at_least(coro, n):
    return (await coro) >= n


async def total(stub, recipient, kinds=()):
    r = await stub.ListNotifications(K.ListNotificationsRequest(recipient=recipient, page_size=1, kinds=kinds))
    return r.total_size


async def test_killed_with_pending_timers_and_mid_smtp_send_delivers_everything_exactly_once_after_restart(
    nats_server, tmp_path
):
    smtp = SmtpSink(free_port()).start()
    proc = NotifyProcess(
        data_dir=tmp_path / "data",
        port=free_port(),
        nats_url=nats_server.url,
        env={
            "BJSV_SMTP_HOST": "127.0.0.1",
            "BJSV_SMTP_PORT": str(smtp.port),
            "BJSV_NOTIFY_CLOCK": "fixed:2025-09-30T18:00:00+08:00",
            "BJSV_NOTIFY_TICK_INTERVAL": "0.05",
            "BJSV_NOTIFY_DELIVERY_LEASE": "1.5",
            "BJSV_NOTIFY_RETRY_BASE_DELAY": "0.05",
            "BJSV_DOCUMENTS_PORT": str(free_port()),
            "BJSV_SHUTDOWN_GRACE": "0.5",
            "BJSV_LOG_LEVEL": "WARNING",
        },
    )
    inst = "institutions/1100015555"
    dispatches = range(11, 16)
    members = [f"supervisors/{n * 100 + i}" for n in dispatches for i in range(2)]
    nc = await nats.connect(nats_server.url, tls=pki.ssl_context())
    try:
        proc.start()
        ch, stub = proc.stub()
        for r in [INSTITUTION, inst, *members]:
            email = f"{r.replace('/', '-')}@x.cn"
            await stub.SetContact(K.SetContactRequest(contact=K.Contact(recipient=r, email=email)))
        for n in dispatches:
            await publish(nc.jetstream(), support.dispatch_created(n, end=dt.date(2025, 9, 30)))
        await wait_for(lambda: _ge(len(smtp.keys()), 15), limit=60, what="15 dispatch mails")  # 10 members + 5

        async def pending():
            t = await stub.ListTimers(K.ListTimersRequest(state=K.TIMER_STATE_PENDING, page_size=500))
            return len(t.timers) >= 5 * 4 * 2  # reminders and due-day notices (+ overdue chain)

        await wait_for(pending, what="timers stored")

        smtp.stall()  # SMTP sessions now hang at RCPT: e-mails mid-send
        for i in range(10):
            await publish(nc.jetstream(), support.badge_filed(700 + i, institution=inst))
        await wait_for(lambda: _ge(smtp.stalled_sessions, 1), what="a stalled SMTP session")
        await wait_for(lambda: _at_least(total(stub, inst), 10), what="badge confirmations in the inbox")
        await ch.close()
        proc.kill()  # SIGKILL: timers pending, SMTP conversations open
        smtp.release()
        assert len(smtp.keys()) == 15

        # restart on the reminder day (the make-up Saturday 2025-10-11): 20 reminders + 10 resent mails
        proc.start(BJSV_NOTIFY_CLOCK="fixed:2025-10-11T09:00:00+08:00")
        ch, stub = proc.stub()
        await wait_for(lambda: _ge(len(smtp.keys()), 45), limit=60, what="45 mails after restart")

        async def all_email_delivered():
            r = await stub.ListNotifications(K.ListNotificationsRequest(recipient=inst, page_size=50))
            states = [d.state for n in r.notifications for d in n.deliveries if d.channel == K.CHANNEL_EMAIL]
            return len(states) == 10 and set(states) == {K.DELIVERY_STATE_DELIVERED}

        await wait_for(all_email_delivered, what="deliveries marked delivered")
        await ch.close()
        proc.kill()  # and once more, right after delivering
        proc.start(BJSV_NOTIFY_CLOCK="fixed:2025-10-11T09:00:00+08:00")
        ch, stub = proc.stub()
        await stub.RunDueTimers(K.RunDueTimersRequest())
        keys = smtp.keys()
        assert len(keys) == 45 and len(set(keys)) == 45  # at the SMTP server: exactly once
        reminders = [K.NOTIFICATION_KIND_DEADLINE_REMINDER]
        inst_inbox = await stub.ListNotifications(K.ListNotificationsRequest(recipient=INSTITUTION, page_size=100))
        kinds = [(n.kind, n.title) for n in inst_inbox.notifications]
        assert await total(stub, INSTITUTION, reminders) == 10, kinds  # Annex 4 per external supervisor
        for m in members:
            assert await total(stub, m, reminders) == 1  # Annex 3 to each member
            assert await total(stub, m) == 2  # dispatch notice + reminder
        assert await total(stub, inst) == 10
        await ch.close()
    finally:
        proc.stop()
        await nc.close()
        smtp.stop()
