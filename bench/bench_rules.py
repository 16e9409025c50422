"""Benchmarks of the rules service (issue #4), all in one run on this machine.

    .venv/bin/python bench/bench_rules.py                    # everything (≈3–4 minutes on 2 cores)
    .venv/bin/python bench/bench_rules.py --quick            # smaller counts, for a smoke run
    .venv/bin/python bench/bench_rules.py --only memory      # one section: throughput|latency|propose|memory|reload

Measures (eligibility rule set bj-2022, realistic mixed facts):
  * plain Python          — Decider + the same declarations evaluated in Python, one process (baseline)
  * engine in-process     — Decider + durable_rules (the adapter) directly in this process (the ceiling)
  * gRPC batch            — BatchCheckEligibility against the real service (2 engine workers), persisted
                            in the decision log + outbox, 2 calls in flight
  * gRPC single           — CheckEligibility: sequential throughput, and latency p50/p99 at a paced
                            200 calls/s
  * ProposeTeam           — pool of 5,000 supervisors, p50/p99 over fresh seeds
  * memory                — 1,000,000 evaluations through a worker pool: worker RSS every 100k, open
                            engine sessions at the end
  * reload                — 50 blue-green hot reloads of the real service (policy file changed each time):
                            RSS of the service process tree before/after
Targets (2 cores): batch ≥ 5,000 decisions/s and ≥ 70 % of the in-process engine ceiling; single-call
p99 ≤ 5 ms at 200 calls/s; ProposeTeam p99 ≤ 50 ms. Results: printed and bench/results/rules.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "rules"))

from tests import auth_support  # noqa: E402

DAY = "2024-06-03"


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def supervisor_proto(i: int, rnd: random.Random, **kw):
    from bjsv.rules.v1 import rules_pb2

    items = [x for x in range(1, 6) if rnd.random() > 0.03]
    base = dict(
        name=f"supervisors/{i}",
        person_id=f"P{i}",
        gender=rnd.choice([1, 2]),
        birth_date=dt.date(rnd.randint(1956, 1992), rnd.randint(1, 12), rnd.randint(1, 28)).isoformat(),
        kind=1,
        level=2,
        district_code="08",
        status=rnd.choice([1] * 12 + [2, 3, 4]),
        term_start_date=dt.date(rnd.randint(2021, 2024), rnd.randint(1, 12), 1).isoformat(),
        training_passed=rnd.random() > 0.03,
        attestations=[
            rules_pb2.Attestation(item=x, attested_by="agencies/08", attested_date="2022-09-01") for x in items
        ],
        employer=f"institutions/{rnd.randint(1, 500)}",
        recent_dispatch_count=rnd.randint(0, 6),
    )
    base.update(kw)
    return rules_pb2.SupervisorFacts(**base)


def eligibility_requests(n: int, seed: int = 1):
    from bjsv.rules.v1 import rules_pb2

    rnd = random.Random(seed)
    return [
        rules_pb2.CheckEligibilityRequest(supervisor=supervisor_proto(i, rnd), as_of_date=DAY, purpose=3)
        for i in range(n)
    ]


# ---------------------------------------------------------------------------------------------------------
# in-process baselines


class InProcessEngine:
    """The engine adapter used directly in this process (no workers): the single-process ceiling."""

    def __init__(self, catalog) -> None:
        from services.rules.engine.adapter import EngineHost

        self.host = EngineHost()
        for rs in catalog.rulesets:
            self.host.load(rs)

    async def evaluate(self, version, kind, facts):
        return self.host.evaluate(version, kind, facts)


async def bench_in_process(n: int) -> dict:
    from common.clock import Clock
    from services.rules.codec import from_proto_eligibility
    from services.rules.domain.decisions import Decider, PythonEvaluator
    from services.rules.domain.ruleset import load_catalog

    catalog = load_catalog(ROOT / "services" / "rules" / "rulesets")
    decider = Decider(Clock())
    reqs = eligibility_requests(n)
    out = {}
    for label, ev in (("plain_python", PythonEvaluator(catalog)), ("engine_in_process", InProcessEngine(catalog))):
        await decider.eligibility(catalog, ev, from_proto_eligibility(reqs[:1000], "r"))  # warm
        t, c = time.perf_counter(), time.process_time()
        for start in range(0, n, 1000):  # same batching as the service: proto → domain → facts → rules
            await decider.eligibility(catalog, ev, from_proto_eligibility(reqs[start : start + 1000], "r"))
        out[label] = n / (time.perf_counter() - t)
        out[label + "_per_cpu_s"] = n / (time.process_time() - c)  # robust against other load on the box
    return out


# ---------------------------------------------------------------------------------------------------------
# the real service


@contextlib.contextmanager
def plaintext():
    """BJSV_TLS=off for the service started inside and for this process's clients (the TLS comparison)."""
    changed = auth_support.plaintext_issuer_env()
    os.environ.update(changed)
    try:
        yield
    finally:
        for key in changed:
            del os.environ[key]


