"""How every command group calls a service: one channel per command, caller identity as metadata,
uniform failures (exit 3 when the service is unreachable, 1 when it refused, with its Chinese message)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import grpc
import typer
from google.protobuf.json_format import MessageToDict
from rich.console import Console

from common import clients
from common.config import Settings

T = TypeVar("T")
EXIT_REFUSED, EXIT_UNAVAILABLE = 1, 3
err = Console(stderr=True)

# The caller options every command group shares (one definition; help texts as the operator reads them).
JsonOpt = Annotated[bool, typer.Option("--json", help="以 JSON 输出结果")]
OrgOpt = Annotated[str, typer.Option("--org", envvar="BJSV_CLI_ORG", help="调用单位，如 agencies/A")]
RoleOpt = Annotated[str, typer.Option("--role", envvar="BJSV_CLI_ROLE", help="调用角色")]


def call(
    service: str,
    stub_type: type,
    method: Callable[[Any], Callable[..., T]],
    request: Any,
    *,
    org: str = "",
    role: str = "operator",
    timeout: float = 15,
) -> T:
    """`method(stub)(request)` on `service` (resolved from BJSV_<SERVICE>_TARGET / _PORT)."""
    target = Settings().target(service)
    metadata = tuple((k, v) for k, v in (("x-bjsv-org", org), ("x-bjsv-role", role)) if v)
    with clients.sync_channel(target) as channel:
        try:
            return method(stub_type(channel))(request, metadata=metadata, timeout=timeout)
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                err.print(f"[red]{service} 服务无法连接（{target}）[/red]：{e.details()}")
                raise typer.Exit(EXIT_UNAVAILABLE) from None
            err.print(f"[red]错误：[/red]{e.details()}（{e.code().name}）")
            raise typer.Exit(EXIT_REFUSED) from None


def dump(message: Any) -> None:
    """A response as JSON (field names as in the proto) for --json."""
    print(json.dumps(MessageToDict(message, preserving_proto_field_name=True), ensure_ascii=False, indent=2))
