"""Hostile-client fuzzing of every unary RPC of every service (RegistryService, SupervisionService, rules,
documents, notify), generated from the descriptors (issue 13): empty, random, mutated (bytes of a random request
flipped or cut), oversized and garbage-bytes requests against a real stack of its own. Whatever the request, the
answer is never INTERNAL or UNKNOWN, no call takes 10 s, no process dies, and a failed call writes nothing: the
row count of every table of the service's database is the same before and after it (issue 13 item 6). The
statuses seen per service are printed (`-s`) for the record.

Background writers are kept out of that comparison: the registry's sweeps and notify's timer tick are off
(their RPCs RunExpirySweep / RunSweep / RunDueTimers still run them), and each service's fuzz starts once
the events of the previous ones have settled; consumers' bookkeeping (processed_event) is not compared.
"""

from __future__ import annotations

import collections
import sqlite3
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor as pb_descriptor
from google.protobuf import message as pb_message
from google.protobuf import message_factory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bjsv.documents.v1 import documents_pb2
from bjsv.notify.v1 import notify_pb2
from bjsv.registry.v1 import registry_pb2, supervision_pb2
from bjsv.rules.v1 import rules_pb2
from supervisionctl.stack import Stack
from tests import auth_support
from tests.conftest import stack_config

FD = pb_descriptor.FieldDescriptor
# gRPC service -> (the process serving it, the module declaring it)
SERVICES = {
    "RegistryService": ("registry", registry_pb2),
    "SupervisionService": ("registry", supervision_pb2),
    "RulesService": ("rules", rules_pb2),
    "DocumentsService": ("documents", documents_pb2),
    "NotifyService": ("notify", notify_pb2),
}
CALLS_PER_SERVICE = 300
# consumers' bookkeeping, schema version, and the audit chain: a refused call is recorded there on purpose
# (第二十二条: who tried what), and that is the only trace it may leave.
NOT_COMPARED = {"processed_event", "alembic_version", "audit_entry", "audit_head"}
QUIET = 1.0  # seconds without a change in a database before its service is fuzzed
SLOWEST = 10.0  # seconds
# Values a caller plausibly sends, so that random requests get past the first check now and then.
PLAUSIBLE = [
    "",
    "agencies/A",
    "agencies/08",
    "institutions/1100012001",
    "supervisors/1",
    "badges/R1122A001",
    "documents/1",
    "notifications/1",
    "2026-03-01",
    "2026-02-30",
    "110101199003077777",
    "外督员",
    "x" * 501,
]
_INT_RANGE = {FD.TYPE_INT32: 2**31, FD.TYPE_SINT32: 2**31, FD.TYPE_INT64: 2**63, FD.TYPE_SINT64: 2**63}


def unary_methods(service: str) -> list[pb_descriptor.MethodDescriptor]:
    svc = SERVICES[service][1].DESCRIPTOR.services_by_name[service]
    return [m for m in svc.methods if not m.client_streaming and not m.server_streaming]


class RowCounts:
    """The row count of every table of one service's SQLite database, in one query."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        names = [r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        self.tables = sorted(n for n in names if n not in NOT_COMPARED and not n.startswith("sqlite_"))
        self.query = "SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}")' for t in self.tables)

    def now(self) -> dict[str, int]:
        return dict(zip(self.tables, self.conn.execute(self.query).fetchone(), strict=True))

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until nothing writes (events of earlier calls handled) for QUIET seconds."""
        deadline, last, since = time.monotonic() + timeout, self.now(), time.monotonic()
        while time.monotonic() - since < QUIET and time.monotonic() < deadline:
            time.sleep(0.2)
            if (current := self.now()) != last:
                last, since = current, time.monotonic()

    def close(self) -> None:
        self.conn.close()


def message_class(desc: pb_descriptor.Descriptor) -> type[pb_message.Message]:
    return message_factory.GetMessageClass(desc)


def scalar(draw, field: pb_descriptor.FieldDescriptor):
    kind = field.type
    if kind == FD.TYPE_STRING:
        return draw(st.one_of(st.sampled_from(PLAUSIBLE), st.text(max_size=30)))
    if kind == FD.TYPE_BYTES:
        return draw(st.binary(max_size=64))
    if kind == FD.TYPE_BOOL:
        return draw(st.booleans())
    if kind == FD.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return draw(st.one_of(st.sampled_from(known), st.integers(-3, 1000)))
    if kind in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return draw(st.floats(allow_nan=True, allow_infinity=True, width=64 if kind == FD.TYPE_DOUBLE else 32))
    bound = _INT_RANGE.get(kind)
    if bound is not None:
        return draw(st.one_of(st.integers(-3, 300), st.integers(-bound, bound - 1)))
    return draw(st.integers(0, 2**32 - 1))


