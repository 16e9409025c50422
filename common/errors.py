"""Domain errors and their one mapping to gRPC status + google.rpc details.

Handlers and domain code raise these; `common.server`'s interceptor turns them into a status with
`ErrorInfo` (stable reason code) plus `BadRequest` / `PreconditionFailure` / `ResourceInfo` details.
Descriptions are Chinese (shown to officials) and cite the article; reason codes are English.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


@dataclass(frozen=True)
class PreconditionViolation:
    type: str  # rule id, e.g. "bj-2022.team.min-size"
    subject: str  # resource the rule was applied to, e.g. "dispatches/7"
    description: str


class DomainError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    default_message = "请求未能完成"

    def __init__(self, reason: str, message: str | None = None, *, metadata: dict[str, str] | None = None):
        self.reason = reason
        self.message = message or self.default_message
        self.metadata = dict(metadata or {})
        super().__init__(f"{reason}: {self.message}")

    def details(self) -> list:
        return []


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    default_message = "请求参数不符合要求"

    def __init__(self, reason: str, violations: list[FieldViolation], message: str | None = None, **kw):
        self.violations = list(violations)
        super().__init__(reason, message or "；".join(v.description for v in violations) or None, **kw)

    def details(self) -> list:
        return [
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                    for v in self.violations
                ]
            )
        ]


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    default_message = "不满足办理条件"

    def __init__(self, reason: str, violations: list[PreconditionViolation], message: str | None = None, **kw):
        self.violations = list(violations)
        super().__init__(reason, message or "；".join(v.description for v in violations) or None, **kw)

    def details(self) -> list:
        return [
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type=v.type, subject=v.subject, description=v.description
                    )
                    for v in self.violations
                ]
            )
        ]


@dataclass
class _Resource:
    name: str
    owner: str = ""


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, resource_name: str, message: str | None = None, **kw):
        self.resource = _Resource(resource_name)
        super().__init__("NOT_FOUND", message or f"未找到：{resource_name}", **kw)

    def details(self) -> list:
        kind = self.resource.name.split("/", 1)[0]
        return [error_details_pb2.ResourceInfo(resource_type=kind, resource_name=self.resource.name)]


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS

    def __init__(self, reason: str, message: str, *, field_name: str = "", resource_name: str = "", **kw):
        self.field_name = field_name
        self.resource_name = resource_name
        super().__init__(reason, message, **kw)

    def details(self) -> list:
        out: list = []
        if self.field_name:
            out.append(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=self.field_name, description=self.message)
                    ]
                )
            )
        if self.resource_name:
            out.append(
                error_details_pb2.ResourceInfo(
                    resource_type=self.resource_name.split("/", 1)[0], resource_name=self.resource_name
                )
            )
        return out


class ResourceExhausted(DomainError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, reason: str, message: str, *, subject: str = "", **kw):
        self.subject = subject
        super().__init__(reason, message, **kw)

    def details(self) -> list:
        return [
            error_details_pb2.QuotaFailure(
                violations=[error_details_pb2.QuotaFailure.Violation(subject=self.subject, description=self.message)]
            )
        ]


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED
    default_message = "无权办理此事项"


class Unavailable(DomainError):
    """A dependency (another service, NATS, the database) cannot be reached; the caller may retry."""

    code = grpc.StatusCode.UNAVAILABLE
    default_message = "依赖的服务暂不可用，请稍后重试"


# The status travels in response headers (grpc-message percent-encoded, grpc-status-details-bin base64), and
# gRPC refuses headers above ~8 KiB: the caller would get RESOURCE_EXHAUSTED "Stream removed" instead of
# the refusal (issue #14 item 7). So the message and the details are cut to fit, and ErrorInfo says how many
# violations there were; the full list comes from the response or decision the error names.
MESSAGE_MAX_CHARS = 200  # a Chinese character is 9 bytes percent-encoded
DETAILS_MAX_BYTES = 3000  # serialized google.rpc.Status, ×4/3 in base64


def _violation_lists(msg) -> list:
    """The repeated violation fields of a detail message (BadRequest, PreconditionFailure, QuotaFailure)."""
    return [getattr(msg, f) for f in ("field_violations", "violations") if hasattr(msg, f)]


def to_status(err: DomainError, *, service: str) -> status_pb2.Status:
    """Build the google.rpc.Status for a domain error (code and message agree, as grpcio-status requires),
    bounded to fit in gRPC's response headers whatever the number of violations."""
    details = err.details()
    total = sum(len(lst) for d in details for lst in _violation_lists(d))
    message = err.message
    if len(message) > MESSAGE_MAX_CHARS:
        message = message[:MESSAGE_MAX_CHARS] + (f"……（共{total}项，详见错误详情）" if total else "……")
    metadata = dict(err.metadata)

    def build(keep: int | None) -> status_pb2.Status:
        info = error_details_pb2.ErrorInfo(reason=err.reason, domain=f"bjsv.{service}", metadata=metadata)
        packed_all = []
        for msg in [info, *details]:
            if keep is not None:
                msg = type(msg).FromString(msg.SerializeToString())
                for lst in _violation_lists(msg):
                    del lst[keep:]
            packed = any_pb2.Any()
            packed.Pack(msg)
            packed_all.append(packed)
        return status_pb2.Status(code=getattr(code_pb2, err.code.name), message=message, details=packed_all)

    status = build(None)
    if status.ByteSize() <= DETAILS_MAX_BYTES:
        return status
    metadata["violations_total"] = str(total)
    keep = total
    while keep > 0 and build(keep).ByteSize() > DETAILS_MAX_BYTES:
        keep //= 2
    metadata["violations_shown"] = str(keep)
    return build(keep)


def internal_status(trace_id: str, *, service: str) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=f"bjsv.{service}", metadata={"trace_id": trace_id})
    packed = any_pb2.Any()
    packed.Pack(info)
    return status_pb2.Status(
        code=code_pb2.INTERNAL, message=f"服务内部错误，请联系运维人员并提供追踪号 {trace_id}", details=[packed]
    )
