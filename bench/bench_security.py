#!/usr/bin/env python3
"""The end-to-end cost of security (issue #12): VerifyBadge and CheckEligibility p99 with and without TLS +
token check + authorisation, in one run. Target: the security stack adds ≤ 1 ms p99.

    .venv/bin/python bench/bench_security.py [--seconds 10] [--rounds 10] [--badges 200]

Two stacks run side by side. Each has a nats-server, the real rules service and the real registry on one
SQLite database (bench_registry.start_cluster):
  * secured: as deployed (`python -m services.<name>`). Mutual TLS for clients and between the services, a
    bearer token on every CheckEligibility call verified by the guard, authorisation by policy
    (common/auth/policy.yaml), and on VerifyBadge (public) the policy lookup and the per-address rate limit;
  * baseline: the same services started through bench/baseline_server.py, with BJSV_TLS=off and the guard
    replaced by a pass-through admission that binds a fixed caller (no token, no policy). Production has no
    switch that turns authentication off, and must not get one; that file says why this one is honest.
Each stack seeds appointments and issues real badges through its own IssueBadge (bench_registry.seed and
issue_concurrently). VerifyBadge is driven with those codes, CheckEligibility with the mixed facts of
bench_rules.eligibility_requests. The rates are the ones the other benches use: VerifyBadge at 500 calls/s
(bench_registry, issue #3) and CheckEligibility at 200 calls/s (bench_rules and bench_auth, issue #4). The
load is open loop (bench_registry.open_loop). The two configurations alternate in `--rounds` slices of
`--seconds / --rounds` each, in ABBA order, so that changing load from other processes on the machine hits
both alike. p50 and p99 are taken over all calls of a configuration. The secured client reuses one token,
as a real client does for its 15 minutes; what a new token on every call costs (signature verification each
time) is in bench_auth.py.

The public-call limit (BJSV_AUTHZ_PUBLIC_RATE, 20/s per client address by default) is set to 10 × the
VerifyBadge rate in the secured stack's environment for this run only. The limiter still runs on every
call, but the bench's single address is never refused.

Prints p50/p99 per RPC and configuration, the added p99 (secured − baseline) and the ratio, PASS/FAIL against
≤ 1 ms, and writes bench/results/security.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen"), str(ROOT / "deploy"), str(ROOT / "tests" / "rules"), str(ROOT / "bench")]

from bench_registry import (  # noqa: E402 - after the path setup above
    Cluster,
    cpu_seconds,
    database_settings,
    default_specs,
    issue_concurrently,
    open_database,
    open_loop,
    percentile,
    seed,
    start_cluster,
)
from bench_rules import eligibility_requests  # noqa: E402

from bjsv.registry.v1 import registry_pb2, registry_pb2_grpc  # noqa: E402
from bjsv.rules.v1 import rules_pb2_grpc  # noqa: E402
from common import pki  # noqa: E402
from common.clients import channel  # noqa: E402
from tests import auth_support  # noqa: E402

RATES = {"VerifyBadge": 500.0, "CheckEligibility": 200.0}  # calls/s, as in bench_registry / bench_rules
TARGET_ADDED_P99_MS = 1.0
RULES_WORKERS = 2  # engine workers as deployed (RulesSettings default) and as in bench_rules
Call = Callable[[int], Awaitable[bool]]


def baseline_command(service: str) -> list[str]:
    return [sys.executable, str(ROOT / "bench" / "baseline_server.py"), service]


@dataclass
class Stack:
    name: str  # "secured" or "baseline"
    cluster: Cluster
    codes: list[str]  # badges issued by this stack's registry

    @property
    def secured(self) -> bool:
        return self.cluster.settings.tls_enabled

    @property
    def registry(self) -> str:
        return self.cluster.targets[0]

    @property
    def rules(self) -> str:
        return self.cluster.env["BJSV_RULES_TARGET"]

    def cpu_s(self) -> float:
        """CPU seconds used so far by the stack's services and their children (the rules engine workers)."""
        pids = [p.pid for p in self.cluster.procs]
        for pid in list(pids):
            children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
            pids.extend(int(c) for c in children.split())
        return sum(cpu_seconds(pid) for pid in pids)


