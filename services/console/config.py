"""Console settings (BJSV_CONSOLE_*), plus the identity settings the services use (BJSV_IDENTITY_PORT,
BJSV_OIDC_ISSUER): the console logs users in at the same issuer that the services verify tokens against."""

from __future__ import annotations

import os

from pydantic import Field

from common.auth.config import AuthSettings


class ConsoleSettings(AuthSettings):
    console_port: int = Field(default=8080, description="(console) HTTPS port of the web console and JSON API")
    console_idle_timeout: float = Field(
        default=1800.0, description="(console) seconds of inactivity after which a login session ends"
    )
    console_workers: int = Field(
        default_factory=lambda: min(4, os.cpu_count() or 1),
        ge=1,
        description="(console) worker processes serving the console (they share the login sessions' file)",
    )
    console_grpc_timeout: float = Field(default=15.0, description="(console) deadline of each gRPC call (s)")
    oidc_client_id: str | None = Field(default="bjsv-console", description="(console) OAuth client id of the console")
    console_oidc_code_flow: bool = Field(
        default=False,
        description="(console) log in by authorization code + PKCE (external issuer) instead of the password grant",
    )

    @property
    def https(self) -> bool:
        """HTTPS with the stack's certificate (pki/console.crt) unless plaintext is asked for (BJSV_TLS=off)."""
        return self.tls_enabled
