#!/usr/bin/env python3
"""Notify bench: how many registry events per second the notify service absorbs (inbox writes), and the
delivery lag from event to inbox (p50/p99).

    .venv/bin/python bench/bench_notify.py                         # SQLite, 3000 badge.filed events
    .venv/bin/python bench/bench_notify.py --events 2000 --kind dispatch --replicas 2
    .venv/bin/python bench/bench_notify.py --events 1000 --rate 50     # open loop: lag without a backlog
    .venv/bin/python bench/bench_notify.py --backend postgres --json

What it does: starts a fresh nats-server and `--replicas` notify processes (`python -m services.notify`,
real clock, outbound channel NATS on, e-mail off) sharing one database; publishes `--events` registry
events exactly as the registry does (EventEnvelope on bjsv.registry.<type>, Nats-Msg-Id = event id) with
JetStream publish_async, as fast as NATS takes them; then waits until every resulting notification is in
its inbox (ListNotifications.total_size) and reads them back:
  * absorbed events/s = events / (time of the last inbox write − time of the first publish) — use the
    default burst mode for this; with --rate it is capped by the publish rate;
  * lag per notification = inbox create_time − the event's occurred_time (both wall clock) → p50/p99/max;
  * the per-recipient NATS deliveries are counted on bjsv.notify.inbox.> meanwhile.
Kinds: `badge` (badge.filed → 1 notification each), `dispatch` (dispatch.created, 2 supervisors → 3
notifications and ~14 durable timers each).
Results go to bench/results/notify.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen"), str(ROOT / "deploy"), str(ROOT / "tests" / "notify")]

import grpc  # noqa: E402 - after the path setup above
import nats  # noqa: E402
from bench_registry import tls_settings  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from notify_support import badge_filed, dispatch_created  # noqa: E402

from bjsv.notify.v1 import notify_pb2 as K  # noqa: E402
from bjsv.notify.v1 import notify_pb2_grpc  # noqa: E402
from common import pki  # noqa: E402
from supervisionctl.natsd import NatsServer, free_port, port_open  # noqa: E402
from tests import auth_support  # noqa: E402

PG_URL = os.environ.get("BJSV_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def start_notify(data_dir: Path, port: int, nats_url: str, extra: dict[str, str]) -> subprocess.Popen:
    env = {
        **os.environ,
        "BJSV_DATA_DIR": str(data_dir),
        "BJSV_NOTIFY_PORT": str(port),
        "BJSV_NATS_URL": nats_url,
        "BJSV_SMTP_HOST": "",
        "BJSV_LOG_LEVEL": "WARNING",
        "BJSV_NOTIFY_TICK_INTERVAL": "0.2",
        "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}:{ROOT / 'deploy'}",
        **extra,
    }
    env.pop("BJSV_NOTIFY_CLOCK", None)
    log = (data_dir / f"notify-{port}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.notify"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    with auth_support.channel(f"127.0.0.1:{port}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"notify exited with {proc.returncode}; see {log.name}")
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5).status == 1:
                    return proc
            except grpc.RpcError:
                time.sleep(0.1)
    raise SystemExit("notify did not become healthy")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def run(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    nats_srv = NatsServer(
        store_dir=tmp / "nats", port=free_port(), name="bench-notify", pki=tls_settings(tmp, True).pki_dir
    )
    nats_srv.start()
    extra: dict[str, str] = {}
    if args.backend == "postgres":
        extra = {"DATABASE_URL": PG_URL, "BJSV_DB_SCHEMA_PREFIX": f"bench{uuid.uuid4().hex[:6]}_"}
    ports = [free_port() for _ in range(args.replicas)]
    procs = [start_notify(tmp, p, nats_srv.url, extra) for p in ports]
    nc = await nats.connect(nats_srv.url, tls=pki.ssl_context())
    js = nc.jetstream()
    inbox_msgs = 0

    async def on_inbox(_msg):
        nonlocal inbox_msgs
        inbox_msgs += 1

    await nc.subscribe("bjsv.notify.inbox.>", cb=on_inbox)
    channels = [auth_support.aio_channel(f"127.0.0.1:{p}") for p in ports]
    stub = notify_pb2_grpc.NotifyServiceStub(channels[0])
    institutions = [f"institutions/11000{i:05d}" for i in range(args.recipients)]
    try:
        envs, sent_at = [], {}
        for i in range(args.events):
            if args.kind == "badge":
                env = badge_filed(i, institution=institutions[i % len(institutions)])
                expected_per_event = 1
            else:
                env = dispatch_created(10_000 + i, end=dt.date.today(), institution=institutions[i % len(institutions)])
                expected_per_event = 3
            envs.append(env)
        t0 = time.time()
        futures = []
        for k, env in enumerate(envs):
            if args.rate:
                # open loop at a fixed rate: lag then measures processing, not the backlog of a burst
                delay = t0 + k / args.rate - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            env.occurred_time.GetCurrentTime()
            sent_at[env.subject] = env.occurred_time.seconds + env.occurred_time.nanos / 1e9
            futures.append(
                await js.publish_async(
                    f"bjsv.registry.{env.type}", env.SerializeToString(), headers={"Nats-Msg-Id": env.event_id}
                )
            )
        await asyncio.gather(*futures)
        t_published = time.time()
        expected = args.events * expected_per_event
        recipients = institutions if args.kind == "badge" else None

        async def count() -> int:
            if recipients is not None:
                totals = await asyncio.gather(
                    *(stub.ListNotifications(K.ListNotificationsRequest(recipient=r, page_size=1)) for r in recipients)
                )
                return sum(t.total_size for t in totals)
            totals = await asyncio.gather(
                *(stub.ListNotifications(K.ListNotificationsRequest(recipient=r, page_size=1)) for r in institutions)
            )
            return sum(t.total_size for t in totals) * 3

        deadline = time.time() + args.timeout
        while (n := await count()) < expected:
            if time.time() > deadline:
                raise SystemExit(f"only {n}/{expected} notifications after {args.timeout}s")
            await asyncio.sleep(0.2)
        # read every institution inbox back for exact create times
        lags, last_write = [], 0.0
        for r in institutions:
            token = ""
            while True:
                page = await stub.ListNotifications(
                    K.ListNotificationsRequest(recipient=r, page_size=500, page_token=token)
                )
                for note in page.notifications:
                    created = note.create_time.seconds + note.create_time.nanos / 1e9
                    last_write = max(last_write, created)
                    origin = sent_at.get(note.subject) or sent_at.get(f"badges/{note.subject.split('/')[-1]}")
                    if origin is not None:
                        lags.append(created - origin)
                token = page.next_page_token
                if not token:
                    break
        absorb_seconds = max(last_write - t0, 1e-9)
        await asyncio.sleep(1.0)
        result = {
            "backend": args.backend,
            "replicas": args.replicas,
            "kind": args.kind,
            "events": args.events,
            "publish_rate": args.rate or "burst",
            "notifications": expected,
            "publish_seconds": round(t_published - t0, 3),
            "absorb_seconds": round(absorb_seconds, 3),
            "events_per_second": round(args.events / absorb_seconds, 1),
            "inbox_writes_per_second": round(expected / absorb_seconds, 1),
            "lag_p50_ms": round(pct(lags, 50) * 1000, 1),
            "lag_p99_ms": round(pct(lags, 99) * 1000, 1),
            "lag_max_ms": round(max(lags) * 1000, 1) if lags else None,
            "lag_samples": len(lags),
            "lag_mean_ms": round(statistics.fmean(lags) * 1000, 1) if lags else None,
            "nats_inbox_messages_seen": inbox_msgs,
            "cpu_count": os.cpu_count(),
            "loadavg_at_end": os.getloadavg()[0],
        }
        return result
    finally:
        for ch in channels:
            await ch.close()
        await nc.close()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        nats_srv.stop()


def main() -> None:
    auth_support.ensure_issuer()  # the services verify tokens against it (issue #12)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--kind", choices=["badge", "dispatch"], default="badge")
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--recipients", type=int, default=10)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--rate", type=float, default=0, help="publish at this many events/s (0 = burst)")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.backend == "postgres" and not port_open("127.0.0.1", 5432):
        raise SystemExit("PostgreSQL not reachable at 127.0.0.1:5432")
    result = asyncio.run(run(args))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "notify.json"
    existing = json.loads(path.read_text()) if path.exists() else []
    existing.append({**result, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
    path.write_text(json.dumps(existing, ensure_ascii=False, indent=2))
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:>26}: {v}")


if __name__ == "__main__":
    main()
