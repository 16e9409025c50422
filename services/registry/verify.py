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
from dataclasses import dataclass

import psycopg
from psycopg_pool import AsyncConnectionPool

from common.db import Database
from services.registry.domain.badges import door_status
from services.registry.domain.districts import CITY_CODE
from services.registry.storage import repository as repo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verification:
    """What the exam door needs (第十七条 佩戴证卡; 第十二条 内督证卡仅限本机构): what the badge face shows
    (附件2), nothing more — no ID number, which the face does not carry (issue #12, 个人信息保护法)."""

    code: str
    status: str
    holder_name: str
    photo_sha256: str
    type: str
    level: str
    issuer_name: str
    validity_text: str
    valid_from: dt.date
    valid_until: dt.date
    institution: str
    institution_name: str
    district_code: str
    status_article: str


def _as_date(v) -> dt.date:
    return v if isinstance(v, dt.date) else dt.date.fromisoformat(v)


def verification_of(row, as_of: dt.date) -> Verification:
    """A repository.VERIFY_SQL row → what the exam door sees on `as_of`."""
    (code_, revoked, valid_from, valid_until, validity_text, issuer, district, appt_status, article, full_name,
     photo_sha, typ, level, inst_number, inst_name, centre_name) = row  # fmt: skip
    valid_until = _as_date(valid_until)
    return Verification(
        code=code_, status=door_status(bool(revoked), valid_until, appt_status, as_of), holder_name=full_name,
        photo_sha256=photo_sha, type=typ, level=level,
        issuer_name=centre_name if issuer == f"agencies/{CITY_CODE}" else inst_name, validity_text=validity_text,
        valid_from=_as_date(valid_from), valid_until=valid_until,
        institution=f"institutions/{inst_number}" if inst_number else "", institution_name=inst_name or "",
        district_code=district, status_article=article,
    )  # fmt: skip


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

    async def verify(self, code: str, as_of: dt.date) -> Verification | None:
        if self._pool is None:
            raw = self.db.read_engine.raw_connection()
            try:
                row = repo.verify_row(raw, self._paramstyle, code=code)
            finally:
                raw.close()  # back to the pool
            return verification_of(row, as_of) if row else None
        await self._pool.open()  # no-op once open; opened on first use, inside the serving event loop
        for attempt in (1, 2):
            try:
                async with self._pool.connection() as conn:
                    cur = await conn.execute(repo.VERIFY_SQL_PG, (code,))
                    row = await cur.fetchone()
                return verification_of(row, as_of) if row else None
            except psycopg.OperationalError as e:
                if attempt == 2:
                    raise
                log.warning("verify connection dropped, retrying once: %s", e)
        return None

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
