"""Background work is supervised (issue 13: a consumer once died silently on an empty fetch).

A real service (common.server.serve) in this process with a durable consumer on a real nats-server: a
failure is logged with its traceback and the consumer starts again without losing an event; a failure
that persists turns health NOT_SERVING.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.request
from pathlib import Path

import nats
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common import clients, pki
from common.bus import Bus, Subscription, stream_name
from common.config import Settings
from common.events import outbox_row, unpack
from common.server import Service, serve
from supervisionctl.natsd import free_port
from tests import auth_support

SOURCE = "supervisetest"
DURABLE = "supervisetest-consumer"


class ProbeSettings(Settings):
    probe_port: int = 0
    probe_metrics_port: int | None = None


class Probe:
    """A service whose consumer records what it handled; `gate` lets a test hold the handler (a stall)."""

    def __init__(self, tmp_path: Path, nats_url: str) -> None:
        self.settings = ProbeSettings(
            data_dir=tmp_path, nats_url=nats_url, probe_port=free_port(), probe_metrics_port=free_port()
        )
        self.seen: list[str] = []
        self.fail_once: set[str] = set()
        self.gate = asyncio.Event()
        self.gate.set()

    async def handle(self, env) -> None:
        await self.gate.wait()
        value = unpack(env, StringValue).value
        if value in self.fail_once:
            self.fail_once.discard(value)
            raise RuntimeError(f"injected handler failure on {value}")
        if value not in self.seen:  # idempotent, as every handler must be
            self.seen.append(value)

    def service(self) -> Service:
        sub = Subscription(durable=DURABLE, source=SOURCE, types=["item.recorded"], handler=self.handle, batch=8)
        sub.ack_wait = 2.0
        return Service(
            name="probe",
            settings=self.settings,
            servicers=[],
            bus=Bus(self.settings, service="probe"),
            subscriptions=[sub],
        )


@pytest.fixture
async def running(tmp_path, nats_server):
    nc = await nats.connect(nats_server.url, tls=pki.ssl_context())
    js = nc.jetstream()
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream(stream_name(SOURCE))
    probe = Probe(tmp_path, nats_server.url)
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(probe.service(), ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), 30)
    yield probe, js
    probe.gate.set()
    stop.set()
    await asyncio.wait_for(task, 30)
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


async def until(check, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ok = check()
        if ok if not asyncio.iscoroutine(ok) else await ok:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {seconds}s")


async def health(probe: Probe, service: str = "") -> str:
    async with auth_support.aio_channel(f"127.0.0.1:{probe.settings.probe_port}") as ch:
        request = health_pb2.HealthCheckRequest(service=service)
        resp = await health_pb2_grpc.HealthStub(ch).Check(request, timeout=2)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)


def scrape(probe: Probe) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{probe.settings.probe_metrics_port}/metrics", timeout=5) as r:
        return r.read().decode()


async def test_a_consumer_whose_fetch_fails_is_logged_with_its_traceback_and_resumes_without_losing_an_event(
    running, caplog
):
    probe, js = running
    caplog.set_level(logging.INFO)
    await asyncio.sleep(1.5)  # a few empty fetches first: they once ended the consumer (envs[0] on [])
    await publish(js, ["1", "2", "3"])
    await until(lambda: probe.seen == ["1", "2", "3"])
    await js.delete_consumer(stream_name(SOURCE), DURABLE)  # its pull subscription now fails
    await publish(js, ["4", "5"])
    await until(lambda: sorted(probe.seen) == ["1", "2", "3", "4", "5"])
    failures = [r for r in caplog.records if f"background task consumer-{DURABLE} failed" in r.getMessage()]
    assert failures and failures[0].exc_info is not None  # the traceback is in the log
    assert await health(probe) == "SERVING"
    assert f'bjsv_task_restarts_total{{task="consumer-{DURABLE}"}}' in scrape(probe)


async def test_a_handler_exception_is_logged_with_its_traceback_and_the_event_is_redelivered(running, caplog):
    probe, js = running
    caplog.set_level(logging.WARNING)
    probe.fail_once = {"b"}
    await publish(js, ["a", "b", "c"])
    await until(lambda: sorted(probe.seen) == ["a", "b", "c"])
    (failure,) = [r for r in caplog.records if "injected handler failure" in str(r.exc_info and r.exc_info[1])]
    assert "will retry" in failure.getMessage()


async def test_a_failure_that_persists_turns_health_not_serving_but_leaves_the_api_in_rotation(running):
    probe, js = running
    assert await health(probe) == "SERVING"
    await js.delete_stream(stream_name(SOURCE))  # the consumer cannot even be declared again
    await until(lambda: _is(health(probe), "NOT_SERVING"), seconds=30)
    assert "bjsv_tasks_failing 1.0" in scrape(probe)
    # the APIs still answer: balancers and kubelet readiness/liveness ask this status (NATS elections once
    # took every notify replica out of rotation)
    assert await health(probe, clients.API_HEALTH) == "SERVING"


async def _is(value, expected) -> bool:
    return (await value) == expected


async def test_a_stalled_consumer_shows_its_lag_in_metrics(running):
    probe, js = running
    probe.gate.clear()  # the handler hangs: the consumer stalls
    await publish(js, [str(i) for i in range(40)])
    await until(lambda: _lag(scrape(probe)) >= 20)
    assert "bjsv_consumer_ack_pending" in scrape(probe)


def _lag(text: str) -> float:
    for line in text.splitlines():
        if line.startswith(f'bjsv_consumer_lag{{durable="{DURABLE}"}}'):
            return float(line.split()[-1])
    return 0.0
