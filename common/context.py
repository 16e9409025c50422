"""Per-request context: trace id and caller identity, carried in contextvars.

The gRPC server interceptor fills them from the verified bearer token (common.auth); event consumers fill
them from the envelope;
`asyncio.to_thread` copies them into DB worker threads, so outbox rows and log lines carry them.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass

TRACE_ID_KEY = "x-trace-id"


@dataclass(frozen=True)
class Caller:
    """Who is calling: an organisation resource name (e.g. "agencies/08", "institutions/1100012001",
    "supervisors/42" for a supervisor person), the roles the token grants (`role` is the first) and the subject.

    Only ever built from a verified token (common.auth.tokens) or, in event consumers, from the envelope's
    actor; request metadata such as the former x-bjsv-org/x-bjsv-role is never trusted.
    """

    org: str = ""
    role: str = ""
    roles: tuple[str, ...] = ()
    subject: str = ""


_trace_id: ContextVar[str] = ContextVar("trace_id", default="")
_caller: ContextVar[Caller | None] = ContextVar("caller", default=None)


def new_trace_id() -> str:
    return uuid.uuid4().hex


def current_trace_id() -> str:
    return _trace_id.get()


def current_caller() -> Caller:
    return _caller.get() or Caller()


def bind(trace_id: str, caller: Caller | None = None) -> None:
    _trace_id.set(trace_id)
    if caller is not None:
        _caller.set(caller)


def outgoing_metadata() -> list[tuple[str, str]]:
    """Metadata an outgoing gRPC call carries so the trace travels on (the identity is the service's own token)."""
    return [(TRACE_ID_KEY, current_trace_id() or new_trace_id())]