def fill(draw, msg: pb_message.Message, depth: int = 0) -> None:
    """Set a random subset of `msg`'s fields to random values (nested messages up to depth 3)."""
    if msg.DESCRIPTOR.full_name == "google.protobuf.Timestamp":
        msg.seconds = draw(st.one_of(st.integers(1_600_000_000, 1_900_000_000), st.integers(-(2**40), 2**40)))
        msg.nanos = draw(st.one_of(st.just(0), st.integers(-5, 2 * 10**9)))
        return
    for field in msg.DESCRIPTOR.fields:
        if not draw(st.booleans()):
            continue
        if field.type == FD.TYPE_MESSAGE and depth >= 3:
            continue
        target = getattr(msg, field.name)
        if field.is_repeated and field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_f, value_f = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            for _ in range(draw(st.integers(0, 2))):
                key = scalar(draw, key_f)
                if value_f.type == FD.TYPE_MESSAGE:
                    fill(draw, target[key], depth + 1)
                else:
                    target[key] = scalar(draw, value_f)
        elif field.is_repeated:
            for _ in range(draw(st.integers(0, 3))):
                if field.type == FD.TYPE_MESSAGE:
                    fill(draw, target.add(), depth + 1)
                else:
                    target.append(scalar(draw, field))
        elif field.type == FD.TYPE_MESSAGE:
            fill(draw, target, depth + 1)
            if not target.ByteSize():
                target.SetInParent()
        else:
            setattr(msg, field.name, scalar(draw, field))


def oversize(draw, msg: pb_message.Message) -> None:
    """One string or bytes field, at the top or one level down, far over any bound (~300 KB)."""
    candidates = [(msg, f) for f in msg.DESCRIPTOR.fields if not f.is_repeated]
    for f in msg.DESCRIPTOR.fields:
        if f.type == FD.TYPE_MESSAGE and not f.is_repeated and f.message_type.full_name.startswith("bjsv."):
            candidates += [(getattr(msg, f.name), g) for g in f.message_type.fields if not g.is_repeated]
    candidates = [(m, f) for m, f in candidates if f.type in (FD.TYPE_STRING, FD.TYPE_BYTES)]
    if not candidates:
        return
    owner, field = draw(st.sampled_from(candidates))
    setattr(owner, field.name, "字" * 100_000 if field.type == FD.TYPE_STRING else b"\x89PNG" * 75_000)


@st.composite
def request_bytes(draw, method: pb_descriptor.MethodDescriptor) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["empty", "random", "mutated", "oversized", "garbage"]))
    if kind == "empty":
        return kind, b""
    if kind == "garbage":
        return kind, draw(st.binary(min_size=1, max_size=200))
    msg = message_class(method.input_type)()
    fill(draw, msg)
    if kind == "oversized":
        oversize(draw, msg)
    data = msg.SerializeToString()
    if kind == "mutated" and data:
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1 :] if draw(st.booleans()) else data[:i]
    return kind, data


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory):
    config = stack_config(
        tmp_path_factory.mktemp("fuzz"),
        BJSV_REGISTRY_EXPIRY_SWEEP_INTERVAL="0",
        BJSV_SUPERVISION_SWEEP_INTERVAL="0",
        BJSV_NOTIFY_TICK_INTERVAL="3600",
    )
    stack = Stack(config)
    stack.start(timeout=90)
    yield stack
    stack.stop()


@pytest.mark.slow
@pytest.mark.parametrize("service", list(SERVICES))
def test_no_request_gets_internal_or_unknown_or_takes_10s_or_kills_a_process_or_writes_when_failing(
    fuzz_stack, service
):
    process = SERVICES[service][0]
    methods = unary_methods(service)
    seen: collections.Counter[str] = collections.Counter()
    slowest = [0.0, ""]
    counts = RowCounts(fuzz_stack.config.data_dir / f"{process}.db")
    counts.settle()
    with auth_support.channel(fuzz_stack.config.target(process)) as channel:  # city centre + operator
        calls = {m.name: channel.unary_unary(f"/{m.containing_service.full_name}/{m.name}") for m in methods}

        @settings(
            max_examples=CALLS_PER_SERVICE,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(st.data())
        def one_call(data) -> None:
            method = data.draw(st.sampled_from(methods))
            kind, payload = data.draw(request_bytes(method))
            before = counts.now()
            started = time.monotonic()
            try:
                calls[method.name](payload, timeout=SLOWEST + 2)
                code = grpc.StatusCode.OK
            except grpc.RpcError as e:
                code = e.code()
            took = time.monotonic() - started
            seen[code.name] += 1
            if took > slowest[0]:
                slowest[:] = [took, f"{method.name} ({kind})"]
            assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (method.name, kind, payload[:200])
            assert took < SLOWEST, (method.name, kind, took)
            if code != grpc.StatusCode.OK:
                after = counts.now()
                changed = {t: (n, after[t]) for t, n in before.items() if after[t] != n}
                assert not changed, (method.name, kind, code.name, changed, payload[:200])

        try:
            one_call()
        finally:
            counts.close()
    dead = {name: p.returncode for name, p in fuzz_stack.procs.items() if p.poll() is not None}
    assert not dead, f"processes died: {dead}"
    print(
        f"\nfuzz {service}: {sum(seen.values())} calls, {dict(seen)}, slowest {slowest[0]:.2f}s {slowest[1]}; "
        f"row counts of {len(counts.tables)} tables unchanged by every failed call"
    )
