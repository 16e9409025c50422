"""Idempotent writes (issue 13 item 5, AIP-155 `request_id`): the registry is SIGKILLed between the commit of
IssueBadge and its response (the test-only fault hook of common.idempotency); the client sees UNAVAILABLE, the
registry is started again, and the retry with the same key returns the same badge: 0 duplicates, never
ALREADY_EXISTS. The same key with another request is REQUEST_ID_REUSED. Eight concurrent calls with one key
issue one badge and all answer it. On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import uuid
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from bjsv.registry.v1 import registry_pb2 as pb
from bjsv.registry.v1 import registry_pb2_grpc
from common.idempotency import KILL_AFTER_COMMIT_ENV
from tests import auth_support

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_registry", ROOT / "bench" / "bench_registry.py")
bench = sys.modules.get("bench_registry") or importlib.util.module_from_spec(_spec)
if "bench_registry" not in sys.modules:
    sys.modules["bench_registry"] = bench  # dataclasses look their module up in sys.modules
    _spec.loader.exec_module(bench)


def _reason(err: grpc.RpcError) -> str:
    status = rpc_status.from_call(err)
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""


def _badge_rows(db, appointment_id: int) -> list[str]:
    return db.read_sync(
        lambda s: s.execute(
            sa.text("SELECT code FROM badge WHERE appointment_id = :a"), {"a": appointment_id}
        ).scalars().all()
    )  # fmt: skip


async def issue_concurrently(target: str, request: pb.IssueBadgeRequest, calls: int = 8) -> set[str]:
    async with auth_support.aio_channel(target) as ch:
        stub = registry_pb2_grpc.RegistryServiceStub(ch)
        answers = await asyncio.gather(*(stub.IssueBadge(request, timeout=30) for _ in range(calls)))
    return {a.badge.code for a in answers}


def run_kill_between_commit_and_response(tmp_path: Path, monkeypatch, database_url: str = "", prefix: str = ""):
    db = bench.open_database(bench.database_settings(tmp_path, database_url, prefix))
    appointment, other_appointment = bench.seed(db, bench.default_specs(8))[:2]
    monkeypatch.setenv(KILL_AFTER_COMMIT_ENV, "IssueBadge")
    cluster = bench.start_cluster(tmp_path, processes=1, database_url=database_url, schema_prefix=prefix)
    try:
        key = str(uuid.uuid4())
        request = pb.IssueBadgeRequest(appointment=f"appointments/{appointment}", request_id=key)
        with auth_support.channel(cluster.targets[0]) as ch, pytest.raises(grpc.RpcError) as lost:
            registry_pb2_grpc.RegistryServiceStub(ch).IssueBadge(request, timeout=30)
        assert lost.value.code() == grpc.StatusCode.UNAVAILABLE
        killed = cluster.procs[-1]
        assert killed.wait(10) == -9  # SIGKILL after the commit: the response was lost
        committed = _badge_rows(db, appointment)
        assert len(committed) == 1  # the badge was committed although the client saw UNAVAILABLE

        env = {k: v for k, v in cluster.env.items() if k != KILL_AFTER_COMMIT_ENV}
        target = bench._start(cluster, "registry", "registry-restarted", env)
        with auth_support.channel(target) as ch:
            stub = registry_pb2_grpc.RegistryServiceStub(ch)
            retried = stub.IssueBadge(request, timeout=30)  # rebuilt from the resource name the key row holds
            again = stub.IssueBadge(request, timeout=30)  # replayed from the stored response bytes
            other = pb.IssueBadgeRequest(appointment=request.appointment, request_id=key, explicit_serial=7)
            with pytest.raises(grpc.RpcError) as reused:
                stub.IssueBadge(other, timeout=30)
            without_key = pb.IssueBadgeRequest(appointment=request.appointment)
            with pytest.raises(grpc.RpcError) as duplicate:
                stub.IssueBadge(without_key, timeout=30)
        twin = pb.IssueBadgeRequest(appointment=f"appointments/{other_appointment}", request_id=str(uuid.uuid4()))
        concurrent = asyncio.run(issue_concurrently(target, twin))
    finally:
        cluster.stop()
    try:
        assert retried.badge.code == committed[0] and retried.badge.name == f"badges/{committed[0]}"
        assert again.badge.code == committed[0]
        assert reused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and _reason(reused.value) == "REQUEST_ID_REUSED"
        # without a key, a second issue is a new request, refused as the duplicate it is
        assert duplicate.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert _badge_rows(db, appointment) == committed  # 0 duplicates
        assert [concurrent] == [set(_badge_rows(db, other_appointment))]  # one badge, the answer of all eight
    finally:
        db.dispose()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_issue_badge_retry_after_lost_response_returns_the_same_badge_sqlite(tmp_path, monkeypatch):
    run_kill_between_commit_and_response(tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_issue_badge_retry_after_lost_response_returns_the_same_badge_postgres(tmp_path, monkeypatch, pg_url):
    url, prefix = pg_url
    run_kill_between_commit_and_response(tmp_path, monkeypatch, url, prefix)
