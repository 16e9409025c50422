"""Console settings (BJSV_CONSOLE_*, plus the identity issuer settings shared with the services)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from common.config import Settings


class ConsoleSettings(Settings):
    console_port: int = Field(default=8080, description="(console) HTTP(S) port of the web console and JSON API")
    console_tls_cert: Path | None = Field(
        default=None, description="(console) PEM certificate (issued by the stack's CA); set with the key = HTTPS"
    )
    console_tls_key: Path | None = Field(default=None, description="(console) PEM private key of the certificate")
    console_idle_timeout: float = Field(
        default=1800.0, description="(console) seconds of inactivity after which a login session ends"
    )
    console_grpc_timeout: float = Field(default=15.0, description="(console) deadline of each gRPC call (s)")
    oidc_issuer: str | None = Field(
        default=None, description="OAuth 2.0 / OIDC issuer URL; the console logs users in there and forwards tokens"
    )
    console_issuer_ca: Path | None = Field(
        default=None, description="(console) CA certificate (PEM) the issuer's HTTPS is verified with: the stack's CA"
    )
    oidc_client_id: str = Field(default="bjsv-console", description="(console) OAuth client id of the console")
    console_oidc_code_flow: bool = Field(
        default=False,
        description="(console) log in by authorization code + PKCE (external issuer) instead of the password grant",
    )
    console_dev_accounts: Path | None = Field(
        default=None,
        description="(console) development only, until the identity issuer is merged: YAML accounts "
        "(argon2 hashes) whose org/role travel as x-bjsv-org / x-bjsv-role",
    )

    @property
    def https(self) -> bool:
        return bool(self.console_tls_cert and self.console_tls_key)
