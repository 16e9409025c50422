"""What a replica fetched and did not acknowledge (issue #16: bench_cluster once lost 20 record documents).

Two "replicas" of one durable consumer (each its own NATS connection, common.bus.Subscription) on a real
nats-server: a batch worked on for longer than ack_wait is not handed out a second time (the consumer says
"in progress"), and the events a replica held when it died reach the other replica within ack_wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter

import nats
import pytest
from google.protobuf.wrappers_pb2 import StringValue

from common import pki
from common.bus import Bus, Subscription, stream_name
from common.config import Settings
from common.events import outbox_row, unpack

SOURCE = "handovertest"
DURABLE = "handovertest-consumer"
ACK_WAIT = 1.5


class Replica:
    """One consumer replica: counts every handler call per event value; `gate` holds the handler."""

    def __init__(self, nats_url: str, *, work_s: float = 0.0) -> None:
        self.bus = Bus(Settings(nats_url=nats_url), service=SOURCE)
        self.work_s = work_s
        self.calls: Counter[str] = Counter()
        self.gate = asyncio.Event()
        self.gate.set()
        self.sub = Subscription(durable=DURABLE, source=SOURCE, types=["item.recorded"], handler=self.handle, batch=8)
        self.sub.ack_wait = ACK_WAIT
        self.task: asyncio.Task | None = None

    async def handle(self, env) -> None:
        self.calls[unpack(env, StringValue).value] += 1
        await self.gate.wait()
        await asyncio.sleep(self.work_s)

    async def start(self) -> None:
        await self.bus.connect()
        self.task = asyncio.create_task(self.sub.run(self.bus))

    async def die(self) -> None:
        """As SIGKILL leaves it: nothing acknowledged, nothing said to the server, the connection gone."""
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.bus.close()


@pytest.fixture
async def js(nats_server):
    nc = await nats.connect(nats_server.url, tls=pki.ssl_context())
    js = nc.jetstream()
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream(stream_name(SOURCE))
    provisioner = Bus(Settings(nats_url=nats_server.url), service=SOURCE)
    await provisioner.connect()
    await provisioner.ensure_stream(SOURCE)
    await provisioner.close()
    yield js
    await nc.close()


async def publish(js, values: list[str]) -> None:
    for value in values:
        row = outbox_row(
            source=SOURCE,
            type="item.recorded",
            subject="items/x",
            payload=StringValue(value=value),
            trace_id="",
            actor="",
        )
        await js.publish(row["nats_subject"], row["envelope"], headers={"Nats-Msg-Id": row["event_id"]})


async def until(check, seconds: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if check():
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {seconds}s")


async def test_a_batch_worked_on_longer_than_ack_wait_is_not_handed_out_again(nats_server, js):
    replicas = [Replica(nats_server.url, work_s=0.5), Replica(nats_server.url, work_s=0.5)]
    for r in replicas:
        await r.start()
    try:
        values = [str(i) for i in range(12)]
        await publish(js, values)  # ≥ 6 events, 3 s and more, on whichever replica fetched them: 2× ack_wait
        await until(lambda: sum(sum(r.calls.values()) for r in replicas) >= len(values), seconds=30)
        await asyncio.sleep(2 * ACK_WAIT)  # a redelivery would have come by now
        calls = replicas[0].calls + replicas[1].calls
        assert sorted(calls) == sorted(values)
        assert set(calls.values()) == {1}, f"handed out twice: {calls}"
    finally:
        for r in replicas:
            await r.die()


async def test_the_events_a_dead_replica_held_reach_the_other_within_ack_wait(nats_server, js):
    values = [str(i) for i in range(5)]
    await publish(js, values)
    doomed = Replica(nats_server.url)
    doomed.gate.clear()  # it fetches the five in one batch and never finishes the first
    await doomed.start()
    await until(lambda: doomed.calls, seconds=10)
    survivor = Replica(nats_server.url)
    await survivor.start()
    await asyncio.sleep(2 * ACK_WAIT)  # the doomed replica keeps its batch while it lives
    assert not survivor.calls
    await doomed.die()
    try:
        waited = await until(lambda: set(survivor.calls) == set(values), seconds=4 * ACK_WAIT)
        assert waited <= ACK_WAIT + 1.5
    finally:
        await survivor.die()
