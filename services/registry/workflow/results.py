"""Typed results passed between the workflow's use cases, the rules port and the API edge (instead of
`dict[str, Any]` bags): what a use case returns is converted to protobuf by `convert.to_proto_*` only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from services.registry.domain.workflow.model import PenaltyRung
from services.registry.storage import workflow_models as wm
from services.registry.storage.workflow_repository import SupervisorView


@dataclass(frozen=True)
class TeamFinding:
    """One finding of the rules service on a team (CheckTeam): rule id, Chinese message, article, subject."""

    rule_id: str
    message: str
    article: str
    subject: str

    def as_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class TeamCheck:
    """A team the rules service accepted (no blocking finding) on every covered session (第十五条–第二十条)."""

    advisory: list[TeamFinding]
    rule_set_version: str
    recommended_team_size: int
    decisions: list[str]
    views: dict[int, SupervisorView]


@dataclass(frozen=True)
class PoolMember:
    """One supervisor of the pool a team is drawn from (第二十条 双随机), with the rules that excluded them."""

    supervisor: str
    display_name: str
    drawn: bool
    excluded_by: list[str]
    recent_dispatch_count: int


@dataclass(frozen=True)
class Pool:
    """What ProposeTeam drew from: every member, how many were evaluated, the rules service's digest."""

    members: list[PoolMember]
    evaluated_count: int
    digest: str


@dataclass(frozen=True)
class Proposal:
    """A ProposeTeam draw and its check: blocking findings are reported, not raised."""

    team: list[str]
    seed: str
    rule_set_version: str
    recommended_team_size: int = 0
    blocking: list[TeamFinding] = field(default_factory=list)
    advisory: list[TeamFinding] = field(default_factory=list)
    pool: Pool = field(default_factory=lambda: Pool([], 0, ""))


@dataclass
class Recommendation:
    """EvaluatePenalty's answer for a case (D13), stored with the case as JSON."""

    rung: PenaltyRung
    article: str
    sanction_text: str
    explanation: str
    serious: bool
    immediate_report: bool
    rule_ids: list[str]
    rule_set_version: str
    decisions: list[str]
    evaluate_time: str

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "rung": self.rung.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recommendation:
        """Rows written before `decisions`, `immediate_report` and `evaluate_time` existed read as empty."""
        return cls(
            rung=PenaltyRung(data["rung"]),
            article=data["article"],
            sanction_text=data["sanction_text"],
            explanation=data["explanation"],
            serious=data["serious"],
            immediate_report=data.get("immediate_report", False),
            rule_ids=data["rule_ids"],
            rule_set_version=data["rule_set_version"],
            decisions=data.get("decisions", []),
            evaluate_time=data.get("evaluate_time", ""),
        )


@dataclass(frozen=True)
class DispatchView:
    dispatch: wm.Dispatch
    members: list[wm.DispatchMember]
    plan: wm.CertPlan


@dataclass(frozen=True)
class RecordView:
    record: wm.SupervisionRecord
    version: wm.SupervisionRecordVersion
    dispatch: wm.Dispatch
    plan: wm.CertPlan


@dataclass(frozen=True)
class FeedbackView:
    feedback: wm.SupervisorFeedback
    dispatch: wm.Dispatch
    plan: wm.CertPlan


@dataclass(frozen=True)
class CaseView:
    case: wm.PenaltyCase
    decisions: list[wm.CaseDecision]
    #: The wording of each rung (the rule set's `penalty.ladder.*`, D13), for the decisions.
    sanction_texts: Mapping[PenaltyRung, str]


@dataclass(frozen=True)
class OverdueItem:
    """A record or feedback whose 第二十三条 due date has passed without it."""

    kind: str  # "record" | "feedback"
    dispatch: str
    plan: str
    dispatching_agency: str
    institution: str
    plan_title: str
    due_date: dt.date
    overdue_working_days: int
    supervisor: str = ""


@dataclass(frozen=True)
class DispatchStatus:
    view: DispatchView
    record: RecordView | None
    feedback: list[FeedbackView]
    feedback_missing: list[str]
    record_overdue: bool
    feedback_overdue: bool


@dataclass(frozen=True)
class PlanStatus:
    plan: wm.CertPlan
    dispatches: list[DispatchStatus]
    cases: list[CaseView]


@dataclass(frozen=True)
class ClosedReports:
    reports: list[wm.DistrictReport]
    newly_closed: bool


@dataclass(frozen=True)
class SweepResult:
    escalated_cases: list[str]
    closed_reports: list[str]
    as_of_date: dt.date