class Service:
    def __init__(self, tmp: Path, workers: int = 2) -> None:
        from rules_service import RulesProcess

        from common import pki
        from common.config import Settings
        from supervisionctl.natsd import NatsServer, free_port

        folder = None
        if Settings().tls_enabled:  # mutual TLS as deployed: a CA for this run unless BJSV_PKI_DIR names one
            folder = Path(os.environ.setdefault("BJSV_PKI_DIR", str(tmp / "pki")))
            pki.ensure(folder)
        self.nats = NatsServer(store_dir=tmp / "nats", port=free_port(), name="bjsv-bench-rules", pki=folder)
        self.nats.start()
        self.policy = tmp / "policy.yaml"
        self.policy.write_text("rulesets: {}\n", encoding="utf-8")
        self.proc = RulesProcess(
            data_dir=tmp / "rules",
            port=free_port(),
            nats_url=self.nats.url,
            workers=workers,
            extra_env={"BJSV_RULES_POLICY_FILE": str(self.policy)},
        )

    def __enter__(self):
        self.proc.start(timeout=60)
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stop()
        self.nats.stop()

    def tree_cpu_s(self) -> float:
        """utime+stime of the service process and its current workers (seconds)."""
        return sum(self.split_cpu_s())

    def split_cpu_s(self) -> tuple[float, float]:
        """(gRPC front process, engine workers) utime+stime in seconds — less sensitive to other load on the
        box than wall-clock rates."""
        from bench_registry import cpu_seconds

        return cpu_seconds(self.proc.proc.pid), sum(cpu_seconds(pid) for pid in self.proc.worker_pids())

    def tree_rss_kb(self) -> dict:
        pids = [self.proc.proc.pid, *self.proc.worker_pids()]
        rss = {}
        for pid in pids:
            try:
                with open(f"/proc/{pid}/statm") as fh:
                    rss[pid] = int(fh.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
            except OSError:
                pass
        return rss


async def bench_grpc_batch(svc, target: str, n: int, batch: int, inflight: int) -> dict:

    from bjsv.rules.v1 import rules_pb2, rules_pb2_grpc

    reqs = eligibility_requests(n, seed=2)
    batches = [rules_pb2.BatchCheckEligibilityRequest(requests=reqs[i : i + batch]) for i in range(0, n, batch)]
    async with auth_support.aio_channel(target) as ch:
        stub = rules_pb2_grpc.RulesServiceStub(ch)
        await stub.BatchCheckEligibility(batches[0])  # warm
        queue = list(batches)
        lat = []

        async def runner():
            while queue:
                b = queue.pop()
                t0 = time.perf_counter()
                r = await stub.BatchCheckEligibility(b)
                lat.append(time.perf_counter() - t0)
                assert len(r.responses) == len(b.requests)

        t, (f0, w0) = time.perf_counter(), svc.split_cpu_s()
        await asyncio.gather(*[runner() for _ in range(inflight)])
        el = time.perf_counter() - t
        f1, w1 = svc.split_cpu_s()
        cpu = f1 - f0 + w1 - w0
    return {
        "decisions_per_s": n / el,
        "service_cpu_s": cpu,
        "decisions_per_service_cpu_s": n / cpu,
        "front_cpu_us_per_decision": (f1 - f0) / n * 1e6,
        "workers_cpu_us_per_decision": (w1 - w0) / n * 1e6,
        "batch": batch,
        "inflight": inflight,
        "batch_p50_ms": _pct(lat, 50) * 1e3,
        "batch_p99_ms": _pct(lat, 99) * 1e3,
    }


async def bench_grpc_single(svc, target: str, n_seq: int, rate: float, seconds: float) -> dict:

    from bjsv.rules.v1 import rules_pb2_grpc

    reqs = eligibility_requests(max(n_seq, int(rate * seconds)) + 10, seed=3)
    async with auth_support.aio_channel(target) as ch:
        stub = rules_pb2_grpc.RulesServiceStub(ch)
        for r in reqs[:50]:
            await stub.CheckEligibility(r)
        t = time.perf_counter()
        for r in reqs[:n_seq]:
            await stub.CheckEligibility(r)
        seq_rate = n_seq / (time.perf_counter() - t)
        lat: list[float] = []

        async def one(r):
            t0 = time.perf_counter()
            await stub.CheckEligibility(r)
            lat.append(time.perf_counter() - t0)

        tasks = []
        f0, w0 = svc.split_cpu_s()
        start = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(reqs[i])))
        await asyncio.gather(*tasks)
        achieved = total / (time.perf_counter() - start)
        f1, w1 = svc.split_cpu_s()
    return {
        "sequential_calls_per_s": seq_rate,
        "paced_rate": rate,
        "achieved_rate": achieved,
        "paced_front_cpu_ms_per_call": (f1 - f0) / total * 1e3,
        "paced_workers_cpu_ms_per_call": (w1 - w0) / total * 1e3,
        "p50_ms": _pct(lat, 50) * 1e3,
        "p99_ms": _pct(lat, 99) * 1e3,
        "max_ms": max(lat) * 1e3,
    }


