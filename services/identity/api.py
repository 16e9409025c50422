"""HTTP edge of the embedded issuer (Starlette): discovery, JWKS, the token endpoint, a health probe.

Thin: parse the form / Basic credentials → Issuer use case → JSON. Errors follow RFC 6749 §5.2
(`{"error", "error_description"}`, 400, or 401 for a bad client).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import urllib.parse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.identity.domain.accounts import AccountError
from services.identity.issuer import Issuer

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return urllib.parse.unquote(user), urllib.parse.unquote(password)


def build_app(issuer: Issuer) -> Starlette:
    async def discovery(request: Request) -> JSONResponse:
        return JSONResponse(issuer.discovery())

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse(issuer.jwks(), headers={"Cache-Control": "max-age=60"})

    async def token(request: Request) -> JSONResponse:
        body = (await request.body()).decode(errors="replace")
        form = urllib.parse.parse_qs(body, keep_blank_values=True)
        try:
            # argon2id takes tens of ms of CPU (more on a loaded host): in a thread, so a burst of logins does not
            # stall the JWKS and discovery answers every service waits for on its first call
            grant = await asyncio.to_thread(issuer.token, form, _basic(request))
            return JSONResponse(grant, headers=_NO_STORE)
        except AccountError as e:
            status = 401 if e.code == "invalid_client" else 400
            return JSONResponse({"error": e.code, "error_description": e.description}, status, headers=_NO_STORE)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "SERVING"})

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
            Route("/token", token, methods=["POST"]),
            Route("/healthz", healthz),
        ]
    )
