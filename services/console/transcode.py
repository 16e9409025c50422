"""The HTTP/JSON API for integrators: every RPC of the four services, transcoded from the descriptors.

    POST /api/v1/{package.Service}/{Method}     JSON request body -> JSON response
    GET  /api/v1/{package.Service}/{Method}     Get*/List* only: the request's fields as query parameters

JSON is the protobuf JSON mapping with the proto field names (snake_case). A client-streaming RPC takes a
JSON array of requests, a server-streaming one answers with a JSON array. Authentication is the gRPC API's:
the caller's `Authorization: Bearer …` header goes through as metadata untouched (no header: the call goes
without a token and the service answers UNAUTHENTICATED); the console adds no privilege. Errors are RFC 9457
problem details with the gRPC reason code and google.rpc details.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.descriptor_pool import Default
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# Importing the stubs registers the four services' descriptors in the default pool.
from bjsv.documents.v1 import documents_pb2  # noqa: F401
from bjsv.notify.v1 import notify_pb2  # noqa: F401
from bjsv.registry.v1 import registry_pb2, supervision_pb2  # noqa: F401
from bjsv.rules.v1 import rules_pb2  # noqa: F401
from services.console.backend import Backend, Problem
from services.console.web import HTTP_STATUS

SERVICES = (
    "bjsv.registry.v1.RegistryService",
    "bjsv.registry.v1.SupervisionService",
    "bjsv.rules.v1.RulesService",
    "bjsv.documents.v1.DocumentsService",
    "bjsv.notify.v1.NotifyService",
)
FORWARDED_HEADERS = ("authorization", "x-trace-id")
TITLES = {
    grpc.StatusCode.INVALID_ARGUMENT: "请求参数不符合要求",
    grpc.StatusCode.FAILED_PRECONDITION: "不符合办理条件",
    grpc.StatusCode.NOT_FOUND: "未找到",
    grpc.StatusCode.ALREADY_EXISTS: "已存在",
    grpc.StatusCode.PERMISSION_DENIED: "无权办理",
    grpc.StatusCode.UNAUTHENTICATED: "未登录或登录已失效",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "请求过多",
    grpc.StatusCode.UNAVAILABLE: "服务暂不可用",
    grpc.StatusCode.DEADLINE_EXCEEDED: "处理超时",
    grpc.StatusCode.UNIMPLEMENTED: "不支持的操作",
}
HTTP_STATUS_API = {**HTTP_STATUS, grpc.StatusCode.FAILED_PRECONDITION: 400, grpc.StatusCode.UNIMPLEMENTED: 501}


def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """The descriptor set with source info, written next to the stubs by `deploy/bootstrap.py gen`."""
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString((resources.files("bjsv") / "descriptors.binpb").read_bytes())
    return fds


def methods() -> dict[tuple[str, str], MethodDescriptor]:
    pool = Default()
    return {(s, m.name): m for s in SERVICES for m in pool.FindServiceByName(s).methods}


def is_simple_read(method: MethodDescriptor) -> bool:
    return method.name.startswith(("Get", "List")) and not method.client_streaming


def problem_response(p: Problem) -> Response:
    """RFC 9457 problem details carrying what the gRPC status carries."""
    body: dict[str, Any] = {
        "type": f"urn:bjsv:problem:{p.reason}" if p.reason else "about:blank",
        "title": TITLES.get(p.code, "服务内部错误"),
        "status": HTTP_STATUS_API.get(p.code, 500),
        "detail": p.message,
        "grpc_status": p.code.name,
        "reason": p.reason,
        "domain": p.domain,
    }
    if p.fields:
        body["field_violations"] = [{"field": f, "description": d} for f, d in p.fields.items()]
    if p.violations:
        body["precondition_violations"] = p.violations
    if p.metadata:
        body["metadata"] = p.metadata
    return JSONResponse(body, status_code=body["status"], media_type="application/problem+json")


def _bad_request(reason: str, detail: str, field: str = "") -> Response:
    fields = {field: detail} if field else {}
    return problem_response(Problem(grpc.StatusCode.INVALID_ARGUMENT, detail, reason, "bjsv.console", fields))


@dataclass
class Transcoder:
    backend: Backend

    def __post_init__(self) -> None:
        self.methods = methods()

    async def handle(self, request: Request) -> Response:
        key = (request.path_params["service"], request.path_params["method"])
        method = self.methods.get(key)
        if method is None:
            p = Problem(
                grpc.StatusCode.NOT_FOUND, f"没有这个接口：{key[0]}/{key[1]}", "METHOD_NOT_FOUND", "bjsv.console"
            )
            return problem_response(p)
        if request.method == "GET" and not is_simple_read(method):
            return _bad_request("METHOD_NEEDS_POST", f"{method.name} 须用 POST 调用")
        try:
            payload = await self._payload(request, method)
            requests = [self._parse(method, item) for item in (payload if method.client_streaming else [payload])]
        except (ValueError, json_format.ParseError) as e:
            return _bad_request("INVALID_JSON", f"请求内容不是符合接口定义的 JSON：{e}", "body")
        try:
            result = await self._call(request, method, requests)
        except grpc.aio.AioRpcError as e:
            return problem_response(Problem.from_rpc_error(e))
        return JSONResponse(result)

    async def _payload(self, request: Request, method: MethodDescriptor) -> Any:
        if request.method == "GET":
            fields, q = method.input_type.fields_by_name, request.query_params
            return {k: q.getlist(k) if fields[k].is_repeated else q[k] for k in q if k in fields}
        body = await request.body()
        payload = json.loads(body) if body.strip() else ({} if not method.client_streaming else [])
        if method.client_streaming != isinstance(payload, list):
            raise ValueError("流式接口须传 JSON 数组" if method.client_streaming else "须传 JSON 对象")
        return payload

    @staticmethod
    def _parse(method: MethodDescriptor, item: Any) -> Any:
        return json_format.ParseDict(item, message_factory.GetMessageClass(method.input_type)())

    async def _call(self, request: Request, method: MethodDescriptor, requests: list[Any]) -> Any:
        service = method.containing_service
        alias = service.name.removesuffix("Service").lower()
        path = f"/{service.full_name}/{method.name}"
        out_cls = message_factory.GetMessageClass(method.output_type)
        kind = (
            ("stream" if method.client_streaming else "unary")
            + "_"
            + ("stream" if method.server_streaming else "unary")
        )
        stub = getattr(self.backend.channel_for(alias), kind)(
            path, request_serializer=lambda m: m.SerializeToString(), response_deserializer=out_cls.FromString
        )
        md = tuple((h, request.headers[h]) for h in FORWARDED_HEADERS if h in request.headers)
        arg = iter(requests) if method.client_streaming else requests[0]
        call = stub(arg, metadata=md, timeout=self.backend.timeout)
        if method.server_streaming:
            return [_to_json(m) async for m in call]
        return _to_json(await call)


def _to_json(message: Any) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def routes(transcoder: Transcoder, openapi: dict) -> list[Route]:
    async def openapi_json(request: Request) -> Response:
        return JSONResponse(openapi)

    return [
        Route("/api/openapi.json", openapi_json, methods=["GET"], name="openapi"),
        Route("/api/v1/{service}/{method}", transcoder.handle, methods=["GET", "POST"], name="api"),
    ]