async def bench_propose(svc, target: str, pool_size: int, calls: int) -> dict:

    from bjsv.rules.v1 import rules_pb2, rules_pb2_grpc

    rnd = random.Random(4)
    pool = [supervisor_proto(i, rnd) for i in range(pool_size)]
    plan = rules_pb2.PlanFacts(name="plans/1", institution="institutions/7", district_code="08", candidate_count=450)
    session = rules_pb2.SessionFacts(
        name="plans/1/sessions/1", date=DAY, examiner_person_ids=[f"P{i}" for i in range(0, pool_size, 97)]
    )
    lat = []
    cpu = []
    async with auth_support.aio_channel(target) as ch:
        stub = rules_pb2_grpc.RulesServiceStub(ch)
        for i in range(calls + 5):
            if i == 5:
                f0, w0 = svc.split_cpu_s()
            req = rules_pb2.ProposeTeamRequest(
                dispatching_agency="agencies/08",
                plan=plan,
                session=session,
                pool=pool,
                as_of_date=DAY,
                seed=f"bench-{i}",
            )
            t0, c0 = time.perf_counter(), svc.tree_cpu_s()
            resp = await stub.ProposeTeam(req)
            if i >= 5:
                lat.append(time.perf_counter() - t0)
                cpu.append(svc.tree_cpu_s() - c0)
            assert len(resp.team) == 4
        f1, w1 = svc.split_cpu_s()
    return {
        "pool_size": pool_size,
        "calls": calls,
        "front_cpu_ms_per_call": (f1 - f0) / calls * 1e3,
        "workers_cpu_ms_per_call": (w1 - w0) / calls * 1e3,
        "p50_ms": _pct(lat, 50) * 1e3,
        "p99_ms": _pct(lat, 99) * 1e3,
        "service_cpu_ms_per_call_p50": _pct(cpu, 50) * 1e3,
        "request_bytes": req.ByteSize(),
    }


