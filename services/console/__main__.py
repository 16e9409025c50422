"""Composition root of the console: settings, the login method, the gRPC backend, the HTTP(S) server."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from common import logs
from services.console.app import create_app
from services.console.backend import Backend
from services.console.config import ConsoleSettings
from services.console.identity import DevAccounts, Login, OAuthIssuer


def build_login(settings: ConsoleSettings) -> Login:
    if settings.oidc_issuer:
        verify = str(settings.console_issuer_ca) if settings.console_issuer_ca else True
        return OAuthIssuer(settings.oidc_issuer, settings.oidc_client_id, verify)
    if settings.console_dev_accounts:
        return DevAccounts(settings.console_dev_accounts)
    print(
        "控制台无法启动：未配置统一身份认证（BJSV_OIDC_ISSUER），也未配置开发账号（BJSV_CONSOLE_DEV_ACCOUNTS）",
        file=sys.stderr,
    )
    sys.exit(2)


def main() -> None:
    settings = ConsoleSettings()
    logs.configure("console", fmt=settings.log_format, level=settings.log_level)
    app = create_app(settings, Backend(settings), build_login(settings))
    tls: dict[str, Any] = (
        {"ssl_certfile": str(settings.console_tls_cert), "ssl_keyfile": str(settings.console_tls_key)}
        if settings.https
        else {}
    )
    uvicorn.run(app, host=settings.bind_host, port=settings.console_port, log_level="warning", access_log=False, **tls)


if __name__ == "__main__":
    main()
