"""The console's ASGI application: web pages, static files and the HTTP/JSON API on one Starlette app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from services.console import openapi, pages, transcode
from services.console.backend import Backend
from services.console.config import ConsoleSettings
from services.console.identity import Login
from services.console.web import Web


def create_app(settings: ConsoleSettings, backend: Backend, login: Login) -> Starlette:
    web = Web(settings, backend, login)
    api = transcode.routes(transcode.Transcoder(backend), openapi.document())
    static = Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await backend.start()
        yield
        await backend.close()

    return Starlette(routes=[*pages.routes(web), *api, static], lifespan=lifespan)
