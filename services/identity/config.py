"""Settings of the embedded OIDC issuer (`python -m services.identity`)."""

from __future__ import annotations

from pydantic import Field

from common.auth.config import AuthSettings


class IdentitySettings(AuthSettings):
    identity_token_ttl: int = Field(default=900, description="(identity) seconds an access token is valid")
    identity_key_rotation_days: float = Field(
        default=30.0, description="(identity) days a signing key signs before the next one takes over"
    )