async def bench_reloads(svc: Service, target: str, count: int) -> dict:

    from bjsv.rules.v1 import rules_pb2, rules_pb2_grpc

    async with auth_support.aio_channel(target) as ch:
        stub = rules_pb2_grpc.RulesServiceStub(ch)
        reqs = eligibility_requests(200, seed=5)
        await stub.BatchCheckEligibility(rules_pb2.BatchCheckEligibilityRequest(requests=reqs))
        base = svc.tree_rss_kb()
        samples = []
        t = time.perf_counter()
        for i in range(count):
            svc.policy.write_text(
                f"rulesets:\n  bj-2022:\n    penalty.repeat_window_days: {400 + i}\n", encoding="utf-8"
            )
            r = await stub.ReloadRuleSet(rules_pb2.ReloadRuleSetRequest())
            assert r.changed
            await stub.BatchCheckEligibility(rules_pb2.BatchCheckEligibilityRequest(requests=reqs))
            if (i + 1) % 10 == 0:
                await asyncio.sleep(1.0)  # let the drained generation exit
                samples.append(sum(svc.tree_rss_kb().values()))
        el = time.perf_counter() - t
        await asyncio.sleep(1.5)
        after = svc.tree_rss_kb()
    main = svc.proc.proc.pid
    return {
        "reloads": count,
        "seconds_per_reload": el / count,
        "baseline_total_rss_mb": sum(base.values()) / 1024,
        "after_total_rss_mb": sum(after.values()) / 1024,
        "front_rss_mb_before": base.get(main, 0) / 1024,
        "front_rss_mb_after": after.get(main, 0) / 1024,
        "worker_processes_after": len(after) - 1,
        "total_rss_mb_every_10": [s / 1024 for s in samples],
    }


async def bench_memory(total: int, batch: int) -> dict:
    from pathlib import Path as _P

    from services.rules.codec import from_proto_eligibility
    from services.rules.domain import facts as F
    from services.rules.domain.ruleset import load_catalog
    from services.rules.engine.pool import WorkerPool

    catalog = load_catalog(_P(ROOT / "services" / "rules" / "rulesets"))
    rs = catalog.rulesets[0]
    items = from_proto_eligibility(eligibility_requests(batch, seed=6), "r")
    facts = [F.eligibility_facts(rs, it)[0] for it in items]
    pool = await WorkerPool([rs], size=2).start()
    try:
        await pool.evaluate(rs.version, "eligibility", facts)
        start = await pool.stats()
        samples = []
        done = 0
        t = time.perf_counter()
        while done < total:
            await asyncio.gather(
                pool.evaluate(rs.version, "eligibility", facts), pool.evaluate(rs.version, "eligibility", facts)
            )
            done += 2 * batch
            if done % 100_000 < 2 * batch:
                st = await pool.stats()
                samples.append({"evaluations": done, "rss_mb": [s["rss_kb"] / 1024 for s in st]})
        el = time.perf_counter() - t
        end = await pool.stats()
    finally:
        await pool.close()
    growth = [(e["rss_kb"] - s["rss_kb"]) / 1024 for s, e in zip(start, end, strict=True)]
    return {
        "evaluations": done,
        "evals_per_s": done / el,
        "rss_mb_start": [s["rss_kb"] / 1024 for s in start],
        "rss_mb_end": [s["rss_kb"] / 1024 for s in end],
        "rss_growth_mb": growth,
        "open_sessions_end": [s["open_sessions"] for s in end],
        "samples": samples,
    }


async def plaintext_single(quick: bool) -> dict:
    """The same CheckEligibility latency run against a second service started with BJSV_TLS=off."""
    with plaintext(), tempfile.TemporaryDirectory() as tmp, Service(Path(tmp)) as svc:
        return await bench_grpc_single(svc, svc.proc.target, 500 if quick else 2000, 200.0, 3.0 if quick else 10.0)


