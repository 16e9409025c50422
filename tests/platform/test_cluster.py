"""The cluster profile under faults (issue #16), the suite's shorter run of bench/bench_cluster.py: three TLS
nats-server nodes with R3 streams, a private PostgreSQL, two replicas of every service behind round-robin
health-checked targets; a fixed-rate workload while the meta leader and the registry stream's leader are
SIGKILLed, one replica of every service is SIGKILLed, PostgreSQL restarts and a NATS node is frozen.

Skipped with a reason when Debian's initdb/pg_ctl are not installed (deploy/bootstrap.py installs them).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import SERVICES

ROOT = Path(__file__).resolve().parents[2]
LOSS_KEYS = ("expected", "lost_events", "lost_sample", "duplicate_effects", "faults")


def _bench():
    spec = importlib.util.spec_from_file_location("bench_cluster", ROOT / "bench" / "bench_cluster.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


pytestmark = pytest.mark.skipif(
    not (shutil.which("initdb") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))),
    reason="PostgreSQL server binaries (initdb/pg_ctl) not installed: apt-get install postgresql",
)


@pytest.mark.slow
@pytest.mark.timeout(360)  # ~80 s alone; past the suite's 180 s default when other suites share the 2 cores
def test_no_write_event_or_badge_code_is_lost_or_doubled_while_nodes_replicas_and_the_database_fail(tmp_path):
    bench = _bench()
    result = bench.run(
        argparse.Namespace(rate=1.0, settle=3.0, hold=2.0, freeze=4.0, faults=None, out=tmp_path / "cluster.json")
    )
    assert result["units"] > 20 and result["acknowledged"] > 50, result
    assert result["persisted"] == result["acknowledged"], result["missing"]
    assert result["lost_events"] == 0 and result["duplicate_effects"] == 0, {k: result[k] for k in LOSS_KEYS}
    assert result["duplicate_codes"] == 0
    assert result["abandoned_units"] == 0, result
    assert set(result["max_unavailable_s"]) == {
        "kill_meta_leader",
        "kill_registry_stream_leader",
        "kill_one_replica_each",
        "restart_postgresql",
        "freeze_nats_node",
    }
    assert all(window <= 10.0 for window in result["max_unavailable_s"].values()), result["max_unavailable_s"]
    # Reads of the replica no fault kills go on answering (goal ≤ 1 s). The balanced reads are reported, not
    # asserted: on this shared 2-core machine one of them can pass its 5 s deadline while four replicas restart.
    kill = result["faults"]["kill_one_replica_each"]
    assert kill["max_unavailable_unaffected_reads_s"] <= 1.0, kill


def test_up_cluster_status_shows_every_node_and_replica_and_down_stops_them(tmp_path):
    from supervisionctl.cluster import unused_port

    ctl = str(Path(sys.executable).parent / "supervisionctl")
    taken: set[int] = set()
    env = {
        **os.environ,
        "BJSV_DATA_DIR": str(tmp_path / "data"),
        "BJSV_NATS_URL": f"nats://127.0.0.1:{unused_port('127.0.0.1', taken)}",
        **{f"BJSV_{s.upper()}_PORT": str(unused_port("127.0.0.1", taken)) for s in SERVICES},
    }
    env.pop("DATABASE_URL", None)  # the private PostgreSQL, never the machine's shared one

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([ctl, *args], env=env, capture_output=True, text=True, timeout=180)

    up = run("up", "--cluster", "--detach")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        exports = (tmp_path / "data" / "cluster.env").read_text()
        assert "BJSV_NATS_REPLICAS='3'" in exports and "BJSV_REGISTRY_TARGET='ipv4:" in exports
        status = run("status", "--json")
        report = json.loads(status.stdout)
        cluster = report["cluster"]
        assert sorted(cluster["nodes"]) == ["nats-1", "nats-2", "nats-3"]
        assert all(n["healthy"] for n in cluster["nodes"].values())
        assert sum(n["meta_leader"] for n in cluster["nodes"].values()) == 1
        assert {r["health"] for r in cluster["replicas"].values()} == {"SERVING"} and len(cluster["replicas"]) == 8
        # through the balanced targets (round-robin with health checks over both replicas)
        assert {s["health"] for s in report["services"].values()} == {"SERVING"}, report["services"]
        assert all(s["target"].startswith("ipv4:") for s in report["services"].values())
    finally:
        down = run("down")
        shutil.rmtree((tmp_path / "data" / "postgres").resolve(), ignore_errors=True)  # as root: in /tmp
    assert down.returncode == 0, down.stdout + down.stderr
    assert "postgres" in down.stdout and "nats-3" in down.stdout
    left = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp_path / "data") not in left
