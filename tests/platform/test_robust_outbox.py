"""A poison row never blocks the outbox (issue 13): the relay parks it with its reason, the rows behind it
flow, and the operator lists, retries or discards it (`supervisionctl outbox`). Real nats-server, real
SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from pathlib import Path

import nats
import pytest
import sqlalchemy as sa
from google.protobuf.wrappers_pb2 import StringValue

from common import events, pki
from common.bus import PARK_AFTER, Bus, OutboxRelay
from common.config import Settings
from common.db import Database
from common.events import OUTBOX, outbox_row, platform_tables, record_event

SOURCE = "poisontest"
STREAM = f"BJSV_{SOURCE.upper()}"


@pytest.fixture
async def parts(tmp_path: Path, nats_server, request):
    settings = Settings(data_dir=tmp_path, nats_url=nats_server.url)
    if "postgres" in request.keywords:
        url, prefix = request.getfixturevalue("pg_url")
        settings = Settings(data_dir=tmp_path, nats_url=nats_server.url, database_url=url, db_schema_prefix=prefix)
    metadata = sa.MetaData()
    platform_tables(metadata)
    db = Database(settings, service=SOURCE, metadata=metadata, migrations=tmp_path)
    with db.write_engine.begin() as conn:
        if db.is_postgres:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{db.schema}"'))
        metadata.create_all(conn)
    bus = Bus(settings, service=SOURCE)
    await bus.connect()
    # Deleting a stream is the operator's right, never a service's (natsd.service_permissions).
    operator = await nats.connect(nats_server.url, tls=pki.ssl_context())
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await operator.jetstream().delete_stream(STREAM)
    await operator.close()
    await bus.ensure_stream(SOURCE)
    relay = OutboxRelay(db, bus, poll_interval=0.1, grace=0.5)
    task = asyncio.create_task(relay.run())
    yield db, bus, relay
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await bus.close()
    db.dispose()


def write_events(db: Database, values: list[str]) -> None:
    def write(session) -> None:
        for i, value in enumerate(values):
            record_event(session, type="item.recorded", subject=f"items/{i}", payload=StringValue(value=value))

    db.write_sync(write)


async def stored_count(bus: Bus) -> int:
    return (await bus.js.stream_info(STREAM)).state.messages


async def until(check, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ok = check()
        if ok if not asyncio.iscoroutine(ok) else await ok:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {seconds}s")


async def test_an_event_over_the_max_payload_is_parked_with_its_reason_and_the_next_100_arrive_within_a_second(
    parts, caplog
):
    db, bus, relay = parts
    caplog.set_level(logging.ERROR, logger="common.bus")
    write_events(db, ["x" * (bus.nc.max_payload + 10)])  # e.g. a 1 MiB reason before input bounds existed
    await until(lambda: relay.parked == 1)
    started = time.monotonic()
    write_events(db, [str(i) for i in range(100)])
    await until(lambda: _eq(stored_count(bus), 100), seconds=1.0)
    assert time.monotonic() - started < 1.0

    parked = db.read_sync(events.list_parked)
    assert len(parked) == 1 and "超过消息上限" in parked[0]["reason"] and parked[0]["size"] > bus.nc.max_payload
    assert any("parked event" in r.getMessage() for r in caplog.records)  # the operator alert
    _, _, n_parked = db.read_sync(events.backlog)
    assert n_parked == 1
    await until(lambda: db.read_sync(events.backlog)[0] == 0)  # the 100 are marked too

    # Discarded for good: gone from the parked table, never published.
    assert db.write_sync(events.unpark, [parked[0]["event_id"]], retry=False) == [parked[0]["event_id"]]
    assert db.read_sync(events.list_parked) == [] and await stored_count(bus) == 100


async def test_a_row_jetstream_keeps_refusing_is_parked_after_n_tries_and_flows_again_once_retried(parts):
    db, bus, relay = parts
    info = await bus.js.stream_info(STREAM)
    info.config.max_msg_size = 2000  # the stream refuses larger messages (a per-row error, NATS is fine)
    await bus.js.update_stream(info.config)
    write_events(db, ["a", "y" * 3000, "b"])
    await until(lambda: relay.parked == 1)
    await until(lambda: _eq(stored_count(bus), 2))
    (row,) = db.read_sync(events.list_parked)
    assert f"拒收 {PARK_AFTER} 次" in row["reason"]

    info.config.max_msg_size = -1  # the operator fixed the cause: retry puts the row back in the outbox
    await bus.js.update_stream(info.config)
    assert db.write_sync(events.unpark, [row["event_id"]], retry=True) == [row["event_id"]]
    await until(lambda: _eq(stored_count(bus), 3))
    assert db.read_sync(events.list_parked) == []
    outbox = platform_tables(sa.MetaData())[OUTBOX]
    assert db.read_sync(lambda s: s.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()) == 3


async def _eq(value, expected) -> bool:
    return (await value) == expected


@pytest.mark.postgres
async def test_on_postgresql_a_leftover_row_too_large_is_parked_by_the_scan_in_its_claiming_transaction(parts):
    """A process committed an oversized event and died before handing it over: the scan (FOR UPDATE SKIP
    LOCKED) parks it in the transaction that claimed it, and publishes the row behind it."""
    db, bus, _ = parts
    written = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
    rows = [
        outbox_row(
            source=SOURCE,
            type="item.recorded",
            subject=f"items/{i}",
            payload=StringValue(value=value),
            trace_id="",
            actor="",
            occurred=written,
        )
        for i, value in enumerate(["y" * (bus.nc.max_payload + 10), "after"])
    ]
    outbox = platform_tables(sa.MetaData())[OUTBOX]
    db.write_sync(lambda s: s.execute(outbox.insert(), rows))  # no hand-over: the writer is gone
    await until(lambda: len(db.read_sync(events.list_parked)) == 1)  # parked and the rest marked: one commit
    assert await stored_count(bus) == 1
    (row,) = db.read_sync(events.list_parked)
    assert row["event_id"] == rows[0]["event_id"] and "超过消息上限" in row["reason"]
    await until(lambda: db.read_sync(events.backlog)[0] == 0)
