"""Idempotent create/issue/submit RPCs (AIP-155 `request_id`), one mechanism for every service.

A caller sends a UUID in `request_id`; a retry with the same key returns the original result, never
ALREADY_EXISTS, even when the first call committed and its response was lost (issue 13: on PostgreSQL a
badge was committed while the client saw UNAVAILABLE, and the retry could not learn the code). The same key
with a different request body is INVALID_ARGUMENT `REQUEST_ID_REUSED`.

How: the key row (method, caller, request_id, fingerprint of the request) is inserted by the call's write
transaction, i.e. atomically with the change (a before_commit hook, like the outbox's), and holds the name of
the created resource. After the handler returns, the response bytes are added to the row.
A retry replays those bytes; when the process died between the commit and that second write, it rebuilds
the response from the resource name through the servicer's Get RPC. A concurrent duplicate loses on the
row's primary key, its whole transaction rolls back, and it replays the winner's result.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import hashlib
import os
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from google.protobuf import message as pb_message
from sqlalchemy import event
from sqlalchemy.orm import Session

from bjsv.events.v1 import envelope_pb2
from common import context
from common.db import Database
from common.errors import FieldViolation, InvalidArgument

TABLE = "idempotency_key"
KEY_MAX = 100  # request_id: a UUID (36); the deprecated client_request_id: at most 100 (its proto bound)
# Test-only fault injection: the name of an RPC (e.g. "IssueBadge") after whose commit the process SIGKILLs
# itself before answering: the "commit whose response was lost" of issue 13, reproduced deterministically.
KILL_AFTER_COMMIT_ENV = "BJSV_TEST_KILL_AFTER_COMMIT"
DEPRECATED_FIELD = "client_request_id"  # the workflow's earlier key, still honoured (same field number)

_metadata = sa.MetaData()
keys = sa.Table(
    TABLE,
    _metadata,
    sa.Column("method", sa.String(100), primary_key=True),
    sa.Column("caller", sa.Text, primary_key=True),  # as declared in the metadata, of any length
    sa.Column("request_id", sa.String(KEY_MAX), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("resource", sa.String(200), nullable=True),
    sa.Column("response", sa.LargeBinary, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


def create_table() -> None:
    """Call from a service's migration that introduces idempotent RPCs."""
    from alembic import op

    keys.create(op.get_bind())


@dataclass
class _Claim:
    key: dict
    fingerprint: str
    collection: str
    resource: str | None  # known from the request, else taken from the transaction's events
    written: bool = False


_claim: contextvars.ContextVar[_Claim | None] = contextvars.ContextVar("idempotency_claim", default=None)


def _insert_claim(session: Session) -> None:
    """before_commit: the call's (first) write transaction also records the key. Every create/issue/submit
    use case writes in one transaction (reads and rules calls come before it)."""
    claim = _claim.get()
    if claim is None or claim.written or not session.info.get("write"):
        return
    subjects = (
        envelope_pb2.EventEnvelope.FromString(r["envelope"]).subject for r in session.info.get("outbox_rows", ())
    )
    resource = claim.resource or next((s for s in subjects if s.startswith(claim.collection + "/")), None)
    session.execute(
        keys.insert().values(
            **claim.key, fingerprint=claim.fingerprint, resource=resource, created_at=dt.datetime.now(dt.UTC)
        )
    )
    claim.written = True


if not event.contains(Session, "before_commit", _insert_claim):
    event.listen(Session, "before_commit", _insert_claim, insert=True)  # before flush_outbox pops the rows


# Any: every idempotent request message has a `request_id` field, which no common protobuf type declares.
def request_key(request: Any) -> str:
    """The request's idempotency key: `request_id` (a UUID), or else the deprecated `client_request_id` where
    the message has one (free text, as its earlier clients sent it)."""
    if request.request_id:
        try:
            uuid.UUID(request.request_id)
        except ValueError:
            raise InvalidArgument(
                "REQUEST_ID_FORMAT", [FieldViolation("request_id", "请求编号应为UUID（由调用方生成，重试时原样重发）")]
            ) from None
        return request.request_id
    if DEPRECATED_FIELD in request.DESCRIPTOR.fields_by_name:
        return getattr(request, DEPRECATED_FIELD).strip()
    return ""


def fingerprint(request: pb_message.Message) -> str:
    body = type(request)()
    body.CopyFrom(request)
    body.ClearField("request_id")
    if DEPRECATED_FIELD in body.DESCRIPTOR.fields_by_name:
        body.ClearField(DEPRECATED_FIELD)
    return hashlib.sha256(body.SerializeToString(deterministic=True)).hexdigest()


def _lookup(session: Session, key: dict) -> sa.Row | None:
    return session.execute(sa.select(keys).where(*(keys.c[k] == v for k, v in key.items()))).first()


def _save_response(session: Session, key: dict, response: bytes) -> None:
    session.execute(keys.update().where(*(keys.c[k] == v for k, v in key.items())).values(response=response))


async def _replay(db: Database, claim: _Claim, rebuild: Callable) -> pb_message.Message | None:
    """The original result of this key, or None when the key is new; REQUEST_ID_REUSED for another body."""
    row = await db.read(_lookup, claim.key)
    if row is None:
        return None
    if row.fingerprint != claim.fingerprint:
        raise InvalidArgument("REQUEST_ID_REUSED", [FieldViolation("request_id", "该请求编号已用于内容不同的另一请求")])
    return await rebuild(row.response, row.resource)


def idempotent(
    response_type: type[pb_message.Message],
    collection: str,
    get: str,
    get_request: Callable[..., pb_message.Message],  # a Get*Request class, called with name=
    *,
    name_of: Callable[[Any], str] | None = None,
) -> Callable:
    """Decorate a servicer's create/issue/submit method (the servicer has `db: Database`). `collection` is the
    created resource's ("badges"): its name is the subject of the first such event the call records, or
    `name_of(request)` where the request determines it (and the call records no event); `get` names the
    servicer's Get method and `get_request` its request type, used to rebuild the response (same field
    names) when only the resource name survived the call."""

    def wrap(handler: Callable) -> Callable:
        @functools.wraps(handler)
        async def call(self: Any, request: pb_message.Message, ctx: Any) -> pb_message.Message:
            rid = request_key(request)
            if not rid:
                return await handler(self, request, ctx)
            caller = context.current_caller()
            key = {"method": handler.__name__, "caller": f"{caller.org}|{caller.role}", "request_id": rid}
            claim = _Claim(key, fingerprint(request), collection, name_of(request) if name_of else None)

            async def rebuild(response: bytes | None, resource: str | None) -> pb_message.Message:
                if response is not None:
                    return response_type.FromString(response)
                got, out = await getattr(self, get)(get_request(name=resource), ctx), response_type()
                for field in out.DESCRIPTOR.fields:
                    getattr(out, field.name).CopyFrom(getattr(got, field.name))
                return out

            if (done := await _replay(self.db, claim, rebuild)) is not None:
                return done
            token = _claim.set(claim)
            try:
                response = await handler(self, request, ctx)
            except Exception:
                # A concurrent twin committed first (our insert lost on the key, or the handler saw its
                # resource as a duplicate): its result is this call's result.
                if (done := await _replay(self.db, claim, rebuild)) is not None:
                    return done
                raise
            finally:
                _claim.reset(token)
            if claim.written:
                if os.environ.get(KILL_AFTER_COMMIT_ENV) == handler.__name__:
                    os.kill(os.getpid(), signal.SIGKILL)
                await self.db.write(_save_response, key, response.SerializeToString())
            return response

        return call

    return wrap
