"""The VerifyBadge read path (exam door; target p99 ≤ 5 ms at 500 calls/s on one 2-core machine).

One indexed query (repository.VERIFY_SQL) on a DB-API connection, without an ORM session, and without a
thread hand-off (a worker thread must win the GIL back from the busy event loop, and CPython's 5 ms switch
interval then shows in p99):
- SQLite: a pooled connection, on the event loop (~20 µs).
- PostgreSQL: psycopg's async connections on the event loop, from a small psycopg_pool pool; autocommit
  (one statement = one snapshot: no BEGIN/ROLLBACK round trips) and the statement prepared once per
  connection. A broken connection is dropped by the pool and the call retried once.
"""

from __future__ import annotations

import datetime as dt
import logging

import psycopg
from psycopg_pool import AsyncConnectionPool

from common.db import Database
from services.registry.storage import repository as repo

log = logging.getLogger(__name__)


class VerifyReader:
    def __init__(self, db: Database, *, connections: int = 4) -> None:
        self.db = db
        self._paramstyle = db.read_engine.dialect.paramstyle
        self._pool: AsyncConnectionPool | None = None
        if db.is_postgres:
            url = db.read_engine.url.set(drivername="postgresql")
            self._pool = AsyncConnectionPool(
                url.render_as_string(hide_password=False),
                min_size=1,
                max_size=connections,
                open=False,
                kwargs={"autocommit": True, "prepare_threshold": 0, "options": f"-c search_path={db.schema}"},
                name="verify",
            )

    async def verify(self, code: str, as_of: dt.date) -> repo.Verification | None:
        if self._pool is None:
            raw = self.db.read_engine.raw_connection()
            try:
                return repo.verify_dbapi(raw, self._paramstyle, code=code, as_of=as_of)
            finally:
                raw.close()  # back to the pool
        await self._pool.open()  # no-op once open; opened on first use, inside the serving event loop
        for attempt in (1, 2):
            try:
                async with self._pool.connection() as conn:
                    cur = await conn.execute(repo.VERIFY_SQL_PG, (code,))
                    row = await cur.fetchone()
                return repo.verification_of(row, as_of) if row else None
            except psycopg.OperationalError as e:
                if attempt == 2:
                    raise
                log.warning("verify connection dropped, retrying once: %s", e)
        return None

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
