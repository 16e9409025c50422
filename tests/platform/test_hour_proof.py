"""deploy/hour_proof.py (issue #11): the environment it runs the suite in puts every process at the chosen UTC
instant, with a clock that keeps running, sleeps and timed waits that work, and services whose "today" is the
Beijing date of that instant (23:30 UTC is already the next day in Beijing)."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.clock import SHANGHAI

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hour_proof():
    sys.path.insert(0, str(ROOT / "deploy"))  # the tool imports deploy/bootstrap.py as its neighbour
    try:
        yield importlib.import_module("hour_proof")
    finally:
        sys.path.remove(str(ROOT / "deploy"))


def last_2330_utc(hour_proof) -> dt.datetime:
    """Yesterday 23:30 UTC (real time, also when the suite runs under the tool): in the past, as the tool
    requires, and already tomorrow in Beijing."""
    today = hour_proof.real_now(os.environ).date()
    return dt.datetime.combine(today - dt.timedelta(days=1), dt.time(23, 30), tzinfo=dt.UTC)


def run_faked(hour_proof, at: dt.datetime, *args: str, timeout: float) -> str:
    env = hour_proof.fake_env(at, os.environ, library=hour_proof.libfaketime_path())
    done = subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


PROBE = """
import datetime as dt, multiprocessing, threading, time
print(dt.datetime.now(dt.UTC).isoformat())
t = time.monotonic(); time.sleep(0.05); slept = time.monotonic() - t
c = threading.Condition()
with c:
    t = time.monotonic(); c.wait(0.1); waited = time.monotonic() - t
lock = multiprocessing.Lock(); lock.acquire()  # a held lock: the timed wait must last its timeout
t = time.monotonic(); lock.acquire(timeout=0.2); locked = time.monotonic() - t
print(slept, waited, locked, time.strftime('%Z'))
"""


def test_a_process_under_the_tool_sees_the_requested_utc_hour_and_its_sleeps_and_timed_waits_return(hour_proof):
    at = last_2330_utc(hour_proof)
    now_text, waits = run_faked(hour_proof, at, "-c", PROBE, timeout=30).splitlines()
    assert abs(dt.datetime.fromisoformat(now_text) - at) < dt.timedelta(minutes=1)
    slept, waited, locked, zone = waits.split()
    assert 0.05 <= float(slept) < 1.0 and 0.1 <= float(waited) < 1.0, waits
    assert 0.2 <= float(locked) < 1.0, f"multiprocessing timed wait (sem_timedwait) not real: {waits}"
    assert zone == "UTC"


def test_a_service_started_under_the_tool_keeps_beijing_time_at_2330_utc_the_next_day(hour_proof, tmp_path):
    at = last_2330_utc(hour_proof)
    probe = Path(__file__).with_name("fake_clock_probe.py")
    now = dt.datetime.fromisoformat(run_faked(hour_proof, at, str(probe), str(tmp_path), timeout=150))
    assert abs(now - at) < dt.timedelta(minutes=2)
    assert now.astimezone(SHANGHAI).date() == at.date() + dt.timedelta(days=1)
    assert now.astimezone(SHANGHAI).strftime("%H:%M") in {"07:30", "07:31"}


def test_the_tool_refuses_an_instant_the_real_time_nats_server_has_not_reached(hour_proof):
    with pytest.raises(SystemExit):
        hour_proof.main(["--at", (hour_proof.real_now(os.environ) + dt.timedelta(hours=1)).isoformat()])
