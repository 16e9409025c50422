"""Composition root of the console: settings, the login at the identity issuer, the gRPC backend, the HTTPS
server (the stack's certificate; plaintext only under BJSV_TLS=off) with BJSV_CONSOLE_WORKERS processes."""

from __future__ import annotations

from typing import Any

import uvicorn
from starlette.applications import Starlette

from common import logs, pki
from common.auth import issuer_tls
from services.console.app import create_app
from services.console.backend import Backend
from services.console.config import ConsoleSettings
from services.console.identity import OAuthIssuer


def build() -> Starlette:
    """One worker's application (uvicorn calls this in each worker process)."""
    settings = ConsoleSettings()
    logs.configure("console", fmt=settings.log_format, level=settings.log_level)
    pki.set_identity("console")  # outgoing gRPC presents the console's certificate (mutual TLS)
    # The issuer the services verify against: the embedded one (BJSV_IDENTITY_PORT, HTTPS with the stack's
    # CA) or BJSV_OIDC_ISSUER (system trust store plus BJSV_OIDC_CA_FILE).
    verify = issuer_tls.trust(settings) or True
    login = OAuthIssuer(settings.issuer, settings.oidc_client_id or "bjsv-console", verify)
    return create_app(settings, Backend(settings), login)


def main() -> None:
    settings = ConsoleSettings()
    logs.configure("console", fmt=settings.log_format, level=settings.log_level)
    tls: dict[str, Any] = {}
    if settings.https:
        _, cert, key = pki.usable(settings, "console")
        tls = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    # Several processes: one Python process was CPU-bound at 20 users (TLS, templates, protobuf; bench_console.py).
    uvicorn.run(
        "services.console.__main__:build",
        factory=True, workers=settings.console_workers, host=settings.bind_host, port=settings.console_port,
        log_level="warning", access_log=False, **tls,
    )  # fmt: skip


if __name__ == "__main__":
    main()
