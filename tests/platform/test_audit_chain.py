"""The tamper-evident audit trail (issue #12 item 5; 第二十二条 records, 第二十六条/第二十七条 decisions):
editing, deleting, reordering or inserting one row of a service's audit table makes `supervisionctl audit
verify` exit non-zero naming the entry (SQLite and PostgreSQL); two replicas appending at once never fork
the chain; the server records state-changing calls with their outcome; published heads catch a consistent
rewrite of a whole database."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from click.testing import Result
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from bjsv.notify.v1 import notify_pb2 as K
from bjsv.notify.v1 import notify_pb2_grpc
from common import audit, clients
from common.config import Settings
from common.db import Database
from supervisionctl import audit_cmds
from supervisionctl.natsd import free_port
from supervisionctl.stack import Stack
from tests import auth_support
from tests.conftest import stack_config

ROOT = Path(__file__).resolve().parents[2]
CTL = Path(sys.executable).parent / "supervisionctl"
SERVICE = "notify"


def entry(i: int) -> audit.Entry:
    return audit.Entry(
        time=f"2026-12-03T01:00:{i:02d}.000000+00:00",
        subject=f"official-{i}",
        organisation="agencies/08",
        role="district-agency",
        client="supervisionctl@ipv4:127.0.0.1:5000",
        method="/bjsv.registry.v1.RegistryService/RecordCaseDecision",
        resource=f"cases/{i}",
        request_digest="ab" * 32,
        outcome="OK",
        trace_id=f"trace-{i}",
    )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def migrated(request, tmp_path_factory) -> Iterator[tuple[Settings, dict[str, str]]]:
    """One service database per backend, migrated once for the module (the slow part of these tests)."""
    folder = tmp_path_factory.mktemp(f"audit-{request.param}")
    env = {"BJSV_DATA_DIR": str(folder), "BJSV_NATS_URL": f"nats://127.0.0.1:{free_port()}"}
    if request.param == "postgres":
        url, prefix = request.getfixturevalue("module_pg_url")
        env.update({"DATABASE_URL": url, "BJSV_DB_SCHEMA_PREFIX": prefix})
    settings = Settings(
        data_dir=folder, DATABASE_URL=env.get("DATABASE_URL"), db_schema_prefix=env.get("BJSV_DB_SCHEMA_PREFIX", "")
    )
    db = database(settings)
    db.migrate()
    db.dispose()
    yield settings, env


@pytest.fixture
def backend(migrated) -> tuple[Settings, dict[str, str]]:
    """Settings of the service's database, its audit chain emptied for this test, and the CLI's environment."""
    settings, _ = migrated
    db = database(settings)
    try:
        db.write_sync(empty_chain)
    finally:
        db.dispose()
    return migrated


def empty_chain(session) -> None:
    session.execute(sa.delete(audit.entries))
    session.execute(audit.head.update().values(seq=0, hash=audit.GENESIS))


def database(settings: Settings) -> Database:
    """The service's database (migrated once per backend by `migrated`)."""
    return Database(
        settings,
        service=SERVICE,
        metadata=audit.metadata,
        migrations=ROOT / "services" / SERVICE / "storage" / "migrations",
    )


