"""SMTP down: retries with backoff, then a dead letter with the reason; nothing lost (the inbox has
everything), nothing duplicated once the server is back and the dead letters are retried."""

import grpc
import nats
import notify_support as support
import pytest
from notify_support import SmtpSink, publish, start_inprocess, stop_inprocess, wait_for

from bjsv.notify.v1 import notify_pb2 as K
from bjsv.notify.v1 import notify_pb2_grpc
from common import pki
from supervisionctl.natsd import free_port
from tests import auth_support

pytestmark = pytest.mark.asyncio(loop_scope="session")

INST = "institutions/1100017777"


async def test_smtp_down_retries_then_dead_letters_with_reason_and_redelivers_once_when_back(nats_server, tmp_path):
    smtp = SmtpSink(free_port())  # not started: connection refused
    port, stop, task = await start_inprocess(tmp_path, nats_server.url, smtp)
    nc = await nats.connect(nats_server.url, tls=pki.ssl_context())
    channel = auth_support.aio_channel(f"127.0.0.1:{port}")
    stub = notify_pb2_grpc.NotifyServiceStub(channel)
    try:
        await stub.SetContact(
            K.SetContactRequest(contact=K.Contact(recipient=INST, email="inst@example.cn", display_name="某评价机构"))
        )
        for i in range(5):
            await publish(nc.jetstream(), support.badge_filed(500 + i, institution=INST))

        async def dead():
            r = await stub.ListDeadLetters(K.ListDeadLettersRequest(channel=K.CHANNEL_EMAIL))
            return r.dead_letters if len(r.dead_letters) == 5 else None

        letters = await wait_for(dead, limit=40, what="5 dead letters")
        assert all(d.attempts == 3 and d.reason.startswith("SMTP_UNAVAILABLE") for d in letters)
        assert {d.recipient for d in letters} == {INST}
        inbox = await stub.ListNotifications(K.ListNotificationsRequest(recipient=INST))
        assert inbox.total_size == 5  # nothing lost
        nats_states = {d.state for n in inbox.notifications for d in n.deliveries if d.channel == K.CHANNEL_NATS}
        assert nats_states == {K.DELIVERY_STATE_DELIVERED}

        smtp.start()
        for d in letters:
            await stub.RetryDeadLetter(K.RetryDeadLetterRequest(name=d.name))

        async def delivered():
            return len(smtp.keys()) >= 5

        await wait_for(delivered, what="5 mails")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.RetryDeadLetter(K.RetryDeadLetterRequest(name=letters[0].name))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        keys = smtp.keys()
        assert len(keys) == 5 and len(set(keys)) == 5  # each exactly once
        assert {n.idempotency_key for n in inbox.notifications} == set(keys)
        left = await stub.ListDeadLetters(K.ListDeadLettersRequest())
        assert left.dead_letters == []
    finally:
        await channel.close()
        await nc.close()
        await stop_inprocess(stop, task)
        smtp.stop()
