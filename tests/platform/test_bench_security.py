"""The security bench (bench/bench_security.py, issue #12) in a short run, so it cannot rot: both stacks
answer every call at the bench's rates, the baseline really runs without authentication while the secured
stack refuses a call without a token, and the figures reach the results file. The ≤ 1 ms verdict is the
bench's to print on a quiet machine, not this test's."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_security", ROOT / "bench" / "bench_security.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(300)
def test_security_bench_drives_both_configurations_at_the_same_rates_and_writes_its_figures(tmp_path):
    bench = _bench()
    out = tmp_path / "security.json"
    result = bench.run(argparse.Namespace(seconds=1.0, rounds=2, badges=40, out=out))
    assert result["without_token"] == {"secured": "UNAUTHENTICATED", "baseline": "OK"}
    for rpc, rate in bench.RATES.items():
        r = result["rpcs"][rpc]
        for config in ("secured", "baseline"):
            assert r[config]["calls"] == 2 * int(rate * 0.5), (rpc, config, r[config])
            assert r[config]["errors"] == 0, (rpc, config, r[config])
            assert 0 < r[config]["p50_ms"] <= r[config]["p99_ms"] <= r[config]["max_ms"]
        assert r["added_p99_ms"] == pytest.approx(r["secured"]["p99_ms"] - r["baseline"]["p99_ms"], abs=1e-3)
        assert r["pass"] is (r["added_p99_ms"] <= bench.TARGET_ADDED_P99_MS)
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(json.dumps(result))


def test_the_unauthenticated_baseline_refuses_to_start_with_tls_on(tmp_path):
    env = {**os.environ, "BJSV_TLS": "on", "BJSV_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "baseline_server.py"), "rules"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "BJSV_TLS=off" in done.stderr


def test_no_service_or_platform_code_can_reach_the_unauthenticated_baseline():
    def using(folders: tuple[str, ...], words: tuple[str, ...]) -> list[str]:
        return [
            str(path.relative_to(ROOT))
            for folder in folders
            for path in (ROOT / folder).rglob("*.py")
            if any(word in path.read_text(encoding="utf-8") for word in words)
        ]

    assert (
        using(("services", "common", "deploy"), ("import baseline_server", "baseline_server import", "PassThrough("))
        == []
    )
    # every service and the operator CLI serve with the default token + policy guard
    assert using(("services", "deploy"), ("guard=",)) == []
