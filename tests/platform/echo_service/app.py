"""A minimal writer service built on the shared platform (common/), used to test the platform itself.

Runs as a real process (`python tests/platform/echo_service/app.py`): gRPC with health/reflection and the
error interceptor, a SQLite/PostgreSQL database with the outbox, the relay to JetStream. Its RPCs take
and return raw bytes, so it needs no proto of its own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import psycopg
import sqlalchemy as sa
from google.protobuf.wrappers_pb2 import StringValue

from common.bus import Bus
from common.config import Settings
from common.db import Database
from common.errors import FieldViolation, InvalidArgument
from common.events import platform_tables, record_event
from common.server import Service, Servicer, run

SERVICE_NAME = "bjsv.test.v1.EchoService"
metadata = sa.MetaData()
items = sa.Table("item", metadata, sa.Column("key", sa.String(100), primary_key=True))
platform_tables(metadata)


class EchoSettings(Settings):
    echo_port: int = 50099


def _record(session, key: str) -> None:
    session.execute(items.insert().values(key=key))
    record_event(session, type="item.recorded", subject=f"items/{key}", payload=StringValue(value=key))


def build() -> Service:
    settings = EchoSettings()
    db = Database(settings, service="echo", metadata=metadata, migrations=Path(__file__).parent / "migrations")
    bus = Bus(settings, service="echo")

    async def record(request: bytes, ctx) -> bytes:
        await db.write(_record, request.decode())
        return b"ok"

    async def slow_record(request: bytes, ctx) -> bytes:
        await asyncio.sleep(1.0)
        await db.write(_record, request.decode())
        return b"ok"

    async def invalid(request: bytes, ctx) -> bytes:
        raise InvalidArgument("ECHO_KEY_REQUIRED", [FieldViolation("key", "键不能为空")])

    async def lose_database(request: bytes, ctx) -> bytes:
        # The connection dies inside the transaction, as when PostgreSQL restarts (PostgreSQL only).
        await db.write(lambda session: session.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())")))
        return b"ok"

    async def lose_direct_connection(request: bytes, ctx) -> bytes:
        # A service's own psycopg connection outside SQLAlchemy (the registry's VerifyBadge pool), cut the
        # same way (PostgreSQL only).
        conninfo = sa.make_url(settings.database_url or "").set(drivername="postgresql")
        async with await psycopg.AsyncConnection.connect(conninfo.render_as_string(hide_password=False)) as conn:
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return b"ok"

    async def crash(request: bytes, ctx) -> bytes:
        raise RuntimeError("secret internal detail")

    handlers = {
        name: grpc.unary_unary_rpc_method_handler(fn)
        for name, fn in {
            "Record": record,
            "SlowRecord": slow_record,
            "Invalid": invalid,
            "Crash": crash,
            "LoseDatabase": lose_database,
            "LoseDirectConnection": lose_direct_connection,
        }.items()
    }
    generic = grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)
    return Service(
        name="echo",
        settings=settings,
        servicers=[Servicer(lambda _impl, server: server.add_generic_rpc_handlers((generic,)), None, SERVICE_NAME)],
        database=db,
        bus=bus,
    )


if __name__ == "__main__":
    run(build)
