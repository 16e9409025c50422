"""What every workflow use case shares: the adapters (database, clock, rules port, rule-set parameters,
working-day calendar) and the policies, plus the small mappings from domain outcomes to API errors."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from common.context import current_caller
from common.db import Database
from common.errors import (
    FailedPrecondition,
    PermissionDenied,
    PreconditionViolation,
)
from common.policy import PolicyParameters
from common.workdays import CalendarFile, CalendarFileError, CalendarNotCovered, WorkdayCalendar
from services.registry.domain.workflow.policy import WorkflowPolicy
from services.registry.workflow.clock import WorkflowClock
from services.registry.workflow.rules_port import RulesPort

ROLE_LABELS = {"city-centre": "市鉴定管理中心", "district-agency": "区鉴定管理机构"}


@dataclass(frozen=True)
class Workflow:
    db: Database
    clock: WorkflowClock
    rules: RulesPort
    parameters: PolicyParameters  # rule-set parameters in force (D5 deadline), from the rules service
    calendars: CalendarFile  # the statutory working days (D5), from settings (BJSV_CALENDAR_FILE)
    policy: WorkflowPolicy

    @property
    def calendar(self) -> WorkdayCalendar:
        """The calendar now; an operator file broken since start is refused explicitly (D5), never guessed."""
        try:
            return self.calendars()
        except CalendarFileError as e:
            raise FailedPrecondition(
                "CALENDAR_FILE_INVALID",
                [
                    PreconditionViolation(
                        "bjsv.deadline.workday-calendar", "calendar", f"运维配置的工作日历文件有误：{e}"
                    )
                ],
            ) from None

    def today(self) -> dt.date:
        return self.clock.today()


def calendar_error(e: CalendarNotCovered, subject: str) -> FailedPrecondition:
    return FailedPrecondition(
        e.reason,
        [PreconditionViolation("bjsv.deadline.workday-calendar", subject, f"{e.message_zh}（第二十三条，D5）")],
        metadata={"year": str(e.year)},
    )


def caller_org() -> str:
    return current_caller().org


def require_role(roles: tuple[str, ...], what: str) -> None:
    role = current_caller().role
    if role not in roles:
        raise PermissionDenied(
            "ROLE_NOT_AUTHORISED", f"{what}须由{'、'.join(ROLE_LABELS.get(r, r) for r in roles)}办理"
        )
