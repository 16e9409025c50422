"""Registry settings (environment variables BJSV_REGISTRY_*, and the workflow's BJSV_SUPERVISION_*, on top of
common.config.Settings). The registry process reads them once in its composition root and passes them in."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from common.config import Settings
from common.workdays import CalendarFile
from services.registry.domain.policy import RegistryPolicy
from services.registry.domain.workflow.policy import WorkflowPolicy


class RegistrySettings(Settings):
    registry_photo_max_bytes: int = Field(default=2 * 1024 * 1024, description="largest accepted photo")
    registry_expiry_sweep_interval: float = Field(
        default=3600.0, description="seconds between expiry sweeps (聘期届满自动解聘); 0 disables the task"
    )
    registry_rules_timeout: float = Field(default=5.0, description="deadline of calls to the rules service (s)")
    calendar_file: Path | None = Field(
        default=None,
        description="operator calendar file (YAML/JSON) for years chinese-calendar does not cover (D5)",
    )
    supervision_sweep_interval: float = Field(
        default=300.0, description="seconds between deadline sweeps (correction orders, period close); 0 disables"
    )
    supervision_test_clock: bool = Field(
        default=False, description="allow SetSupervisionClock (tests and dry runs only; never in production)"
    )
    supervision_rules_timeout: float = Field(default=10.0, description="deadline of calls to the rules service (s)")
    supervision_recent_window_days: int = Field(
        default=90, description="window for recent_dispatch_count sent to ProposeTeam (fairness of the draw)"
    )

    def policy(self) -> RegistryPolicy:
        return RegistryPolicy(photo_max_bytes=self.registry_photo_max_bytes)

    def workflow_policy(self) -> WorkflowPolicy:
        return WorkflowPolicy()

    def calendar(self) -> CalendarFile:
        """The statutory working days: chinese-calendar plus the operator's file, re-read when it changes."""
        return CalendarFile(self.calendar_file)
