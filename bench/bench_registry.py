#!/usr/bin/env python3
"""Registry bench: badge issuance under concurrency (2 processes × 32 clients) and VerifyBadge latency.

    .venv/bin/python bench/bench_registry.py                      # SQLite, then PostgreSQL if reachable
    .venv/bin/python bench/bench_registry.py --backend sqlite --badges 2000 --clients 32 --processes 2
    .venv/bin/python bench/bench_registry.py --json

What it does, per backend: starts a fresh nats-server and N registry processes sharing ONE database (a
SQLite file, or one PostgreSQL schema), seeds N appointments through the repository (bypassing the rules
service: decision ids "seed:bench"), then
  1. issues one badge per appointment with `--clients` concurrent gRPC clients spread over the processes
     (events flow through the outbox relay to NATS meanwhile) → calls/s, p50/p99 latency;
  2. checks the codes in the database: no duplicate, and per allocation scope the serials are exactly
     1..n (gap-free, 附件1 D1/D2);
  3. drives VerifyBadge open-loop at `--verify-rate` calls/s for `--verify-seconds` against one process
     → p50/p99 (target p99 ≤ 5 ms at 500 calls/s).
The test tests/registry/test_registry_concurrency.py runs the same functions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen"), str(ROOT / "deploy")]

from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from bjsv.registry.v1 import registry_pb2 as pb  # noqa: E402 - after the path setup above
from bjsv.registry.v1 import registry_pb2_grpc  # noqa: E402
from common import pki  # noqa: E402
from common.clients import channel  # noqa: E402
from common.clock import Clock  # noqa: E402
from common.config import Settings  # noqa: E402
from common.db import Database  # noqa: E402
from supervisionctl.natsd import NatsServer, free_port, port_open  # noqa: E402
from supervisionctl.stack import health_status  # noqa: E402
from tests import auth_support  # noqa: E402

PG_URL = os.environ.get("BJSV_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def module_command(service: str) -> list[str]:
    """How a service is started in production (and by default here): `python -m services.<name>`."""
    return [sys.executable, "-m", f"services.{service}"]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process in seconds (0 once it is gone). CPU per call is steadier than
    wall-clock latency on a shared machine."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


@dataclass
class Cluster:
    data_dir: Path
    nats: NatsServer
    procs: list[subprocess.Popen] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    settings: Settings = field(default_factory=Settings)  # TLS mode and PKI the bench's clients use
    command: Callable[[str], list[str]] = module_command  # the process started per service

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        self.nats.stop()


def database_settings(data_dir: Path, database_url: str = "", schema_prefix: str = "") -> Settings:
    if database_url:
        return Settings(data_dir=data_dir, database_url=database_url, db_schema_prefix=schema_prefix)
    return Settings(data_dir=data_dir)


def open_database(settings: Settings) -> Database:
    from services.registry.__main__ import load_models
    from services.registry.storage import models

    load_models()
    db = Database(settings, service="registry", metadata=models.Base.metadata,
                  migrations=ROOT / "services" / "registry" / "storage" / "migrations")  # fmt: skip
    db.migrate()
    return db


def seed(db: Database, specs) -> list[int]:
    from services.registry.storage.seed import seed_population

    today = Clock().today()
    return db.write_sync(lambda s: seed_population(s, specs=specs, today=today, reason="bench"))


def default_specs(total: int):
    """Spread `total` appointments over scopes: two institutions (Y, S), the city, and districts 08 / 30."""
    from services.registry.storage.seed import ScopeSpec

    district = min(99, total // 20)
    city = min(999, total // 6)
    rest = total - 2 * district - city
    y = rest * 5 // 8
    return [
        ScopeSpec(institution_number="1100019001", institution_letter="Y", count=y),
        ScopeSpec(institution_number="1100029002", institution_letter="S", count=rest - y),
        ScopeSpec(district="A", count=city),
        ScopeSpec(district="08", count=district),
        ScopeSpec(district="30", count=district),
    ]


def tls_settings(data_dir: Path, tls: bool) -> Settings:
    """Mutual TLS as deployed (the bench presents supervisionctl's certificate from BJSV_PKI_DIR, or a CA
    made under the data folder), or plaintext (BJSV_TLS=off) for the comparison."""
    if not tls:
        return Settings(tls="off")
    folder = Path(os.environ.setdefault("BJSV_PKI_DIR", str(data_dir / "pki")))  # this process's clients too
    pki.ensure(folder)
    return Settings(tls="on", pki_dir=folder)


def _start(cluster: Cluster, service: str, label: str, env: dict[str, str]) -> str:
    """Start `python -m services.<service>` on a free port and wait until it serves; returns its target."""
    port = free_port()
    log = (cluster.data_dir / f"{label}.log").open("ab")
    env = {**env, f"BJSV_{service.upper()}_PORT": str(port)}
    proc = subprocess.Popen(cluster.command(service), cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, env=env)  # fmt: skip
    cluster.procs.append(proc)
    target = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while health_status(target, "", timeout=0.5, settings=cluster.settings) != "SERVING":
        if proc.poll() is not None or time.monotonic() > deadline:
            log_text = (cluster.data_dir / f"{label}.log").read_text()[-2000:]
            raise RuntimeError(f"{label} did not start: {log_text}")
        time.sleep(0.2)
    return target


def start_cluster(data_dir: Path, *, processes: int, database_url: str = "", schema_prefix: str = "",
                  log_level: str = "WARNING", tls: bool = True, command: Callable[[str], list[str]] = module_command,
                  extra_env: dict[str, str] | None = None, rules_workers: int = 1) -> Cluster:  # fmt: skip
    """nats-server, one rules service and `processes` registry processes, each started with `command`
    (bench_security.py starts its unsecured baseline through bench/baseline_server.py)."""
    settings = tls_settings(data_dir, tls)
    folder = settings.pki_dir if tls else None
    nats = NatsServer(store_dir=data_dir / "nats", port=free_port(), name=f"bench-{uuid.uuid4().hex[:6]}", pki=folder)
    nats.start()
    cluster = Cluster(data_dir, nats, settings=settings, command=command)
    env = dict(os.environ)
    env.update({"BJSV_TLS": settings.tls, **({"BJSV_PKI_DIR": str(folder)} if folder else {})})
    env.update({"BJSV_DATA_DIR": str(data_dir), "BJSV_BIND_HOST": "127.0.0.1", "BJSV_NATS_URL": nats.url,
                "BJSV_LOG_LEVEL": log_level, "BJSV_REGISTRY_EXPIRY_SWEEP_INTERVAL": "0",
                "PYTHONUNBUFFERED": "1"})  # fmt: skip
    env.update(extra_env or {})
    if database_url:
        env.update({"DATABASE_URL": database_url, "BJSV_DB_SCHEMA_PREFIX": schema_prefix})
    cluster.env = env
    try:
        # IssueBadge reads the serial ranges (D1 badge.*) from the rule set in force: one rules service.
        env["BJSV_RULES_TARGET"] = _start(cluster, "rules", "rules", {**env, "BJSV_RULES_WORKERS": str(rules_workers)})
        for i in range(processes):
            cluster.targets.append(_start(cluster, "registry", f"registry{i}", env))
    except BaseException:
        cluster.stop()
        raise
    return cluster


@dataclass
class IssueResult:
    badges: int
    clients: int
    processes: int
    seconds: float
    calls_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    codes: list[str] = field(repr=False, default_factory=list)


async def issue_concurrently(
    targets: list[str], appointment_ids: list[int], clients: int, settings: Settings | None = None
) -> IssueResult:
    channels = [channel(t, token=auth_support.token(), settings=settings) for t in targets]
    stubs = [registry_pb2_grpc.RegistryServiceStub(ch) for ch in channels]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for a in appointment_ids:
        queue.put_nowait(a)
    latencies: list[float] = []
    codes: list[str] = []
    errors: list[str] = []

    async def client(i: int) -> None:
        stub = stubs[i % len(stubs)]
        while True:
            try:
                appt = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t0 = time.perf_counter()
            try:
                r = await stub.IssueBadge(pb.IssueBadgeRequest(appointment=f"appointments/{appt}"), timeout=60)
                codes.append(r.badge.code)
            except grpc.aio.AioRpcError as e:
                errors.append(f"{e.code().name}: {e.details()}")
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    seconds = time.perf_counter() - t0
    for ch in channels:
        await ch.close()
    if errors:
        print(f"{len(errors)} errors, e.g. {errors[:3]}", file=sys.stderr)
    return IssueResult(
        badges=len(codes), clients=clients, processes=len(targets), seconds=round(seconds, 2),
        calls_per_second=round(len(appointment_ids) / seconds, 1), p50_ms=round(percentile(latencies, 50) * 1000, 2),
        p99_ms=round(percentile(latencies, 99) * 1000, 2), errors=len(errors), codes=codes,
    )  # fmt: skip


@dataclass
class CodeCheck:
    rows: int
    distinct: int
    duplicates: int
    scopes: dict[str, int]
    gap_free: bool
    problems: list[str]


def check_codes(db: Database, returned: list[str]) -> CodeCheck:
    """Codes in the DB: unique; per prefix the serials are exactly 1..n; and what the clients got matches."""
    import sqlalchemy as sa

    from services.registry.storage import models as m

    rows = db.read_sync(lambda s: s.execute(sa.select(m.Badge.code, m.Badge.prefix, m.Badge.serial)).all())
    by_prefix: dict[str, list[int]] = defaultdict(list)
    for _code, prefix, serial in rows:
        by_prefix[prefix].append(serial)
    problems = []
    for prefix, serials in by_prefix.items():
        if sorted(serials) != list(range(1, len(serials) + 1)):
            problems.append(f"{prefix}: serials not 1..{len(serials)}")
    dup_returned = [c for c, n in Counter(returned).items() if n > 1]
    if dup_returned:
        problems.append(f"duplicate codes returned to clients: {dup_returned[:5]}")
    if sorted(returned) != sorted(c for c, _, _ in rows):
        problems.append("codes returned to clients differ from the codes stored")
    distinct = len({c for c, _, _ in rows})
    return CodeCheck(rows=len(rows), distinct=distinct, duplicates=len(rows) - distinct + len(dup_returned),
                     scopes={p: len(s) for p, s in sorted(by_prefix.items())}, gap_free=not problems,
                     problems=problems)  # fmt: skip


@dataclass
class VerifyResult:
    rate: float
    seconds: float
    calls: int
    achieved_rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int


async def open_loop(call, *, rate: float, seconds: float, sink: list[float] | None = None) -> VerifyResult:
    """Start `call(i)` every 1/rate s regardless of responses (latency under load); `call` returns ok.
    Each latency (s) is also appended to `sink`, to pool runs that alternate with another configuration."""
    latencies: list[float] = []
    errors = 0
    tasks = []

    async def one(i: int) -> None:
        nonlocal errors
        t0 = time.perf_counter()
        try:
            if not await call(i):
                errors += 1
        except grpc.aio.AioRpcError:
            errors += 1
        latencies.append(time.perf_counter() - t0)

    n = int(rate * seconds)
    start = time.perf_counter()
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    if sink is not None:
        sink.extend(latencies)
    return VerifyResult(
        rate=rate, seconds=seconds, calls=n, achieved_rate=round(n / elapsed, 1),
        p50_ms=round(percentile(latencies, 50) * 1000, 2), p99_ms=round(percentile(latencies, 99) * 1000, 2),
        max_ms=round(max(latencies) * 1000, 2), errors=errors,
    )  # fmt: skip


async def verify_load(target: str | list[str], codes: list[str], *, rate: float, seconds: float,
                      settings: Settings | None = None) -> VerifyResult:  # fmt: skip
    """VerifyBadge open-loop. `target` may be a list: calls go round-robin over the processes (replicas
    behind a balancer)."""
    targets = [target] if isinstance(target, str) else list(target)
    channels = [channel(t, token=auth_support.token(), settings=settings) for t in targets]
    stubs = [registry_pb2_grpc.RegistryServiceStub(ch) for ch in channels]
    for i, c in enumerate(codes[:20]):  # warm-up
        await stubs[i % len(stubs)].VerifyBadge(pb.VerifyBadgeRequest(code=c))

    async def verify(i: int) -> bool:
        r = await stubs[i % len(stubs)].VerifyBadge(pb.VerifyBadgeRequest(code=codes[i % len(codes)]), timeout=5)
        return r.status == pb.BADGE_STATUS_ACTIVE

    try:
        return await open_loop(verify, rate=rate, seconds=seconds)
    finally:
        for ch in channels:
            await ch.close()


async def health_baseline(
    target: str, *, rate: float, seconds: float, settings: Settings | None = None
) -> VerifyResult:
    """The floor on this machine, same client, same server process: gRPC Health.Check at the same rate."""
    async with channel(target, token=auth_support.token(), settings=settings) as ch:
        stub = health_pb2_grpc.HealthStub(ch)

        async def check(_i: int) -> bool:
            r = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            return r.status == health_pb2.HealthCheckResponse.SERVING

        return await open_loop(check, rate=rate, seconds=seconds)


async def outbox_backlog_drains(db: Database, wait_at_most: float = 30.0) -> tuple[int, float]:
    """Wait until the relay has published every event; returns (events recorded, seconds waited)."""
    import sqlalchemy as sa

    t0 = time.perf_counter()
    total = db.read_sync(lambda s: s.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one())
    while time.perf_counter() - t0 < wait_at_most:
        left = db.read_sync(
            lambda s: s.execute(sa.text("SELECT count(*) FROM outbox WHERE published_at IS NULL")).scalar_one()
        )
        if left == 0:
            break
        await asyncio.sleep(0.2)
    return total, round(time.perf_counter() - t0, 2)


def run_backend(backend: str, *, badges: int, clients: int, processes: int, verify_rate: float,
                verify_seconds: float, verify_spread: bool = False) -> dict:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix=f"bench-registry-{backend}-") as tmp:
        data_dir = Path(tmp)
        url, prefix = (PG_URL, f"b{uuid.uuid4().hex[:8]}_") if backend == "postgres" else ("", "")
        db = open_database(database_settings(data_dir, url, prefix))
        try:
            t0 = time.perf_counter()
            appointments = seed(db, default_specs(badges))
            seed_seconds = round(time.perf_counter() - t0, 2)
            cluster = start_cluster(data_dir, processes=processes, database_url=url, schema_prefix=prefix)
            try:
                issued = asyncio.run(issue_concurrently(cluster.targets, appointments, clients))
                check = check_codes(db, issued.codes)
                events, drain_seconds = asyncio.run(outbox_backlog_drains(db))
                targets = cluster.targets if verify_spread else cluster.targets[0]
                verify = asyncio.run(verify_load(targets, issued.codes, rate=verify_rate,
                                                 seconds=verify_seconds)) if verify_seconds > 0 else None  # fmt: skip
                baseline = None
                if verify_seconds > 0:
                    floor = health_baseline(cluster.targets[0], rate=verify_rate, seconds=verify_seconds)
                    baseline = asyncio.run(floor)
            finally:
                cluster.stop()
            plaintext = None
            if verify_seconds > 0:  # the same VerifyBadge load on one plaintext process (BJSV_TLS=off): TLS cost
                plain = start_cluster(data_dir, processes=1, database_url=url, schema_prefix=prefix, tls=False)
                try:
                    plaintext = asyncio.run(verify_load(plain.targets[0], issued.codes, rate=verify_rate,
                                                        seconds=verify_seconds, settings=plain.settings))  # fmt: skip
                finally:
                    plain.stop()
        finally:
            if url:
                import sqlalchemy as sa

                with db.write_engine.begin() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{prefix}registry" CASCADE'))
            db.dispose()
    out = {"backend": backend, "seed_seconds": seed_seconds, "issue": {k: v for k, v in asdict(issued).items()
                                                                        if k != "codes"},
           "codes": asdict(check), "events_recorded": events, "outbox_drained_after_s": drain_seconds,
           "verify": asdict(verify) if verify else None,
           "verify_plaintext": asdict(plaintext) if plaintext else None,
           "baseline_health_check": asdict(baseline) if baseline else None}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    auth_support.ensure_issuer()  # the services verify tokens against it (issue #12)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--badges", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--verify-rate", type=float, default=500)
    ap.add_argument("--verify-seconds", type=float, default=10)
    ap.add_argument("--verify-spread", action="store_true", help="spread VerifyBadge over all processes")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = []
    for backend in backends:
        if backend == "postgres" and not port_open("127.0.0.1", 5432, timeout=0.5):
            print("PostgreSQL not reachable at 127.0.0.1:5432; skipped", file=sys.stderr)
            continue
        r = run_backend(backend, badges=args.badges, clients=args.clients, processes=args.processes,
                        verify_rate=args.verify_rate, verify_seconds=args.verify_seconds,
                        verify_spread=args.verify_spread)  # fmt: skip
        results.append(r)
        if not args.json:
            i, c, v = r["issue"], r["codes"], r["verify"]
            print(
                f"[{backend}] IssueBadge: {i['badges']} badges, {i['processes']} processes × {i['clients']} clients:"
                f" {i['calls_per_second']} calls/s, p50 {i['p50_ms']} ms, p99 {i['p99_ms']} ms, errors {i['errors']}"
            )
            print(
                f"[{backend}] codes: {c['rows']} rows, {c['distinct']} distinct, duplicates {c['duplicates']},"
                f" gap-free {c['gap_free']} {c['scopes']} {c['problems'] or ''}"
            )
            print(
                f"[{backend}] events: {r['events_recorded']} recorded, outbox drained {r['outbox_drained_after_s']} s"
                " after the last call"
            )
            if v:
                print(
                    f"[{backend}] VerifyBadge at {v['rate']}/s for {v['seconds']} s"
                    f" (achieved {v['achieved_rate']}/s):"
                    f" p50 {v['p50_ms']} ms, p99 {v['p99_ms']} ms, max {v['max_ms']} ms, errors {v['errors']}"
                )
                p = r["verify_plaintext"]
                print(
                    f"[{backend}] VerifyBadge plaintext (BJSV_TLS=off), one process, same load:"
                    f" p50 {p['p50_ms']} ms, p99 {p['p99_ms']} ms, errors {p['errors']} — mutual TLS adds"
                    f" {v['p99_ms'] - p['p99_ms']:+.2f} ms p99"
                )
                b = r["baseline_health_check"]
                print(
                    f"[{backend}] baseline, gRPC Health.Check on the same process at {b['rate']}/s:"
                    f" p50 {b['p50_ms']} ms, p99 {b['p99_ms']} ms — VerifyBadge p99 is"
                    f" {v['p99_ms'] / b['p99_ms']:.1f}× the floor of any RPC here (target p99 ≤ 5 ms)"
                )
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    ok = all(r["codes"]["gap_free"] and r["codes"]["duplicates"] == 0 and r["issue"]["errors"] == 0 for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
