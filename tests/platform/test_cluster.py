"""The cluster profile under faults (issue #16), the suite's shorter run of bench/bench_cluster.py: three TLS
nats-server nodes with R3 streams, a private PostgreSQL, two replicas of every service behind round-robin
health-checked targets; a fixed-rate workload while the meta leader and the registry stream's leader are
SIGKILLed, one replica of every service is SIGKILLed, PostgreSQL restarts and a NATS node is frozen.

Skipped with a reason when Debian's initdb/pg_ctl are not installed (deploy/bootstrap.py installs them).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_cluster", ROOT / "bench" / "bench_cluster.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(
    not (shutil.which("initdb") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))),
    reason="PostgreSQL server binaries (initdb/pg_ctl) not installed: apt-get install postgresql",
)
def test_no_write_event_or_badge_code_is_lost_or_doubled_while_nodes_replicas_and_the_database_fail(tmp_path):
    bench = _bench()
    result = bench.run(argparse.Namespace(rate=1.0, settle=3.0, hold=2.0, freeze=4.0, out=tmp_path / "cluster.json"))
    assert result["units"] > 20 and result["acknowledged"] > 50, result
    assert result["persisted"] == result["acknowledged"], result["missing"]
    assert result["lost_events"] == 0 and result["duplicate_effects"] == 0, result
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