def start_stack(data_dir: Path, *, secured: bool, badges: int) -> Stack:
    """Seed `badges` appointments, start the stack, issue one badge each through its IssueBadge."""
    data_dir.mkdir(parents=True)
    db = open_database(database_settings(data_dir))
    try:
        appointments = seed(db, default_specs(badges))
    finally:
        db.dispose()
    if secured:
        rate = {"BJSV_AUTHZ_PUBLIC_RATE": str(10 * RATES["VerifyBadge"])}
        cluster = start_cluster(data_dir, processes=1, extra_env=rate, rules_workers=RULES_WORKERS)
    else:
        issuer = auth_support.plaintext_issuer_env()  # the services still fetch their own tokens over HTTPS
        cluster = start_cluster(data_dir, processes=1, tls=False, command=baseline_command, extra_env=issuer,
                                rules_workers=RULES_WORKERS)  # fmt: skip
    try:
        issued = asyncio.run(issue_concurrently(cluster.targets, appointments, 4, settings=cluster.settings))
        if issued.errors or len(issued.codes) != len(appointments):
            raise RuntimeError(f"{data_dir.name}: {issued.errors} of {len(appointments)} badges not issued")
    except BaseException:
        cluster.stop()
        raise
    return Stack("secured" if secured else "baseline", cluster, issued.codes)


def verify_call(stub: registry_pb2_grpc.RegistryServiceStub, codes: list[str], offset: int) -> Call:
    async def call(i: int) -> bool:
        r = await stub.VerifyBadge(registry_pb2.VerifyBadgeRequest(code=codes[(offset + i) % len(codes)]), timeout=5)
        return r.status == registry_pb2.BADGE_STATUS_ACTIVE

    return call


def check_call(stub: rules_pb2_grpc.RulesServiceStub, requests: list, offset: int) -> Call:
    async def call(i: int) -> bool:
        r = await stub.CheckEligibility(requests[(offset + i) % len(requests)], timeout=5)
        return r.HasField("decision")

    return call


async def without_token(stack: Stack, request) -> str:
    """The status of CheckEligibility sent with no token: what tells the two configurations apart. A bare
    channel: common.clients would present this process's service identity if it had one."""
    creds = pki.channel_credentials(stack.cluster.settings)
    bare = grpc.aio.secure_channel(stack.rules, creds) if creds else grpc.aio.insecure_channel(stack.rules)
    async with bare as ch:
        try:
            await rules_pb2_grpc.RulesServiceStub(ch).CheckEligibility(request, timeout=5)
        except grpc.aio.AioRpcError as e:
            return e.code().name
    return "OK"


async def drive(stacks: list[Stack], *, seconds: float, rounds: int) -> dict:
    """Alternate the configurations (ABBA) per RPC at its rate; pooled latencies and errors per configuration."""
    requests = eligibility_requests(int(RATES["CheckEligibility"] * seconds) + 50, seed=3)
    per_round = seconds / rounds
    out: dict = {
        rpc: {s.name: {"latencies": [], "errors": 0, "calls": 0, "cpu_s": 0.0, "p99_ms_per_round": []} for s in stacks}
        for rpc in RATES
    }
    out["without_token"] = {s.name: await without_token(s, requests[0]) for s in stacks}
    async with contextlib.AsyncExitStack() as channels:
        stubs = {}
        for s in stacks:
            # VerifyBadge is public: no token, as at the exam door. CheckEligibility carries the official's
            # token when secured; the baseline's clients send none (nothing there would read it).
            token = auth_support.token() if s.secured else None
            registry = await channels.enter_async_context(channel(s.registry, settings=s.cluster.settings))
            rules = await channels.enter_async_context(channel(s.rules, token=token, settings=s.cluster.settings))
            stubs[s.name] = (registry_pb2_grpc.RegistryServiceStub(registry), rules_pb2_grpc.RulesServiceStub(rules))
            for i in range(50):  # warm-up: connections, caches, the engine workers
                await verify_call(stubs[s.name][0], s.codes, 0)(i)
                await check_call(stubs[s.name][1], requests, 0)(i)
        for r in range(rounds):
            order = stacks if r % 2 == 0 else stacks[::-1]
            for rpc, rate in RATES.items():
                offset = r * int(rate * per_round)  # fresh codes and facts in every slice
                for s in order:
                    registry_stub, rules_stub = stubs[s.name]
                    if rpc == "VerifyBadge":
                        call = verify_call(registry_stub, s.codes, offset)
                    else:
                        call = check_call(rules_stub, requests, offset)
                    row = out[rpc][s.name]
                    cpu = s.cpu_s()
                    result = await open_loop(call, rate=rate, seconds=per_round, sink=row["latencies"])
                    row["cpu_s"] += s.cpu_s() - cpu
                    row["errors"] += result.errors
                    row["calls"] += result.calls
                    row["p99_ms_per_round"].append(result.p99_ms)
    return out


