"""Event pipeline benchmark: outbox → relay → JetStream → durable consumer, next to raw nats-py
JetStream publish/consume measured in the same run on the same fresh nats-server (the ceiling).

    .venv/bin/python bench/bench_pipeline.py [--events 20000] [--batch 200]

The pipeline side commits state changes the way services do (SQLite file, WAL, one transaction per
`--batch` events with their outbox rows), the relay publishes them, and a common.bus.Subscription
consumes them; latency is commit → handler. Target (issue #2): pipeline ≥ 50 % of raw throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import nats
import sqlalchemy as sa
from google.protobuf.wrappers_pb2 import StringValue

from common.bus import Bus, OutboxRelay, Subscription
from common.config import Settings
from common.db import Database
from common.events import platform_tables, record_event
from supervisionctl.natsd import NatsServer, free_port


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def raw(url: str, n: int, rate: float | None = None, name: str = "RAW") -> dict:
    """The ceiling: publish_async with acks + a pull consumer, 128-byte payloads, same server.
    With `rate`, one publish every 1/rate s (latency at a steady load) instead of as fast as possible."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name=name, subjects=[f"{name.lower()}.>"])
    payload = b"x" * 128
    sent: dict[str, float] = {}
    lat: list[float] = []
    sub = await js.pull_subscribe(f"{name.lower()}.>", durable="raw", stream=name)

    async def consume() -> None:
        while len(lat) < n:
            try:
                msgs = await sub.fetch(500, timeout=1)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            now = time.perf_counter()
            for m in msgs:
                lat.append(now - sent[m.headers["Nats-Msg-Id"]])
                await m.ack()

    start = time.perf_counter()
    consumer = asyncio.create_task(consume())
    futures = []
    for i in range(n):
        key = f"r{i}"
        if rate:
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        sent[key] = time.perf_counter()
        futures.append(await js.publish_async(f"{name.lower()}.{i % 8}", payload, headers={"Nats-Msg-Id": key}))
    await asyncio.gather(*futures)
    await consumer
    elapsed = time.perf_counter() - start
    await nc.close()
    return {"events_per_s": n / elapsed, "p50_ms": pct(lat, 0.5) * 1e3, "p99_ms": pct(lat, 0.99) * 1e3}


async def pipeline(url: str, data_dir: Path, n: int, batch: int, rate: float | None = None) -> dict:
    """Commit `n` events in transactions of `batch`; with `rate`, one event per transaction every 1/rate s."""
    # The outbox → NATS pipeline itself, against a local plaintext nats-server (transport cost is not measured here).
    settings = Settings(data_dir=data_dir, nats_url=url, outbox_poll_interval=0.2, tls="off")
    metadata = sa.MetaData()
    items = sa.Table("item", metadata, sa.Column("key", sa.String(100), primary_key=True))
    platform_tables(metadata)
    db = Database(settings, service="bench", metadata=metadata, migrations=data_dir)  # tables made directly:
    metadata.create_all(db.write_engine)
    bus = Bus(settings, service="bench")
    await bus.connect()
    await bus.ensure_stream("bench")
    await bus.ensure_dlq()
    committed: dict[str, float] = {}
    lat: list[float] = []
    done = asyncio.Event()

    async def handler(env) -> None:
        lat.append(time.perf_counter() - committed[env.subject])
        if len(lat) >= n:
            done.set()

    sub = Subscription(durable="bench", source="bench", types=["item.recorded"], handler=handler, batch=500)
    relay = OutboxRelay(db, bus, poll_interval=0.2)
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(sub.run(bus))]

    def write(session, keys: list[str]) -> None:
        session.execute(items.insert(), [{"key": k} for k in keys])
        for k in keys:
            record_event(session, type="item.recorded", subject=f"items/{k}", payload=StringValue(value=k))

    start = time.perf_counter()
    step = 1 if rate else batch
    for first in range(0, n, step):
        if rate:
            await asyncio.sleep(max(0.0, start + first / rate - time.perf_counter()))
        keys = [f"k{i}" for i in range(first, min(n, first + step))]
        now = time.perf_counter()  # taken before the commit: latency includes the write itself
        for k in keys:
            committed[f"items/{k}"] = now
        await db.write(write, keys)
    await asyncio.wait_for(done.wait(), timeout=300)
    elapsed = time.perf_counter() - start
    sub.stop()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await bus.close()
    db.dispose()
    return {"events_per_s": n / elapsed, "p50_ms": pct(lat, 0.5) * 1e3, "p99_ms": pct(lat, 0.99) * 1e3}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=200, help="events per committed transaction")
    parser.add_argument("--rate", type=float, default=200.0, help="events/s of the steady-load latency phase")
    args = parser.parse_args()
    paced_n = int(args.rate * 5)
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(store_dir=Path(tmp) / "nats", port=free_port(), name="bench")
        server.start()
        try:
            r = await raw(server.url, args.events)
            p = await pipeline(server.url, Path(tmp) / "data", args.events, args.batch)
            rl = await raw(server.url, paced_n, rate=args.rate, name="RAWPACED")
            pl = await pipeline(server.url, Path(tmp) / "paced", paced_n, 1, rate=args.rate)
        finally:
            server.stop()

    def row(label: str, m: dict) -> str:
        return f"{label:44}{m['events_per_s']:>10.0f}{m['p50_ms']:>10.1f}{m['p99_ms']:>10.1f}"

    head = f"{'':44}{'events/s':>10}{'p50 ms':>10}{'p99 ms':>10}"
    print(f"saturated: {args.events} events ({args.batch} per transaction for the pipeline)")
    print(head)
    print(row("  raw nats-py JetStream (ceiling)", r))
    print(row("  outbox→relay→JetStream→consumer", p))
    print(f"steady load: {args.rate:.0f} events/s for 5 s (one event per transaction), latency commit→handler")
    print(head)
    print(row("  raw nats-py JetStream", rl))
    print(row("  outbox→relay→JetStream→consumer", pl))
    ratio = p["events_per_s"] / r["events_per_s"]
    print(f"pipeline / raw throughput = {ratio:.0%} (target ≥ 50%): {'met' if ratio >= 0.5 else 'NOT met'}")
    print("one run each; repeat the command for the spread")


if __name__ == "__main__":
    asyncio.run(main())
