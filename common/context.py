"""Per-request context: trace id and caller identity, carried in contextvars.

The gRPC server interceptor fills them from metadata; event consumers fill them from the envelope;
`asyncio.to_thread` copies them into DB worker threads, so outbox rows and log lines carry them.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass

TRACE_ID_KEY = "x-trace-id"
ORG_KEY = "x-bjsv-org"
ROLE_KEY = "x-bjsv-role"


@dataclass(frozen=True)
class Caller:
    """Who is calling: an organisation resource name (e.g. "agencies/08") and a role.

    Today taken from metadata as declared; with mTLS it will come from the client certificate, and an
    authorisation interceptor will check it per RPC.
    """

    org: str = ""
    role: str = ""


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
    """Metadata an outgoing gRPC call carries so the trace and the caller travel on."""
    md = [(TRACE_ID_KEY, current_trace_id() or new_trace_id())]
    caller = current_caller()
    if caller.org:
        md.append((ORG_KEY, caller.org))
    if caller.role:
        md.append((ROLE_KEY, caller.role))
    return md