def summarise(rows: dict[str, dict[str, dict]], seconds: float) -> dict:
    """Per RPC: p50/p99/max of each configuration, the added p99 in ms and the ratio, and the verdict."""
    report = {}
    for rpc, configs in rows.items():
        figures = {}
        for name, row in configs.items():
            lat = row["latencies"]
            figures[name] = {
                "calls": row["calls"],
                "errors": row["errors"],
                "p50_ms": round(percentile(lat, 50) * 1000, 3),
                "p99_ms": round(percentile(lat, 99) * 1000, 3),
                "max_ms": round(max(lat, default=float("nan")) * 1000, 3),
                # server CPU per call: steadier than latency when other processes load the machine
                "server_cpu_ms_per_call": round(row["cpu_s"] / max(1, row["calls"]) * 1000, 3),
                "p99_ms_per_round": row["p99_ms_per_round"],  # the spread: load from elsewhere on the machine
            }
        added = round(figures["secured"]["p99_ms"] - figures["baseline"]["p99_ms"], 3)
        cpu = figures["secured"]["server_cpu_ms_per_call"] - figures["baseline"]["server_cpu_ms_per_call"]
        report[rpc] = {
            "rate_per_s": RATES[rpc],
            "seconds_each": seconds,
            **figures,
            "added_p99_ms": added,
            "ratio_p99": round(figures["secured"]["p99_ms"] / figures["baseline"]["p99_ms"], 2),
            "added_p50_ms": round(figures["secured"]["p50_ms"] - figures["baseline"]["p50_ms"], 3),
            "added_server_cpu_ms_per_call": round(cpu, 3),
            "pass": added <= TARGET_ADDED_P99_MS,
        }
    return report


def print_report(report: dict) -> None:
    head = f"{'':18}{'config':10}{'calls':>7}{'errors':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'CPU ms/call':>13}"
    print(head)
    for rpc, r in report.items():
        for name in ("secured", "baseline"):
            f = r[name]
            print(
                f"{rpc:18}{name:10}{f['calls']:>7}{f['errors']:>7}{f['p50_ms']:>9.2f}{f['p99_ms']:>9.2f}"
                f"{f['max_ms']:>9.2f}{f['server_cpu_ms_per_call']:>13.3f}"
            )
    for rpc, r in report.items():
        print(
            f"{'PASS' if r['pass'] else 'FAIL'}  {rpc} at {r['rate_per_s']:.0f}/s: TLS + token + authorisation add "
            f"{r['added_p99_ms']:+.2f} ms p99 ({r['ratio_p99']:.2f}× the baseline; target ≤ {TARGET_ADDED_P99_MS} ms),"
            f" {r['added_p50_ms']:+.2f} ms p50, {r['added_server_cpu_ms_per_call']:+.3f} ms server CPU per call"
        )


def run(args: argparse.Namespace) -> dict:
    auth_support.ensure_issuer()  # the secured services verify tokens against it
    started = {"when": dt.datetime.now(dt.UTC).isoformat(), "load_avg_at_start": os.getloadavg()}
    stacks: list[Stack] = []
    with tempfile.TemporaryDirectory(prefix="bench-security-") as tmp:
        try:
            stacks.append(start_stack(Path(tmp) / "secured", secured=True, badges=args.badges))
            stacks.append(start_stack(Path(tmp) / "baseline", secured=False, badges=args.badges))
            rows = asyncio.run(drive(stacks, seconds=args.seconds, rounds=args.rounds))
        finally:
            for s in stacks:
                s.cluster.stop()
    refused = rows.pop("without_token")
    report = summarise(rows, args.seconds)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), **started,
                    "load_avg_at_end": os.getloadavg()},
        "rounds": args.rounds,
        "configurations": {
            "secured": "python -m services.<name>: mutual TLS, bearer token verified, policy authorisation",
            "baseline": "bench/baseline_server.py: BJSV_TLS=off, pass-through admission (fixed caller)",
        },
        "rpcs": report,
        # what proves the baseline is the unsecured one: CheckEligibility without a token
        "without_token": refused,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="load per RPC and configuration, all rounds")
    ap.add_argument("--rounds", type=int, default=10, help="alternating slices per RPC (ABBA order)")
    ap.add_argument("--badges", type=int, default=200, help="badges issued per stack (VerifyBadge codes)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "security.json")
    args = ap.parse_args(argv)
    result = run(args)
    print_report(result["rpcs"])
    print(f"CheckEligibility without a token: {result['without_token']}")
    load, cpus = max(result["machine"]["load_avg_at_start"][0], result["machine"]["load_avg_at_end"][0]), os.cpu_count()
    if load > (cpus or 1):
        print(
            f"WARNING: load average {load:.1f} on {cpus} cores during the run: the p99 figures are dominated by other"
        )
        print("         processes and PASS/FAIL says little; compare the CPU per call, and re-run on a quiet machine.")
    print(f"written to {args.out}")
    errors = sum(r[c]["errors"] for r in result["rpcs"].values() for c in ("secured", "baseline"))
    honest = result["without_token"] == {"secured": "UNAUTHENTICATED", "baseline": "OK"}
    return 0 if honest and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
