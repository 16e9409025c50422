"""The console's ASGI application: web pages, static files and the HTTP/JSON API on one Starlette app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from services.console import openapi, pages, transcode
from services.console.backend import Backend, Problem
from services.console.config import ConsoleSettings
from services.console.identity import OAuthIssuer
from services.console.web import Web


def create_app(settings: ConsoleSettings, backend: Backend, login: OAuthIssuer) -> Starlette:
    web = Web(settings, backend, login)
    api = transcode.routes(transcode.Transcoder(backend), openapi.document())
    static = Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await backend.start()
        yield
        await backend.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            message = f"没有这个地址：{request.url.path}"
            p = Problem(grpc.StatusCode.NOT_FOUND, message, "PATH_NOT_FOUND", "bjsv.console")
            return transcode.problem_response(p)
        return await web.not_found(request, exc)

    return Starlette(
        routes=[*pages.routes(web), *api, static],
        lifespan=lifespan,
        exception_handlers={404: not_found, 500: web.internal_error},
    )