async def main(args) -> dict:
    from bench_registry import health_baseline

    auth_support.ensure_issuer()  # the rules service verifies tokens against it (issue #12)
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg_at_start": os.getloadavg()},
        "when": dt.datetime.now(dt.UTC).isoformat(),
    }
    q = args.quick
    want = set(args.only.split(",")) if args.only else {"throughput", "latency", "propose", "memory", "reload"}
    if "throughput" in want:
        results["in_process"] = await bench_in_process(5_000 if q else 20_000)
        print("in-process decisions/s:", {k: round(v) for k, v in results["in_process"].items()}, flush=True)
    if want & {"throughput", "latency", "propose", "reload"}:
        with tempfile.TemporaryDirectory() as tmp, Service(Path(tmp)) as svc:
            target = svc.proc.target
            if "throughput" in want:
                results["grpc_batch"] = await bench_grpc_batch(svc, target, 10_000 if q else 50_000, 1000, 2)
                print("gRPC batch:", results["grpc_batch"], flush=True)
            if "latency" in want:
                results["grpc_single"] = await bench_grpc_single(
                    svc, target, 500 if q else 2000, 200.0, 3.0 if q else 10.0
                )
                print("gRPC single:", results["grpc_single"], flush=True)
                # the floor of any RPC on this machine: same client, same server process, same rate
                floor = await health_baseline(target, rate=200.0, seconds=3.0 if q else 10.0)
                results["health_floor"] = {"p50_ms": floor.p50_ms, "p99_ms": floor.p99_ms, "max_ms": floor.max_ms}
                print(
                    "gRPC Health.Check floor at 200/s:",
                    results["health_floor"],
                    f"— CheckEligibility p99 is {results['grpc_single']['p99_ms'] / floor.p99_ms:.1f}× the floor",
                    flush=True,
                )
                results["grpc_single_plaintext"] = await plaintext_single(q)
                added = results["grpc_single"]["p99_ms"] - results["grpc_single_plaintext"]["p99_ms"]
                print("gRPC single, plaintext (BJSV_TLS=off):", results["grpc_single_plaintext"], flush=True)
                print(f"CheckEligibility p99 with mutual TLS minus plaintext: {added:+.2f} ms", flush=True)
            if "propose" in want:
                results["propose_team"] = await bench_propose(svc, target, 5000, 20 if q else 100)
                print("ProposeTeam:", results["propose_team"], flush=True)
            if "reload" in want:
                results["reload"] = await bench_reloads(svc, target, 10 if q else 50)
                print(
                    "reloads:", {k: v for k, v in results["reload"].items() if k != "total_rss_mb_every_10"}, flush=True
                )
    if "memory" in want:
        results["memory"] = await bench_memory(100_000 if q else 1_000_000, 2000)
        print("memory:", {k: v for k, v in results["memory"].items() if k != "samples"}, flush=True)

    checks = {}
    if "grpc_batch" in results and "in_process" in results:
        rate = results["grpc_batch"]["decisions_per_s"]
        ceiling = results["in_process"]["engine_in_process"]
        checks["batch >= 5000/s"] = rate >= 5000
        checks["batch >= 70% of engine ceiling"] = rate >= 0.7 * ceiling
        results["batch_vs_ceiling"] = rate / ceiling
    if "grpc_single" in results:
        checks["single p99 <= 5 ms at 200/s"] = results["grpc_single"]["p99_ms"] <= 5.0
    if "propose_team" in results:
        checks["ProposeTeam p99 <= 50 ms"] = results["propose_team"]["p99_ms"] <= 50.0
    if "memory" in results:
        checks["worker RSS flat within 8 MB over the run"] = max(results["memory"]["rss_growth_mb"]) <= 8
        checks["no engine session left"] = not any(results["memory"]["open_sessions_end"])
    if "reload" in results:
        r = results["reload"]
        checks["reloads: memory back to baseline (+20 MB)"] = r["after_total_rss_mb"] <= r["baseline_total_rss_mb"] + 20
    results["checks"] = checks
    results["machine"]["load_avg_at_end"] = os.getloadavg()
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    res = asyncio.run(main(args))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    name = "rules.json" if not args.only and not args.quick else f"rules-{args.only or 'quick'}.json"
    (out / name).write_text(json.dumps(res, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