def verify_cli(env: dict[str, str]) -> Result:
    """`supervisionctl audit verify` in this process: the same command without a Python start-up per call.
    In a thread of its own, as the command runs its own event loop (asyncio.run)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(CliRunner().invoke, audit_cmds.app, ["verify", "--service", SERVICE], env=env).result()


def forged_after(last: audit.Entry) -> dict:
    """What an attacker who knows the scheme appends: a correctly linked and hashed entry, head untouched."""
    forged = audit.Entry(**{**asdict(entry(99)), "seq": last.seq + 1, "prev_hash": last.hash})
    return asdict(audit.Entry(**{**asdict(forged), "hash": forged.digest()}))


TAMPERING = {
    "edit": (
        3,
        lambda s, rows: s.execute(sa.text("UPDATE audit_entry SET outcome = 'PERMISSION_DENIED' WHERE seq = 3")),
    ),
    "delete": (3, lambda s, rows: s.execute(sa.text("DELETE FROM audit_entry WHERE seq = 3"))),
    "reorder": (
        3,
        lambda s, rows: [
            s.execute(sa.text(q))
            for q in (
                "UPDATE audit_entry SET seq = -1 WHERE seq = 3",
                "UPDATE audit_entry SET seq = 3 WHERE seq = 4",
                "UPDATE audit_entry SET seq = 4 WHERE seq = -1",
            )
        ],
    ),
    "insert": (6, lambda s, rows: s.execute(audit.entries.insert().values(**forged_after(rows[-1])))),
}


@pytest.mark.parametrize("how", list(TAMPERING))
def test_audit_verify_names_the_first_tampered_entry_art22(backend, how):
    settings, env = backend
    db = database(settings)
    try:
        rows = [db.write_sync(audit.append, entry(i)) for i in range(1, 6)]
        untouched = verify_cli(env)
        assert untouched.exit_code == 0, untouched.output
        assert "完整，共 5 条" in untouched.stdout
        seq, tamper = TAMPERING[how]
        db.write_sync(tamper, rows)
        broken = verify_cli(env)
        assert broken.exit_code == 1, broken.output
        assert f"第 {seq} 条记录不可信" in broken.stdout, broken.stdout
    finally:
        db.dispose()


def test_two_replicas_appending_at_once_never_fork_the_chain(backend):
    settings, env = backend
    replicas = [database(settings), database(settings)]

    def append_many(db: Database, base: int) -> None:
        for i in range(25):
            db.write_sync(audit.append, entry(base + i))

    threads = [threading.Thread(target=append_many, args=(db, 100 * k)) for k, db in enumerate(replicas * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        count, broken = replicas[0].read_sync(audit.verify)
        assert (count, broken) == (100, None)
        assert verify_cli(env).exit_code == 0
    finally:
        for db in replicas:
            db.dispose()


@pytest.fixture(scope="module")
def notify_stack(tmp_path_factory):
    """notify alone, publishing its audit head every 0.2 s."""
    s = Stack(
        stack_config(tmp_path_factory.mktemp("audit-stack"), BJSV_AUDIT_HEAD_INTERVAL="0.2"), services=("notify",)
    )
    s.start(timeout=90)
    yield s
    s.stop()


def ctl(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    env = {**stack.config.service_env()}
    return subprocess.run([str(CTL), "audit", *args], env=env, capture_output=True, text=True, timeout=60)


def test_state_changing_calls_are_recorded_with_caller_and_outcome_reads_are_not(notify_stack):
    md = auth_support.bearer("agencies/08", "district-agency")
    with clients.sync_channel(notify_stack.config.target("notify")) as ch:
        stub = notify_pb2_grpc.NotifyServiceStub(ch)
        stub.SetContact(K.SetContactRequest(contact=K.Contact(recipient="agencies/08", email="d08@x.cn")), metadata=md)
        stub.ListNotifications(K.ListNotificationsRequest(recipient="agencies/08"), metadata=md)
        with pytest.raises(grpc.RpcError) as refused:
            stub.SetContact(
                K.SetContactRequest(contact=K.Contact(recipient="agencies/08", email="not-an-address")), metadata=md
            )
    found = ctl(notify_stack, "search", "--resource", "agencies/08", "--json")
    assert found.returncode == 0, found.stderr
    rows = json.loads(found.stdout)
    assert [(r["method"].rsplit("/", 1)[-1], r["outcome"]) for r in rows] == [
        ("SetContact", refused.value.code().name),
        ("SetContact", "OK"),
    ]
    ok = rows[1]
    assert (ok["organisation"], ok["role"], ok["service"]) == ("agencies/08", "district-agency", "notify")
    # `<certificate CN>@<peer>`: the test process presents the operator's certificate, or that of a service
    # an earlier test ran in this process (common.pki identity).
    assert re.fullmatch(r"[a-z]+@ipv4:127\.0\.0\.1:\d+", ok["client"]), ok
    assert len(ok["request_digest"]) == 64 and ok["trace_id"], ok


def audit_rows(stack: Stack) -> list[tuple[str, str, str]]:
    """(method, organisation, outcome) of every entry in notify's audit table, in order."""
    with sqlite3.connect(Path(stack.config.data_dir) / "notify.db") as db:
        return db.execute("SELECT method, organisation, outcome FROM audit_entry ORDER BY seq").fetchall()


