"""Penalty cases (第二十六条 institutions, 第二十七条 external supervisors): the state machine.

open ──decision──▶ awaiting_correction (通报批评并责令改正 with a deadline) ──correction──▶ closed
  │                      │ deadline passed, nothing recorded (拒不改正, D13)
  │                      ▼
  │                  escalated ──decision──▶ awaiting_correction | closed
  └──decision (any other rung, or 不予处理)──▶ closed

The rules service recommends (EvaluatePenalty, which also owns the 拒不改正 escalation); an authorised
official decides (D13). This module only enforces which transitions are legal.
"""

from __future__ import annotations

import datetime as dt

from common.errors import FailedPrecondition, PreconditionViolation
from services.registry.domain.problems import Problem, ProblemsError
from services.registry.domain.workflow.model import (
    CaseState,
    CaseSubjectKind,
    CaseTrigger,
    PenaltyRung,
)

ART26_OFFICIALS = ("city-centre",)  # 第二十六条 由市鉴定管理中心通报批评并责令其改正
ART27_OFFICIALS = ("city-centre", "district-agency")  # 第二十七条 市、区鉴定管理机构加强外督员管理


def validate_open(
    subject_kind: CaseSubjectKind | None, subject: str, triggers: list[CaseTrigger | None], description: str
) -> None:
    problems = []
    if subject_kind is None:
        problems.append(
            Problem("penalty_case.subject_kind", "SUBJECT_KIND_REQUIRED", "请选择处理对象（评价机构或外督员）")
        )
    else:
        prefix = "institutions/" if subject_kind is CaseSubjectKind.INSTITUTION else "supervisors/"
        if not subject.startswith(prefix) or len(subject) <= len(prefix):
            problems.append(Problem("penalty_case.subject", "SUBJECT_INVALID", f"处理对象应写为 {prefix}编号"))
    if not triggers or any(t is None for t in triggers):
        problems.append(
            Problem("penalty_case.triggers", "TRIGGER_REQUIRED", "请选择情形：第二十六条（一）至（六）或第二十七条")
        )
    elif subject_kind is not None and any(t.subject_kind is not subject_kind for t in triggers if t):
        problems.append(
            Problem(
                "penalty_case.triggers",
                "TRIGGER_SUBJECT_MISMATCH",
                "第二十六条的情形适用于被督导机构，第二十七条的情形适用于外督员",
            )
        )
    if not description.strip():
        problems.append(Problem("penalty_case.description", "DESCRIPTION_REQUIRED", "请说明案件事实"))
    if problems:
        raise ProblemsError(problems)


def decide(
    case_name: str,
    state: CaseState,
    subject_kind: CaseSubjectKind,
    rung: PenaltyRung | None,
    correction_deadline: dt.date | None,
    official: str,
    today: dt.date,
) -> CaseState:
    """State after an official's decision; raises when the decision is not legal now."""
    if state not in (CaseState.OPEN, CaseState.ESCALATED):
        raise FailedPrecondition(
            "CASE_NOT_AWAITING_DECISION",
            [
                PreconditionViolation(
                    "bjsv.case.state", case_name, f"案件当前状态为“{STATE_LABELS[state]}”，不能记录处理决定"
                )
            ],
        )
    problems = []
    if rung is None:
        problems.append(Problem("decision.rung", "RUNG_REQUIRED", "请选择处理决定"))
    elif rung is not PenaltyRung.NO_ACTION and rung.ladder is not subject_kind:
        article = "第二十六条" if subject_kind is CaseSubjectKind.INSTITUTION else "第二十七条"
        problems.append(Problem("decision.rung", "RUNG_NOT_ON_LADDER", f"该处理决定不适用于本案（应依{article}）"))
    if not official.strip():
        problems.append(Problem("decision.official", "OFFICIAL_REQUIRED", "请填写作出决定的负责人（D13）"))
    if rung is PenaltyRung.CRITICISM_AND_CORRECTION:
        if correction_deadline is None:
            problems.append(
                Problem(
                    "decision.correction_deadline",
                    "CORRECTION_DEADLINE_REQUIRED",
                    "责令改正须规定改正期限（第二十六条）",
                )
            )
        elif correction_deadline <= today:
            problems.append(
                Problem("decision.correction_deadline", "CORRECTION_DEADLINE_NOT_FUTURE", "改正期限应晚于今天")
            )
    elif correction_deadline is not None:
        problems.append(
            Problem(
                "decision.correction_deadline", "CORRECTION_DEADLINE_UNEXPECTED", "只有“通报批评并责令改正”需要改正期限"
            )
        )
    if problems:
        raise ProblemsError(problems)
    return CaseState.AWAITING_CORRECTION if rung is PenaltyRung.CRITICISM_AND_CORRECTION else CaseState.CLOSED


def record_correction(
    case_name: str, state: CaseState, deadline: dt.date | None, today: dt.date, note: str
) -> CaseState:
    if state is not CaseState.AWAITING_CORRECTION or deadline is None:
        raise FailedPrecondition(
            "CASE_NOT_AWAITING_CORRECTION",
            [PreconditionViolation("bjsv.case.state", case_name, "本案没有正在执行的责令改正（第二十六条）")],
        )
    if today > deadline:
        raise FailedPrecondition(
            "CORRECTION_DEADLINE_PASSED",
            [
                PreconditionViolation(
                    "bjsv.case.correction-deadline",
                    case_name,
                    f"改正期限{deadline.isoformat()}已过，逾期未改正按拒不改正处理（第二十六条）",
                )
            ],
        )
    if not note.strip():
        raise ProblemsError([Problem("note", "NOTE_REQUIRED", "请说明改正情况")])
    return CaseState.CLOSED


def due_for_escalation(state: CaseState, deadline: dt.date | None, today: dt.date) -> bool:
    """D13 "refuses to correct": a correction order's deadline passed with no correction recorded."""
    return state is CaseState.AWAITING_CORRECTION and deadline is not None and today > deadline


def official_roles(subject_kind: CaseSubjectKind) -> tuple[str, ...]:
    """Who may record a decision (D13 authorised official)."""
    return ART26_OFFICIALS if subject_kind is CaseSubjectKind.INSTITUTION else ART27_OFFICIALS


STATE_LABELS = {
    CaseState.OPEN: "待决定",
    CaseState.AWAITING_CORRECTION: "责令改正中",
    CaseState.ESCALATED: "逾期未改正，待再次决定",
    CaseState.CLOSED: "已结案",
}
