"""Rules replicas starting together (issue #16): each registers the rule-set versions it serves, and the
registration is idempotent and race-free, on the shared PostgreSQL and on one SQLite file alike."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from rules_helpers import RULESETS
from rules_service import RulesProcess
from sqlalchemy.orm import Session

from common.config import Settings
from common.db import Database
from services.rules.domain.ruleset import load_catalog
from services.rules.storage import models, repository
from supervisionctl.natsd import free_port

MIGRATIONS = Path(repository.__file__).parent / "migrations"
VERSIONS = sa.text("SELECT version FROM ruleset_version ORDER BY version")


def _database(tmp_path: Path, url: str = "", prefix: str = "") -> Database:
    db = Database(
        Settings(data_dir=tmp_path, database_url=url, db_schema_prefix=prefix),
        service="rules",
        metadata=models.Base.metadata,
        migrations=MIGRATIONS,
    )
    db.migrate()
    return db


def _save(session: Session) -> list[str]:
    rulesets = list(load_catalog(RULESETS).rulesets)
    return repository.save_ruleset_versions(session, rulesets=rulesets, loaded_at=dt.datetime.now(dt.UTC), events=[])


def _second_replica(db: Database, outcome: dict) -> None:
    try:
        with Session(db.write_engine, info={"service": "rules"}) as session, session.begin():
            outcome["pid"] = session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            outcome["stored"] = _save(session)
    except sa.exc.SQLAlchemyError as e:  # reported by the test's assertion (a unique violation, say)
        outcome["error"] = e


def _waits_on_a_lock(db: Database, thread: threading.Thread, outcome: dict) -> bool:
    """Whether the second replica's backend waits on a lock (the first replica's uncommitted row)."""
    waiting = sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid")
    deadline = time.monotonic() + 20
    with db.write_engine.connect() as probe:
        while time.monotonic() < deadline and thread.is_alive():
            pid = outcome.get("pid")
            if pid is not None and probe.execute(waiting, {"pid": pid}).scalar() == "Lock":
                return True
            probe.rollback()  # a fresh snapshot of pg_stat_activity
            time.sleep(0.02)
    return False


@pytest.mark.postgres
def test_a_second_replica_registering_the_same_version_while_the_first_commits_waits_and_skips_it(tmp_path, pg_url):
    """The second INSERT waits on the first one's uncommitted row; after the commit it skips it (a
    read-then-insert would have read nothing and failed with a unique violation here)."""
    url, prefix = pg_url
    db = _database(tmp_path, url, prefix)
    first = Session(db.write_engine, info={"service": "rules"})
    thread = threading.Thread(target=_second_replica, args=(db, outcome := {}))
    try:
        first.begin()
        stored_first = _save(first)
        first.flush()  # the first replica's rows are written, not yet committed
        assert stored_first, "the first replica stores every version it serves"
        thread.start()
        assert _waits_on_a_lock(db, thread, outcome), f"the second replica did not wait for the first: {outcome}"
        first.commit()
    finally:
        first.close()  # rolls back if not committed, so the second replica never waits forever
        if thread.ident is not None:
            thread.join(20)
    assert "error" not in outcome, repr(outcome.get("error"))
    assert outcome["stored"] == []
    with db.read_engine.connect() as conn:
        assert list(conn.execute(VERSIONS).scalars()) == sorted(stored_first)
    db.write_engine.dispose()


def _start_two_replicas(tmp_path: Path, nats_server, env: dict[str, str]) -> list[RulesProcess]:
    replicas = [
        RulesProcess(
            data_dir=tmp_path / f"rules-{i}",
            port=free_port(),
            nats_url=nats_server.url,
            workers=1,
            extra_env={**env, "BJSV_DATA_DIR": str(tmp_path / "shared")},  # one SQLite file without DATABASE_URL
        )
        for i in (1, 2)
    ]
    for r in replicas:
        r.launch()  # together: both migrate, load the rule sets and register their versions at once
    for r in replicas:
        r.wait_serving(timeout=90)
    return replicas


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_two_rules_replicas_started_together_both_serve_and_register_each_version_once(
    tmp_path, nats_server, backend, request
):
    env = {"DATABASE_URL": ""}
    if backend == "postgresql":
        url, prefix = request.getfixturevalue("pg_url")
        env = {"DATABASE_URL": url, "BJSV_DB_SCHEMA_PREFIX": prefix}
    replicas = _start_two_replicas(tmp_path, nats_server, env)
    try:
        for r in replicas:
            assert r.proc is not None and r.proc.poll() is None, r.log.read_text()[-2000:]
            log = r.log.read_text()
            assert "IntegrityError" not in log and "Traceback" not in log, log[-2000:]
    finally:
        for r in replicas:
            r.stop()
    db = _database(tmp_path / "shared", env["DATABASE_URL"], env.get("BJSV_DB_SCHEMA_PREFIX", ""))
    expected = sorted(rs.version for rs in load_catalog(RULESETS).rulesets)
    with db.read_engine.connect() as conn:
        assert list(conn.execute(VERSIONS).scalars()) == expected
    db.write_engine.dispose()
