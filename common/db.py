"""Database access for a service: engines, one-transaction units of work, migrations.

Embedded default: one SQLite file per service under the data folder, WAL mode; writes start with
BEGIN IMMEDIATE so two processes on one file serialise their writers instead of failing on a lock
upgrade. Scale-out: DATABASE_URL (PostgreSQL); each service lives in its own schema, so services
never read each other's tables.

Repository functions are plain sync functions taking the session first; `Database.write/read` run them
in a worker thread inside one transaction, so the event loop never blocks on I/O.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from common import audit
from common.config import Settings
from common.events import committed_outbox, discard_outbox, ensure_parked_table, flush_outbox

log = logging.getLogger(__name__)
T = TypeVar("T")
WAL_AUTOCHECKPOINT_PAGES = 20_000  # 4 KiB pages: the WAL may reach ~80 MB before a commit checkpoints itself


class StartupError(Exception):
    """A problem an operator must fix before the service can start; printed as one line, no traceback."""


class Database:
    def __init__(self, settings: Settings, *, service: str, metadata: sa.MetaData, migrations: Path) -> None:
        self.service = service
        self.metadata = metadata
        self.migrations = migrations
        self.is_postgres = bool(settings.database_url)
        self.schema: str | None
        if settings.database_url:
            self.url = settings.database_url
            self.schema = f"{settings.db_schema_prefix}{service}"
        else:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.url = f"sqlite:///{(settings.data_dir / f'{service}.db').resolve()}"
            self.schema = None
        self.write_engine = self._make_engine(immediate=True)
        # PostgreSQL needs no separate reader; SQLite readers use deferred BEGIN so they never take the write lock.
        self.read_engine = self._make_engine(immediate=False) if not self.is_postgres else self.write_engine
        # "write" tells write transactions apart from reads on one engine (PostgreSQL), for common.idempotency
        self._write_sessions = sessionmaker(
            self.write_engine, expire_on_commit=False, info={"service": service, "write": True}
        )
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False, info={"service": service})
        self._commit_hooks: list[Callable[[list[dict]], None]] = []
        # Outbox rows collected by record_event are inserted just before any session commits (all sessions,
        # so no event can be dropped by a session made elsewhere); a rollback discards them.
        if not event.contains(Session, "before_commit", flush_outbox):
            event.listen(Session, "before_commit", flush_outbox)
            event.listen(Session, "after_rollback", discard_outbox)

    def _make_engine(self, *, immediate: bool) -> Engine:
        if self.is_postgres:
            engine = sa.create_engine(self.url, pool_size=8, max_overflow=8, pool_pre_ping=True)
            schema = self.schema

            @event.listens_for(engine, "connect")
            def _search_path(dbapi_conn, _record) -> None:
                with dbapi_conn.cursor() as cur:
                    cur.execute(f'SET search_path TO "{schema}"')
                dbapi_conn.commit()

            return engine
        engine = sa.create_engine(self.url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (pysqlite's own is deferred)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints run in the background (checkpoints()), not inside whichever commit crosses the
            # default 1,000 pages: that commit, on a request's path, took milliseconds longer (p99). This
            # limit only matters if the background checkpoints fall far behind.
            cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:
            conn.exec_driver_sql(begin)

        return engine

    # -- units of work ---------------------------------------------------------------------------------

    def on_commit(self, hook: Callable[[list[dict]], None]) -> None:
        """Call `hook(outbox rows)` (from the committing thread) after every write transaction that inserted
        outbox rows: the relay publishes them without reading them back."""
        self._commit_hooks.append(hook)

    def write_sync(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        with self._write_sessions() as session:
            with session.begin():
                result = fn(session, *args, **kwargs)
                call = audit.record_in(session)  # the gRPC call's audit entry commits with its change
            rows = committed_outbox(session)
        if call is not None:
            call.recorded = True
        if rows:
            for hook in self._commit_hooks:
                hook(rows)
        return result

    def read_sync(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        with self._read_sessions() as session, session.begin():
            return fn(session, *args, **kwargs)

    async def write(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run `fn(session, ...)` in one write transaction in a worker thread; commit when it returns."""
        return await asyncio.to_thread(self.write_sync, fn, *args, **kwargs)

    async def read(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(self.read_sync, fn, *args, **kwargs)

    async def checkpoints(self, every: float = 1.0) -> None:
        """SQLite: copy the WAL back into the database file every `every` seconds, off the request path
        (PASSIVE: never waits for readers or writers). A background task of the server (common.server)."""
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self._checkpoint)
            except OperationalError as e:  # e.g. the file is busy being migrated; the next round retries
                log.warning("WAL checkpoint failed: %s", e)

    def _checkpoint(self) -> None:
        with self.read_engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    # -- lifecycle ---------------------------------------------------------------------------------------

    def migrate(self) -> None:
        """alembic upgrade head; safe to run from several replicas at once."""
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(self.migrations))
        cfg.attributes["target_metadata"] = self.metadata
        try:
            with self.write_engine.begin() as conn:
                if self.schema is not None:  # PostgreSQL (SQLite has no schemas)
                    # Serialise concurrent migrations of this service's schema across replicas.
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(self.schema.encode())})
                    conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                ensure_parked_table(conn)
        except OperationalError as e:
            where = self.url.split("@")[-1] if self.is_postgres else self.url
            raise StartupError(
                f"cannot open the {self.service} database at {where}: {e.orig}. "
                "Fix: check DATABASE_URL (PostgreSQL must be running and reachable) or unset it for SQLite."
            ) from None

    def require_migrated(self) -> None:
        """Refuse to start on a schema behind this code (BJSV_MIGRATE_ON_START=false: a Job migrates first)."""
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(self.migrations))
        head = ScriptDirectory.from_config(cfg).get_current_head()
        try:
            with self.read_engine.connect() as conn:
                # The connection's search_path is the service schema, so alembic_version is found there.
                current = MigrationContext.configure(conn).get_current_revision()
        except OperationalError as e:
            raise StartupError(f"cannot open the {self.service} database: {e.orig}. Fix: check DATABASE_URL.") from None
        if current != head:
            raise StartupError(
                f"the {self.service} database is at revision {current or 'none'}, this code needs {head}. "
                "Fix: run the migration Job (`supervisionctl migrate`) before rolling out the services."
            )

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()