def unauthenticated_refusals(stack: Stack, method: str) -> float:
    url = f"http://127.0.0.1:{stack.config.metrics_ports['notify']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        for family in text_string_to_metric_families(r.read().decode()):
            for sample in family.samples:
                if sample.name == "bjsv_unauthenticated_refusals_total" and sample.labels["method"] == method:
                    assert sample.labels["service"] == "notify"
                    return sample.value
    return 0.0


def test_unauthenticated_refusals_write_nothing_and_are_counted_forbidden_ones_are_audited(notify_stack):
    method = "/bjsv.notify.v1.NotifyService/SetContact"
    request = K.SetContactRequest(contact=K.Contact(recipient="agencies/08", email="d08@x.cn"))
    rows, counted = audit_rows(notify_stack), unauthenticated_refusals(notify_stack, method)
    anonymous = [(), (("authorization", "Bearer not-a-token"),), (("authorization", "Basic YWRtaW46YWRtaW4="),)]
    with clients.sync_channel(notify_stack.config.target("notify")) as ch:
        stub = notify_pb2_grpc.NotifyServiceStub(ch)
        for md in anonymous * 10:
            with pytest.raises(grpc.RpcError) as refused:
                stub.SetContact(request, metadata=md)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as forbidden:  # authenticated, but the auditor only reads
            stub.SetContact(request, metadata=auth_support.bearer("auditors/audit-office", "auditor"))
        assert forbidden.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # A refusal's entry is appended just after the caller got its status: once the auditor's has landed, so
    # would have any of the anonymous calls made before it. The table holds that one entry more, no other.
    deadline = time.monotonic() + 15
    while len(now := audit_rows(notify_stack)) == len(rows) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert now == [*rows, (method, "auditors/audit-office", "PERMISSION_DENIED")]
    assert unauthenticated_refusals(notify_stack, method) == counted + 30
    # Logged rate-limited: one line per method per 10 s with the count, not one line per refusal.
    logged = (notify_stack.config.log_dir / "notify.log").read_text().count(f"unauthenticated calls refused: {method}")
    assert 1 <= logged <= 3, logged


def test_published_heads_catch_a_consistent_rewrite_of_the_database(notify_stack):
    with auth_support.channel(notify_stack.config.target("notify")) as ch:
        notify_pb2_grpc.NotifyServiceStub(ch).SetContact(
            K.SetContactRequest(contact=K.Contact(recipient="agencies/09", email="d09@x.cn"))
        )
    deadline = time.monotonic() + 15
    while True:
        report = json.loads(ctl(notify_stack, "verify", "--service", "notify", "--json").stdout)
        chain = report["chains"][0]
        if chain["status"] == "ok" and chain["witnessed"] and chain["entries"]:
            break
        assert time.monotonic() < deadline, report
        time.sleep(0.3)

    def rewrite(session) -> None:
        """Change the first entry and recompute every hash and the head: only the published heads disagree."""
        rows = [
            audit.Entry(**r) for r in session.execute(sa.select(audit.entries).order_by(audit.entries.c.seq)).mappings()
        ]
        session.execute(sa.delete(audit.entries))
        session.execute(audit.head.update().values(seq=0, hash=audit.GENESIS))
        for i, row in enumerate(rows):
            changed = {"organisation": "agencies/A"} if i == 0 else {}
            audit.append(session, audit.Entry(**{**asdict(row), **changed, "seq": 0, "prev_hash": "", "hash": ""}))

    settings = Settings(data_dir=notify_stack.config.data_dir)
    db = Database(settings, service="notify", metadata=audit.metadata, migrations=ROOT / "services" / "notify")
    try:
        db.write_sync(rewrite)
        assert db.read_sync(audit.verify)[1] is None  # the database alone looks perfect
    finally:
        db.dispose()
    out = ctl(notify_stack, "verify", "--service", "notify")
    assert out.returncode == 1, out.stdout + out.stderr
    # The database alone cannot name entry 1 any more; the first published head it contradicts is named.
    assert "记录不可信" in out.stdout and "WITNESS_MISMATCH" in out.stdout
