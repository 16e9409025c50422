#!/usr/bin/env python3
"""Run the test suite with the machine clock at a chosen UTC instant (issue #11: the suite passes at 17:00 and at
23:30 UTC — 23:30 UTC is already the next day in Beijing).

    python3 deploy/hour_proof.py --at 2026-12-02T23:30Z                  # the README's test command, at 23:30 UTC
    python3 deploy/hour_proof.py --at 2026-12-02T17:00Z -- tests/notify  # extra pytest arguments after `--`

It bootstraps like `deploy/bootstrap.py test` (at the real time), then runs the same pytest invocation under the
libfaketime that the `libfaketime` dev package vendors, with TZ=UTC. Why that build and these settings:
- Debian's faketime 0.9.10 fakes CLOCK_MONOTONIC, and Python 3.11's timed lock waits (sem_clockwait on
  CLOCK_MONOTONIC, not intercepted) then never time out; with its DONT_FAKE_MONOTONIC, time.sleep fails with
  EINVAL (libfaketime issue #426). The vendored build leaves the monotonic clock real and works.
- The offset is relative ("-46910s"): every process (pytest, the services it starts, their PostgreSQL) shares
  one fake clock that keeps running. The absolute form ("@2026-12-02 23:30:00") restarts the clock in each new
  process, so tokens and certificates made by one process look out of date to the next.
- nats-server is a Go binary (no libc clock calls): it stays at the real time. The instant must therefore be in
  the past, so that certificates issued at the fake time are already valid for it.
- Not intercepted by this build: sem_timedwait. A contended timed wait on a multiprocessing lock returns at once
  (its deadline comes from the faked wall clock, the kernel compares it with the real one); see the README.

Standard library only: it runs before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import bootstrap  # deploy/bootstrap.py, beside this file

LIBFAKETIME_GLOB = "lib/python3*/site-packages/libfaketime/vendor/libfaketime/src/libfaketime.so.1"


def libfaketime_path(venv: Path = bootstrap.VENV) -> Path:
    """The shared library the `libfaketime` package vendors (installed by the bootstrap as a dev dependency)."""
    found = sorted(venv.glob(LIBFAKETIME_GLOB))
    if not found:
        raise FileNotFoundError(f"libfaketime.so.1 not under {venv}: run python3 deploy/bootstrap.py install")
    return found[-1]


def parse_instant(text: str) -> dt.datetime:
    """`2026-12-02T23:30Z` (or with an offset); a time without a zone is read as UTC."""
    at = dt.datetime.fromisoformat(text)
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def real_now(env: Mapping[str, str]) -> dt.datetime:
    """The real time, also inside a process this tool faked (the suite's own tests of the tool run there)."""
    now = dt.datetime.now(dt.UTC)
    offset = re.fullmatch(r"([+-]\d+)s", env.get("FAKETIME", ""))
    return now - dt.timedelta(seconds=int(offset.group(1))) if offset else now


def fake_env(at: dt.datetime, base: Mapping[str, str], *, library: Path) -> dict[str, str]:
    """`base` plus what makes every process started with it see the clock at `at` (UTC zone), running on."""
    offset = round((at - real_now(base)).total_seconds())
    env = dict(base)
    preload = [str(library), *(p for p in env.get("LD_PRELOAD", "").split(":") if p and p != str(library))]
    env.update(
        LD_PRELOAD=":".join(preload),
        FAKETIME=f"{offset:+d}s",
        # The monotonic clock stays real: timed waits, asyncio and our timeouts measure real durations.
        FAKETIME_DONT_FAKE_MONOTONIC="1",
        DONT_FAKE_MONOTONIC="1",
        # Off, as the libfaketime package sets it: with the "monotonic fix" on, gRPC core's condition-variable
        # waits crawl (300 in-process unary calls: 1–25 s instead of 0.2 s on a loaded 2-core machine).
        FAKETIME_FORCE_MONOTONIC_FIX="0",
        TZ="UTC",
    )
    return env


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--at", required=True, type=parse_instant, help="UTC instant, e.g. 2026-12-02T23:30Z")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    if args.at >= real_now(os.environ):
        # nats-server runs at the real time and must accept the certificates made at the fake time.
        parser.error("--at must be in the past (nats-server is not faked; see the module docstring)")
    bootstrap.ensure_venv()
    bootstrap.ensure_stubs()
    bootstrap.ensure_system_packages()
    env = fake_env(args.at, os.environ, library=libfaketime_path())
    shown = subprocess.run(
        [str(bootstrap.PY), "-c", "import datetime as d; print(d.datetime.now(d.UTC).isoformat(timespec='seconds'))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"[hour_proof] fake clock starts at {shown} (FAKETIME={env['FAKETIME']}, TZ=UTC)", flush=True)
    os.chdir(bootstrap.ROOT)
    # The README's test command (deploy/bootstrap.py test): pytest with the arguments passed through.
    os.execve(str(bootstrap.PY), [str(bootstrap.PY), "-m", "pytest", *args.pytest_args], env)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
