"""Registry settings (environment variables BJSV_REGISTRY_*, on top of common.config.Settings)."""

from __future__ import annotations

from pydantic import Field

from common.config import Settings
from services.registry.domain.policy import RegistryPolicy


class RegistrySettings(Settings):
    registry_photo_max_bytes: int = Field(default=2 * 1024 * 1024, description="largest accepted photo")
    registry_expiry_sweep_interval: float = Field(
        default=3600.0, description="seconds between expiry sweeps (聘期届满自动解聘); 0 disables the task"
    )
    registry_rules_timeout: float = Field(default=5.0, description="deadline of calls to the rules service (s)")

    def policy(self) -> RegistryPolicy:
        return RegistryPolicy(photo_max_bytes=self.registry_photo_max_bytes)
