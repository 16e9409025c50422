"""Identity settings (`BJSV_OIDC_*`, `BJSV_IDENTITY_*`, `BJSV_AUTHZ_*`), read like every other setting.

Unset issuer = the embedded issuer (`services/identity`) at `https://<bind_host>:<identity_port>` (its
certificate from the stack's CA; `http://` only under BJSV_TLS=off); set it to point every service at an
external OpenID Connect provider (README: Keycloak worked example).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field

from common.config import Settings


class AuthSettings(Settings):
    identity_port: int = Field(default=50050, description="HTTPS port of the embedded OIDC issuer")
    identity_dir: Path | None = Field(
        default=None, description="embedded issuer's keys, accounts and local credentials (default <data_dir>/identity)"
    )
    identity_url: str | None = Field(
        default=None,
        description="URL the embedded issuer is reached at and names in its tokens; unset = https://<bind_host>:<identity_port>",
    )
    oidc_issuer: str | None = Field(
        default=None, description="external OIDC issuer URL; unset = the embedded issuer on identity_port"
    )
    oidc_ca_file: Path | None = Field(
        default=None, description="CA certificate (PEM) trusted for an external issuer's HTTPS besides the system's"
    )
    oidc_audience: str = Field(default="bjsv", description="audience every token must name")
    oidc_jwks_url: str | None = Field(default=None, description="JWKS URL; unset = jwks_uri from OIDC discovery")
    oidc_org_claim: str = Field(default="org", description="claim holding the caller's organisation")
    oidc_roles_claim: str = Field(default="roles", description="claim holding the caller's roles (list)")
    oidc_client_id: str | None = Field(
        default=None, description="this service's client id at an external issuer (client credentials)"
    )
    oidc_client_secret: str | None = Field(default=None, description="this service's client secret at that issuer")
    authz_policy_file: Path | None = Field(
        default=None, description="authorisation policy overriding the shipped common/auth/policy.yaml"
    )
    test_clock: bool = Field(
        default=False,
        validation_alias=AliasChoices("BJSV_TEST_CLOCK", "BJSV_SUPERVISION_TEST_CLOCK"),
        description="test-clock RPCs (SetSupervisionClock, notify SetClock, RunDueTimers) exist; never in production",
    )
    authz_public_rate: float = Field(
        default=20.0, description="public calls (VerifyBadge) per second allowed per client address"
    )

    @property
    def embedded(self) -> bool:
        return not self.oidc_issuer

    @property
    def issuer(self) -> str:
        scheme = "https" if self.tls_enabled else "http"  # the embedded issuer serves TLS as gRPC does
        embedded = self.identity_url or f"{scheme}://{self.bind_host}:{self.identity_port}"
        return (self.oidc_issuer or embedded).rstrip("/")

    @property
    def identity_path(self) -> Path:
        return self.identity_dir or self.data_dir / "identity"
