"""Operating one service of a running stack (issue 13): `supervisionctl stop/start/restart SERVICE`, `status`
showing consumer lag and outbox backlog with a non-zero exit over the thresholds, `outbox list`, and each
service's Prometheus /metrics — all through the real CLI against a real detached stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from common import pki
from common.config import SERVICES
from supervisionctl.natsd import free_port

CTL = str(Path(sys.executable).parent / "supervisionctl")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    data = tmp_path_factory.mktemp("ops") / "data"
    env = {
        **os.environ,
        "BJSV_DATA_DIR": str(data),
        "BJSV_NATS_URL": f"nats://127.0.0.1:{free_port()}",
        **{f"BJSV_{s.upper()}_PORT": str(free_port()) for s in SERVICES},
        **{f"BJSV_{s.upper()}_METRICS_PORT": str(free_port()) for s in SERVICES},
        "BJSV_CONSOLE_PORT": str(free_port()),  # `up` starts the console too; never the shared 8080
    }
    up = ctl(env, "up", "--detach")
    assert up.returncode == 0, up.stdout + up.stderr
    yield env
    ctl(env, "down")


def ctl(env, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([CTL, *args], env=env, capture_output=True, text=True, timeout=timeout)


def pid(env, service: str) -> int:
    return int((Path(env["BJSV_DATA_DIR"]) / "run" / f"{service}.pid").read_text())


def status(env, *args) -> tuple[int, dict]:
    result = ctl(env, "status", "--json", *args)
    return result.returncode, json.loads(result.stdout)


def test_each_service_serves_prometheus_metrics_with_rpc_counts_and_outbox_backlog(env):
    ctl(env, "status")  # health checks are RPCs too
    for service in SERVICES:
        text = metrics_text(env, service)
        assert 'bjsv_rpc_total{code="OK",method="/grpc.health.v1.Health/Check"}' in text, service
        assert "bjsv_rpc_duration_seconds_bucket" in text and "bjsv_outbox_backlog" in text, service


def test_restart_one_service_while_the_others_keep_running(env):
    before = {s: pid(env, s) for s in SERVICES}
    result = ctl(env, "restart", "notify")
    assert result.returncode == 0, result.stdout + result.stderr
    after = {s: pid(env, s) for s in SERVICES}
    assert after["notify"] != before["notify"]
    assert {s: after[s] for s in SERVICES if s != "notify"} == {s: before[s] for s in SERVICES if s != "notify"}
    code, report = status(env)
    assert code == 0 and report["services"]["notify"]["health"] == "SERVING"


def test_a_stopped_consumer_shows_lag_in_status_which_fails_until_it_catches_up(env):
    assert ctl(env, "stop", "documents").returncode == 0
    seeded = ctl(env, "seed", "--demo")  # issues badges: documents-badge-issued has events to render
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    deadline = time.monotonic() + 30
    while True:
        code, report = status(env, "--max-lag", "0")
        lag = {c["durable"]: c["lag"] for c in report["nats"]["consumers"]}
        if any(lag.get(d, 0) > 0 for d in lag if d.startswith("documents-badge")) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert code == 3 and report["services"]["documents"]["health"] == "UNREACHABLE"
    assert any("documents-badge" in p and "落后" in p for p in report["problems"]), report["problems"]
    plain = ctl(env, "status", "--max-lag", "0")
    assert "消费者" in plain.stdout and "发件箱" in plain.stdout

    started = ctl(env, "start", "documents")
    assert started.returncode == 0, started.stdout + started.stderr
    deadline = time.monotonic() + 60
    while (code := status(env)[0]) != 0 and time.monotonic() < deadline:
        time.sleep(1)
    assert code == 0


def test_outbox_list_says_when_nothing_is_parked_and_usage_errors_exit_2(env):
    listed = ctl(env, "outbox", "list")
    assert listed.returncode == 0 and "没有已搁置的事件" in listed.stdout
    assert json.loads(ctl(env, "outbox", "list", "--json").stdout) == []
    assert ctl(env, "outbox", "discard", "registry", "no-such-id").returncode == 2  # needs --yes
    missing = ctl(env, "outbox", "retry", "registry", "no-such-id")
    assert missing.returncode == 1 and "未找到" in missing.stderr
    assert ctl(env, "restart", "nosuch").returncode == 2


def metrics_text(env, service: str) -> str:
    url = f"http://127.0.0.1:{env[f'BJSV_{service.upper()}_METRICS_PORT']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def test_a_rules_engine_worker_that_dies_is_replaced_and_counted_in_metrics(env):
    children = subprocess.run(["ps", "--ppid", str(pid(env, "rules")), "-o", "pid="], capture_output=True, text=True)
    workers = [int(p) for p in children.stdout.split()]
    assert workers, "the rules service runs its engine in worker processes"
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while "bjsv_rules_worker_restarts_total 1.0" not in metrics_text(env, "rules"):
        assert time.monotonic() < deadline, "worker restart not counted"
        time.sleep(0.5)


def test_a_consumer_that_keeps_failing_turns_health_not_serving_and_status_non_zero(env):
    """Last in this module: it breaks the stack (the registry's stream is deleted under its consumers)."""
    import asyncio

    import nats

    async def delete_stream() -> None:
        nc = await nats.connect(env["BJSV_NATS_URL"], tls=pki.ssl_context())
        try:
            await nc.jetstream().delete_stream("BJSV_REGISTRY")
        finally:
            await nc.close()

    asyncio.run(delete_stream())
    deadline = time.monotonic() + 60
    while (report := status(env)[1])["services"]["documents"]["health"] != "NOT_SERVING":
        assert time.monotonic() < deadline, report["services"]
        time.sleep(1)
    assert status(env)[0] == 3
    assert "background task consumer-documents" in (Path(env["BJSV_DATA_DIR"]) / "logs" / "documents.log").read_text()
