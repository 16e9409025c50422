"""The OpenAPI 3.1 document of the HTTP/JSON API, written from the protos' descriptor set and their comments."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FieldDescriptor

from services.console.transcode import SERVICES, descriptor_set, is_simple_read, methods

F = descriptor_pb2.FieldDescriptorProto
SCALARS: dict[int, dict[str, Any]] = {
    F.TYPE_DOUBLE: {"type": "number", "format": "double"},
    F.TYPE_FLOAT: {"type": "number", "format": "float"},
    F.TYPE_INT64: {"type": "string", "format": "int64"},  # proto3 JSON writes 64-bit integers as strings
    F.TYPE_UINT64: {"type": "string", "format": "uint64"},
    F.TYPE_INT32: {"type": "integer", "format": "int32"},
    F.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    F.TYPE_FIXED32: {"type": "integer", "format": "int32"},
    F.TYPE_BOOL: {"type": "boolean"},
    F.TYPE_STRING: {"type": "string"},
    F.TYPE_BYTES: {"type": "string", "format": "byte"},
    F.TYPE_UINT32: {"type": "integer", "format": "int32"},
    F.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    F.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    F.TYPE_SINT32: {"type": "integer", "format": "int32"},
    F.TYPE_SINT64: {"type": "string", "format": "int64"},
}
WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time", "description": "RFC 3339 instant"},
    "google.protobuf.Duration": {"type": "string", "description": "seconds with an `s` suffix, e.g. `1.5s`"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {"type": "object", "additionalProperties": True},
}
PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details with the gRPC status, ErrorInfo reason and google.rpc details.",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "grpc_status": {"type": "string"}, "reason": {"type": "string"},
        "domain": {"type": "string"}, "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "field_violations": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "description": {"type": "string"}}}},
        "precondition_violations": {"type": "array", "items": {"type": "object", "properties": {
            "type": {"type": "string"}, "subject": {"type": "string"}, "description": {"type": "string"}}}},
    },
}  # fmt: skip


class Comments:
    """Leading comments by element, from the descriptor set's source info (paths as in descriptor.proto:
    4 = message_type, 2 = field, 3 = nested_type, 5 = enum_type, 6 = service, 2 = method)."""

    def __init__(self, fds: descriptor_pb2.FileDescriptorSet) -> None:
        self.by_name: dict[str, str] = {}
        for f in fds.file:
            spans = {tuple(loc.path): loc.leading_comments.strip() for loc in f.source_code_info.location}
            prefix = f".{f.package}" if f.package else ""
            for i, m in enumerate(f.message_type):
                self._message(m, f"{prefix}.{m.name}", (4, i), spans)
            for i, e in enumerate(f.enum_type):
                self.by_name[f"{prefix}.{e.name}"] = spans.get((5, i), "")
            for i, s in enumerate(f.service):
                self.by_name[f"{prefix}.{s.name}"] = spans.get((6, i), "")
                for j, method in enumerate(s.method):
                    self.by_name[f"{prefix}.{s.name}.{method.name}"] = spans.get((6, i, 2, j), "")

    def _message(self, m: descriptor_pb2.DescriptorProto, name: str, path: tuple, spans: dict) -> None:
        self.by_name[name] = spans.get(path, "")
        for j, fld in enumerate(m.field):
            self.by_name[f"{name}.{fld.name}"] = spans.get((*path, 2, j), "")
        for k, nested in enumerate(m.nested_type):
            self._message(nested, f"{name}.{nested.name}", (*path, 3, k), spans)
        for k, e in enumerate(m.enum_type):
            self.by_name[f"{name}.{e.name}"] = spans.get((*path, 4, k), "")

    def get(self, full_name: str) -> str:
        return self.by_name.get(f".{full_name}", "")


class Builder:
    def __init__(self, comments: Comments) -> None:
        self.comments = comments
        self.schemas: dict[str, Any] = {"Problem": PROBLEM}

    def ref(self, descriptor: Any) -> dict[str, Any]:
        name = descriptor.full_name
        if name in WELL_KNOWN:
            return dict(WELL_KNOWN[name])
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder first: messages may refer to themselves
            self.schemas[name] = self._enum(descriptor) if hasattr(descriptor, "values") else self._message(descriptor)
        return {"$ref": f"#/components/schemas/{name}"}

    def _enum(self, e: Any) -> dict[str, Any]:
        return {"type": "string", "enum": [v.name for v in e.values], "description": self.comments.get(e.full_name)}

    def _message(self, m: Any) -> dict[str, Any]:
        props = {f.name: self.field(f) for f in m.fields}
        return {"type": "object", "description": self.comments.get(m.full_name), "properties": props}

    def field(self, f: FieldDescriptor) -> dict[str, Any]:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            value = f.message_type.fields_by_name["value"]
            return {
                "type": "object",
                "additionalProperties": self.field(value),
                "description": self.comments.get(f.full_name),
            }
        if f.message_type is not None:
            schema = self.ref(f.message_type)
        elif f.enum_type is not None:
            schema = self.ref(f.enum_type)
        else:
            schema = dict(SCALARS[f.type])
        if f.is_repeated:
            schema = {"type": "array", "items": schema}
        description = self.comments.get(f.full_name)
        # OpenAPI 3.1: a $ref may carry a description beside it.
        return {**schema, "description": description} if description else schema


def _operation(b: Builder, service: str, method: Any, verb: str) -> dict[str, Any]:
    request, response = b.ref(method.input_type), b.ref(method.output_type)
    if method.server_streaming:
        response = {"type": "array", "items": response}
    op: dict[str, Any] = {
        "operationId": f"{method.containing_service.name}_{method.name}" + ("_get" if verb == "get" else ""),
        "tags": [service],
        "summary": f"{method.containing_service.name}.{method.name}",
        "description": b.comments.get(method.full_name),
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": response}}},
            "default": {"description": "Error (RFC 9457)", "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
        },
    }  # fmt: skip
    if verb == "get":
        op["parameters"] = [
            {"name": f.name, "in": "query", "required": False, "schema": b.field(f)}
            for f in method.input_type.fields
            if f.message_type is None
        ]
    else:
        body = {"type": "array", "items": request} if method.client_streaming else request
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def document(version: str = "1") -> dict[str, Any]:
    b = Builder(Comments(descriptor_set()))
    paths: dict[str, Any] = {}
    for (service, _), method in sorted(methods().items(), key=lambda kv: kv[0]):
        item = {"post": _operation(b, service, method, "post")}
        if is_simple_read(method):
            item["get"] = _operation(b, service, method, "get")
        paths[f"/api/v1/{service}/{method.name}"] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "北京市职业技能等级认定质量督导平台 HTTP/JSON API",
            "version": version,
            "description": "Every RPC of the registry, supervision, rules, documents and notify services, "
            "transcoded from their protos. JSON uses the proto field names.",
        },
        "tags": [{"name": s, "description": b.comments.get(s)} for s in SERVICES],
        "paths": paths,
        "components": {
            "schemas": b.schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearer": []}],
    }
