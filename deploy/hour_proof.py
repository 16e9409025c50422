#!/usr/bin/env python3
"""Run the test suite with the machine clock at a chosen UTC instant (issue #11: the suite passes at 17:00 and at
23:30 UTC — 23:30 UTC is already the next day in Beijing).

    python3 deploy/hour_proof.py --at 2026-12-02T23:30Z                  # the README's test command, at 23:30 UTC
    python3 deploy/hour_proof.py --at 2026-12-02T17:00Z -- tests/notify  # extra pytest arguments after `--`

It bootstraps like `deploy/bootstrap.py test` (at the real time), then runs the same pytest invocation under the
libfaketime built from the source the `libfaketime` dev package vendors, with TZ=UTC. Why that build and these
settings:
- Debian's faketime 0.9.10 fakes CLOCK_MONOTONIC, and Python 3.11's timed lock waits (sem_clockwait on
  CLOCK_MONOTONIC, not intercepted) then never time out; with its DONT_FAKE_MONOTONIC, time.sleep fails with
  EINVAL (libfaketime issue #426). The monotonic clock must stay real.
- The package's prebuilt library leaves out the sleep and semaphore wrappers (no FAKE_SLEEP): a timed wait on a
  multiprocessing lock (sem_timedwait, the deadline taken from the faked wall clock) then returns at once, which
  kills idle render workers (pebble) and empties queues early. So the tool builds the vendored source with the
  upstream Makefile (FAKE_SLEEP on) into `.venv/libfaketime/`, with the one-line fix of issue #426 applied
  (an absolute CLOCK_MONOTONIC sleep is converted only when the monotonic clock is faked).
- The offset is relative ("-46910s"): every process (pytest, the services it starts, their PostgreSQL) shares
  one fake clock that keeps running. The absolute form ("@2026-12-02 23:30:00") restarts the clock in each new
  process, so tokens and certificates made by one process look out of date to the next.
- nats-server is a Go binary (no libc clock calls): it stays at the real time. The instant must therefore be in
  the past, so that certificates issued at the fake time are already valid for it.

Standard library only: it runs before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import bootstrap  # deploy/bootstrap.py, beside this file

VENDORED_GLOB = "lib/python3*/site-packages/libfaketime/vendor/libfaketime"
# libfaketime issue #426: clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) is shifted even when the monotonic
# clock is not faked, so Python 3.11's time.sleep gets a negative deadline (EINVAL).
ISSUE_426 = (
    "      else if (clock_id == CLOCK_MONOTONIC)\n      {\n"
    "        timespecadd(&ftpl_starttime.mon, &tdiff, &real_req);",
    "      else if (clock_id == CLOCK_MONOTONIC && fake_monotonic_clock)\n      {\n"
    "        timespecadd(&ftpl_starttime.mon, &tdiff, &real_req);",
)


def libfaketime_path(venv: Path = bootstrap.VENV) -> Path:
    """libfaketime.so.1 built (once per source version) from the source the `libfaketime` package vendors."""
    found = sorted(venv.glob(VENDORED_GLOB))
    if not found:
        raise FileNotFoundError(f"libfaketime source not under {venv}: run python3 deploy/bootstrap.py install")
    source = (found[-1] / "src" / "libfaketime.c").read_text(encoding="utf-8")
    if ISSUE_426[0] not in source and ISSUE_426[1] not in source:
        raise RuntimeError("libfaketime.c changed: check whether issue #426 is fixed upstream and update ISSUE_426")
    build = venv / "libfaketime" / hashlib.sha256(source.encode()).hexdigest()[:12]
    library = build / "src" / "libfaketime.so.1"
    if not library.exists():
        shutil.rmtree(build, ignore_errors=True)
        shutil.copytree(found[-1], build, ignore=shutil.ignore_patterns("*.so*", "*.o"))
        (build / "src" / "libfaketime.c").write_text(source.replace(*ISSUE_426), encoding="utf-8")
        subprocess.run(["make", "-C", str(build / "src"), "libfaketime.so.1"], check=True, capture_output=True)
    return library


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
