"""BENCHMARK BASELINE ONLY: a service with no transport security and no authentication or authorisation.

    BJSV_TLS=off python bench/baseline_server.py rules|registry

bench/bench_security.py measures what the whole security stack adds to a call (issue #12: ≤ 1 ms p99).
Its baseline must be the same service without that stack, and production has no switch to turn
authentication off, nor may it get one. So this entry point, which lives under bench/ and is imported by
nothing in services/ or common/, builds exactly what `python -m services.<name>` builds (same servicers,
database, bus, background tasks) and serves it through the same `common.server.run`. The interceptor's
trace id, input bounds, audit, metrics and error mapping stay as they are. Only two things change:
  * TLS is off: the existing, loudly warned BJSV_TLS=off development setting. Without it this program
    refuses to start, so it can never open a plaintext port by accident.
  * the guard is replaced by `PassThrough`. It admits every call as one fixed caller. It reads no token,
    looks up no policy, applies no rate limit and binds no grant, so the scope helper sees an unrestricted
    caller.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from common.config import Settings  # noqa: E402 - after the path setup above
from common.context import Caller  # noqa: E402
from common.server import run  # noqa: E402

SERVICES = ("rules", "registry")  # the services whose RPCs bench_security.py drives
# The same organisation and roles as the secured run's token (tests/auth_support.py DEFAULT).
BENCH_CALLER = Caller(
    org="agencies/A", role="city-centre", roles=("city-centre", "operator"), subject="bench-baseline-unauthenticated"
)


class PassThrough:
    """Admits every call as BENCH_CALLER without reading metadata: the cost of security, removed."""

    async def admit(self, method: str, metadata: dict[str, str], peer: str) -> Caller | None:
        return BENCH_CALLER


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in SERVICES:
        print(f"usage: BJSV_TLS=off {Path(__file__).name} {'|'.join(SERVICES)}", file=sys.stderr)
        return 2
    if Settings().tls_enabled:
        print("error: the benchmark baseline serves plaintext only; start it with BJSV_TLS=off", file=sys.stderr)
        return 2
    build = importlib.import_module(f"services.{argv[0]}.__main__").build
    logging.getLogger(__name__).warning(
        "BENCHMARK BASELINE: %s serves with NO authentication and NO authorisation (bench only)", argv[0]
    )
    run(build, guard=PassThrough())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
