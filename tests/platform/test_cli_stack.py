"""The operator's path: `supervisionctl up --detach` → four services SERVING with reflection →
`status --json` → `down` leaves no process behind (all on free loopback ports, a temporary data folder)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from common.config import SERVICES
from supervisionctl.natsd import free_port
from tests import auth_support

CTL = str(Path(sys.executable).parent / "supervisionctl")


@pytest.fixture
def env(tmp_path):
    ports = {s: free_port() for s in SERVICES}
    return {
        **os.environ,
        "BJSV_DATA_DIR": str(tmp_path / "data"),
        "BJSV_NATS_URL": f"nats://127.0.0.1:{free_port()}",
        **{f"BJSV_{s.upper()}_PORT": str(p) for s, p in ports.items()},
        "BJSV_CONSOLE_PORT": str(free_port()),  # `up` starts the console too; never the shared 8080
    }


def ctl(env, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([CTL, *args], env=env, capture_output=True, text=True, timeout=timeout)


def list_services(target: str) -> set[str]:
    with auth_support.channel(target) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        return {s.name for r in responses for s in r.list_services_response.service}


def our_processes(data_dir: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    pids = set()
    run = Path(data_dir) / "run"
    if run.exists():
        pids = {p.read_text().strip() for p in run.glob("*.pid")}
    return [ln for ln in out.splitlines() if ln.split(None, 1)[0] in pids or data_dir in ln]


def test_up_status_down_leaves_no_process(env):
    up = ctl(env, "up", "--detach")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        status = ctl(env, "status", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert {name: s["health"] for name, s in report["services"].items()} == {s: "SERVING" for s in SERVICES}
        assert report["nats"]["reachable"] and "BJSV_REGISTRY" in report["nats"]["streams"]
        found = set()
        for name in SERVICES:
            found |= list_services(report["services"][name]["target"])
        expected = {f"bjsv.{s}.v1.{s.capitalize()}Service" for s in SERVICES} | {"bjsv.registry.v1.SupervisionService"}
        assert expected <= found
        # A second `up` on the same data folder refuses instead of fighting over ports.
        again = ctl(env, "up", "--detach")
        assert again.returncode == 2
    finally:
        down = ctl(env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "已强制结束" not in down.stdout  # every service stopped on SIGTERM by itself
    assert our_processes(env["BJSV_DATA_DIR"]) == []
