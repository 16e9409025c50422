"""Composition root of the embedded OIDC issuer: `python -m services.identity`.

Creates the signing key and the local credentials (admin, one client per service) on first start, rotates
keys when due (checked hourly), and serves HTTPS on BJSV_BIND_HOST:BJSV_IDENTITY_PORT with uvicorn, with the
stack's `identity` certificate (common.pki; plain HTTP only under BJSV_TLS=off, logged as a warning).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

import uvicorn

from common import logs, pki
from common.db import StartupError
from services.identity.api import build_app
from services.identity.config import IdentitySettings
from services.identity.issuer import Issuer

ROTATION_CHECK_SECONDS = 3600
log = logging.getLogger("bjsv.identity")


def main() -> None:
    settings = IdentitySettings()
    if not settings.embedded:
        print("error: BJSV_OIDC_ISSUER points at an external issuer; the embedded one is not started", file=sys.stderr)
        sys.exit(2)
    logs.configure("identity", fmt=settings.log_format, level=settings.log_level)
    issuer = Issuer(settings)
    issuer.rotate()
    issuer.ensure_local_clients()
    app = build_app(issuer)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        async def rotate_when_due() -> None:
            while True:
                await asyncio.sleep(ROTATION_CHECK_SECONDS)
                issuer.rotate()

        task = asyncio.create_task(rotate_when_due())
        yield
        task.cancel()

    app.router.lifespan_context = lifespan
    paths = certificate(settings)
    tls: dict[str, Any] = {"ssl_certfile": str(paths[1]), "ssl_keyfile": str(paths[2])} if paths else {}
    config = uvicorn.Config(
        app, host=settings.bind_host, port=settings.identity_port, log_level="warning", access_log=False, **tls
    )
    config.load()
    if paths and config.ssl is not None:
        config.ssl.sni_callback = pki.HttpsReloader(paths)  # `certs rotate` without a restart
    uvicorn.Server(config).run()


def certificate(settings: IdentitySettings) -> tuple[Path, Path, Path] | None:
    """CA, certificate and key of the stack's `identity` component, or None under BJSV_TLS=off (warned)."""
    if not settings.tls_enabled:
        log.warning("BJSV_TLS=off: identity serves PLAINTEXT HTTP (development only; never in production)")
        return None
    try:
        return pki.usable(settings, "identity")
    except StartupError as e:
        print("error: " + str(e), file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
