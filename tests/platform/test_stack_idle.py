"""An idle system stays idle: no service spins (a busy loop would eat the 2 cores of a small host)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from common.config import SERVICES


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_idle_services_use_under_a_tenth_of_a_core(stack):
    time.sleep(2)  # let start-up work (migrations, stream provisioning, canaries) finish
    pids = {name: stack.procs[name].pid for name in SERVICES}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    window = 4.0
    time.sleep(window)
    usage = {name: (cpu_seconds(pid) - before[name]) / window for name, pid in pids.items()}
    assert all(u < 0.10 for u in usage.values()), usage
