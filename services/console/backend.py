"""The four services' public gRPC APIs, called as the logged-in user, and their refusals in a form pages and
the JSON API can show (reason code, field violations, findings citing articles)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from bjsv.documents.v1 import documents_pb2_grpc
from bjsv.notify.v1 import notify_pb2_grpc
from bjsv.registry.v1 import registry_pb2_grpc, supervision_pb2_grpc
from bjsv.rules.v1 import rules_pb2_grpc
from common.clients import channel
from services.console.config import ConsoleSettings
from services.console.identity import Credentials, call_metadata

TARGETS = {
    "registry": "registry",
    "supervision": "registry",  # SupervisionService is served by the registry process
    "rules": "rules",
    "documents": "documents",
    "notify": "notify",
}


@dataclass
class Problem(Exception):
    """A refusal of a service, as gRPC described it (google.rpc details)."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    fields: dict[str, str] = field(default_factory=dict)  # field path -> Chinese description
    violations: list[dict[str, str]] = field(default_factory=list)  # type (rule id) / subject / description
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_rpc_error(cls, e: grpc.aio.AioRpcError) -> Problem:
        p = cls(code=e.code(), message=e.details() or "")
        # AioRpcError has the code/details/trailing_metadata that from_call reads, but is no grpc.Call in the stubs
        status = rpc_status.from_call(e)  # type: ignore[arg-type]
        for detail in status.details if status else []:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                p.reason, p.domain, p.metadata = info.reason, info.domain, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                br = error_details_pb2.BadRequest()
                detail.Unpack(br)
                p.fields.update({v.field: v.description for v in br.field_violations})
            elif detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
                pf = error_details_pb2.PreconditionFailure()
                detail.Unpack(pf)
                p.violations += [{"type": v.type, "subject": v.subject, "description": v.description} for v in
                                 pf.violations]  # fmt: skip
        return p


class Backend:
    """Channels and stubs to the four services; `call` attaches the user's credentials to each call.

    Channels are made by `start()` inside the server's event loop (grpc.aio binds a channel to its loop).
    """

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.timeout = settings.console_grpc_timeout
        self.channels: dict[str, grpc.aio.Channel] = {}

    async def start(self) -> None:
        self.channels = {name: channel(self.settings.target(name)) for name in sorted(set(TARGETS.values()))}
        ch = {alias: self.channels[target] for alias, target in TARGETS.items()}
        self.registry = registry_pb2_grpc.RegistryServiceStub(ch["registry"])
        self.supervision = supervision_pb2_grpc.SupervisionServiceStub(ch["supervision"])
        self.rules = rules_pb2_grpc.RulesServiceStub(ch["rules"])
        self.documents = documents_pb2_grpc.DocumentsServiceStub(ch["documents"])
        self.notify = notify_pb2_grpc.NotifyServiceStub(ch["notify"])

    def channel_for(self, alias: str) -> grpc.aio.Channel:
        return self.channels[TARGETS[alias]]

    async def call(self, creds: Credentials, method: Any, request: Any) -> Any:
        """A unary call as the user; a refusal raises Problem."""
        try:
            return await method(request, metadata=call_metadata(creds), timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            raise Problem.from_rpc_error(e) from None

    async def stream(self, creds: Credentials, method: Any, request: Any) -> list[Any]:
        try:
            return [m async for m in method(request, metadata=call_metadata(creds), timeout=self.timeout)]
        except grpc.aio.AioRpcError as e:
            raise Problem.from_rpc_error(e) from None

    async def close(self) -> None:
        for ch in self.channels.values():
            await ch.close(None)  # no grace: nothing is in flight when the console stops
