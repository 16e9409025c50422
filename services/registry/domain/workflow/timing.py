"""第二十三条 timing (D20 in the service README): an Annex 3 record and an Annex 4 feedback report what happened
during the supervision, so neither exists before the supervision has started, and the entry/exit times of the
feedback lie within the supervision window (widened by a tolerance for arriving early and leaving late) and not
in the future. A records-review dispatch's deadline counts from the review, never from an earlier day."""

from __future__ import annotations

import datetime as dt

from common.clock import SHANGHAI
from services.registry.domain.problems import Problem, ProblemsError, Refused
from services.registry.domain.workflow.dispatch import Window
from services.registry.domain.workflow.model import SupervisionForm


def _hm(t: dt.datetime) -> str:
    return t.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def require_started(window: Window, now: dt.datetime, *, subject: str, what: str) -> None:
    """D20: `what` (督导记录表 / 外督员情况反馈表) cannot be submitted before the supervision starts."""
    if now < window.start:
        raise Refused(
            "SUPERVISION_NOT_STARTED",
            "bjsv.timing.after-start",
            subject,
            f"本次督导{_hm(window.start)}开始，{what}须根据督导实际情况在督导开始后填写提交（第二十三条）",
        )


def check_presence(
    entry: dt.datetime, exit: dt.datetime, window: Window, now: dt.datetime, *, tolerance: dt.timedelta
) -> None:
    """D20: entry and exit are not in the future and lie within [start − tolerance, end + tolerance]."""
    problems: list[Problem] = []
    earliest, latest = window.start - tolerance, window.end + tolerance
    for field, label, t in (("feedback.entry_time", "进场", entry), ("feedback.exit_time", "离场", exit)):
        if t > now:
            problems.append(Problem(field, f"{field.split('.')[1].upper()}_IN_FUTURE",
                                    f"外督员{label}时间{_hm(t)}晚于当前时间，不能预先填写（第二十三条）"))  # fmt: skip
        elif not earliest <= t <= latest:
            problems.append(Problem(field, f"{field.split('.')[1].upper()}_OUTSIDE_SESSION",
                                    f"外督员{label}时间{_hm(t)}不在本次督导时间{_hm(window.start)}至"
                                    f"{_hm(window.end)}内（第二十三条，D20）"))  # fmt: skip
    if problems:
        raise ProblemsError(problems)


def deadline_base(form: SupervisionForm, window: Window, today: dt.date) -> dt.date:
    """The day 第二十三条's deadline counts from: the end of the supervision; for a records review (第二十二条)
    at the earliest the day it is dispatched, since the review cannot have taken place before (D20)."""
    if form is SupervisionForm.RECORDS_REVIEW:
        return max(window.end_day, today)
    return window.end_day
