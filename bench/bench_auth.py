"""What token check + authorisation add to a call (issue #12: ≤ 1 ms p99), measured in one run.

1. The guard alone (`common.auth.guard.Guard.admit`, exactly what the server interceptor awaits before the
   handler), with and without a token, on the methods of the benchmarked RPCs:
   - CheckEligibility with a token already seen (the steady state: a client reuses its token for 15 min),
   - CheckEligibility with a new token every call (ES256 signature verification + claims every time),
   - VerifyBadge (public: policy lookup and the per-address rate limit only),
   - no guard at all (the baseline: zero by construction, printed for the table).
2. End to end on the real rules service at 200 calls/s: CheckEligibility with a token against gRPC
   Health.Check on the same process at the same rate (health is exempt from authentication).
The whole security stack end to end (TLS + token + authorisation, secured vs an unauthenticated baseline
on the same RPCs) is bench/bench_security.py.

    python bench/bench_auth.py [--calls 5000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen"), str(ROOT / "deploy"), str(ROOT / "tests" / "rules"), str(ROOT / "bench")]

from bench_registry import health_baseline, percentile  # noqa: E402

from common.auth.config import AuthSettings  # noqa: E402
from common.auth.guard import Guard  # noqa: E402
from tests import auth_support  # noqa: E402

CHECK = "/bjsv.rules.v1.RulesService/CheckEligibility"
VERIFY = "/bjsv.registry.v1.RegistryService/VerifyBadge"


async def guard_cost(guard: Guard, method: str, headers: list[dict[str, str]], calls: int) -> dict:
    lat = []
    for i in range(calls):
        t = time.perf_counter()
        await guard.admit(method, headers[i % len(headers)], f"ipv4:10.0.{i % 250}.1:4000")
        lat.append(time.perf_counter() - t)
    return {"p50_us": round(percentile(lat, 50) * 1e6, 1), "p99_us": round(percentile(lat, 99) * 1e6, 1)}


async def end_to_end(seconds: float) -> dict:
    from bench_rules import Service, bench_grpc_single

    with tempfile.TemporaryDirectory() as tmp, Service(Path(tmp)) as svc:
        single = await bench_grpc_single(svc, svc.proc.target, 200, 200.0, seconds)
        floor = await health_baseline(svc.proc.target, rate=200.0, seconds=seconds)
    return {"check_eligibility_p99_ms": single["p99_ms"], "health_floor_p99_ms": floor.p99_ms}


async def main(args) -> None:
    auth_support.ensure_issuer()
    guard = Guard(AuthSettings())
    await guard.admit(CHECK, {"authorization": f"Bearer {auth_support.token()}"}, "ipv4:1.1.1.1:1")  # JWKS fetch
    # distinct tokens (one subject each), so every call verifies a signature the guard has not seen
    fresh = [
        {"authorization": "Bearer " + auth_support.token("agencies/08", "district-agency", subject=f"u{i}")}
        for i in range(args.fresh)
    ]
    cold = Guard(AuthSettings())
    await cold.admit(CHECK, fresh[0], "ipv4:1.1.1.1:1")  # its JWKS fetch is not part of a call's cost
    rows = {
        "no guard (baseline)": {"p50_us": 0.0, "p99_us": 0.0},
        "CheckEligibility, token seen before": await guard_cost(guard, CHECK, fresh[:1], args.calls),
        "CheckEligibility, new token each call": await guard_cost(cold, CHECK, fresh[1:], len(fresh) - 1),
        "VerifyBadge (public)": await guard_cost(guard, VERIFY, [{}], args.calls),
    }
    print(f"{'guard cost per call':44}{'p50 µs':>10}{'p99 µs':>10}")
    for name, r in rows.items():
        print(f"  {name:42}{r['p50_us']:>10}{r['p99_us']:>10}")
    e2e = await end_to_end(args.seconds)
    print(
        f"CheckEligibility at 200/s with token: p99 {e2e['check_eligibility_p99_ms']} ms; gRPC Health.Check (no token) "
        f"on the same process at 200/s: p99 {e2e['health_floor_p99_ms']} ms"
    )
    worst = max(r["p99_us"] for r in rows.values()) / 1000
    print(f"added cost p99 ≤ 1 ms: {'met' if worst <= 1.0 else 'NOT met'} (worst guard p99 {worst:.3f} ms)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--fresh", type=int, default=100, help="distinct tokens for the signature-every-call row")
    ap.add_argument("--seconds", type=float, default=10.0)
    asyncio.run(main(ap.parse_args()))
