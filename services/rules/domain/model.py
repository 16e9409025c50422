"""Domain values of the rules service: the facts callers send and the explained decisions returned.

Enumerations are small ints that equal the proto enum numbers of bjsv.rules.v1 (so the API edge converts
without tables) and are what the engine compares (numbers only, library-notes §1.11).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

# Purpose (第十条 appointment, 第十三条 renewal, 第十四条 dispatch)
APPOINTMENT, RENEWAL, DISPATCH = 1, 2, 3
PURPOSE_NAMES = {APPOINTMENT: "appointment", RENEWAL: "renewal", DISPATCH: "dispatch"}
MALE, FEMALE = 1, 2
EXTERNAL, INTERNAL = 1, 2
LEVEL_NONE, CITY, DISTRICT = 0, 1, 2
STATUS_NONE, ACTIVE, EXPIRED, SUSPENDED, REVOKED = 0, 1, 2, 3, 4
# 第九条 attestation items
PARTY_LINE, POLICY_KNOWLEDGE, INTEGRITY, ABILITY, HEALTH = 1, 2, 3, 4, 5
# Penalty
SUBJECT_INSTITUTION, SUBJECT_SUPERVISOR = 1, 2
ART26_TRIGGERS = frozenset({1, 2, 3, 4, 5, 6})
ART27_TRIGGERS = frozenset({7, 8})
NEGLECT_OF_DUTY, PRIVATE_GAIN = 7, 8
# Sanctions: the numbering of bjsv.rules.v1.Sanction = bjsv.registry.v1.PenaltyRung (one numbering, issue #14
# item 11): 1 no action, 2..4 第二十六条 rungs 1..3, 5..7 第二十七条 rungs 1..3.
SANCTION_NO_ACTION = 1
SANCTION_BASE = {SUBJECT_INSTITUTION: 1, SUBJECT_SUPERVISOR: 4}  # sanction = base + rung


def rung_of_sanction(sanction: int) -> int:
    """1..3 on its ladder; 0 for no sanction or no action."""
    return 0 if sanction <= SANCTION_NO_ACTION else (sanction - 2) % 3 + 1


# Annex 3 forms (= proto SupervisionForm) with their item counts; answers (= proto AnswerValue)
ON_SITE, RECORDS_REVIEW = 1, 2
ANNEX3_ITEMS = {ON_SITE: 17, RECORDS_REVIEW: 16}
YES, NO = 1, 2
# Agency kinds (D8)
AGENCY_CITY_CENTRE, AGENCY_DISTRICT, AGENCY_INSTITUTION = 1, 2, 3

# Decision kinds (= proto DecisionKind) and outcomes (= proto Outcome), severities (= proto Severity)
KIND_ELIGIBILITY, KIND_RECUSAL, KIND_TEAM, KIND_PENALTY, KIND_TEAM_DRAW, KIND_INSPECTION_SAMPLE = 1, 2, 3, 4, 5, 6
KIND_RECORD, KIND_FEEDBACK = 7, 8
ALLOW, DENY, ADVISE = 1, 2, 3
BLOCKING, ADVISORY = 1, 2


@dataclass(frozen=True)
class Conflict:
    kind: int
    counterpart: str


@dataclass(frozen=True)
class Supervisor:
    name: str
    person_id: str = ""
    gender: int = MALE
    birth_date: dt.date = dt.date(1970, 1, 1)
    kind: int = EXTERNAL
    level: int = LEVEL_NONE
    district_code: str = ""
    institution: str = ""
    status: int = STATUS_NONE
    term_start: dt.date | None = None
    term_end: dt.date | None = None
    training_passed: bool = False
    attestations: frozenset[int] = frozenset()
    employer: str = ""
    affiliations: tuple[str, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    recent_dispatch_count: int = 0


@dataclass(frozen=True)
class Plan:
    name: str
    institution: str = ""
    district_code: str = ""
    candidate_count: int = 0


@dataclass(frozen=True)
class Session:
    name: str = ""
    date: dt.date | None = None
    examiner_person_ids: frozenset[str] = frozenset()
    candidate_person_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class EligibilityInput:
    supervisor: Supervisor
    as_of: dt.date
    purpose: int


@dataclass(frozen=True)
class RecusalInput:
    supervisor: Supervisor
    plan: Plan
    session: Session
    as_of: dt.date


@dataclass(frozen=True)
class TeamInput:
    agency: str
    plan: Plan
    session: Session
    supervisors: tuple[Supervisor, ...]
    as_of: dt.date


@dataclass(frozen=True)
class PriorCase:
    name: str
    trigger: int
    decided: dt.date
    rung: int  # 0 when no sanction was recorded
    correction_deadline: dt.date | None = None
    corrected: dt.date | None = None


@dataclass(frozen=True)
class PenaltyInput:
    subject_kind: int
    subject: str
    history: tuple[PriorCase, ...]
    trigger: int
    occurred: dt.date
    serious: bool
    as_of: dt.date
    supervisor_kind: int = 0


@dataclass(frozen=True)
class RecordAnswer:
    item_number: int
    answer: int
    remark: str


@dataclass(frozen=True)
class RecordInput:
    subject: str
    form: int
    answers: tuple[RecordAnswer, ...]
    as_of: dt.date


@dataclass(frozen=True)
class FeedbackInput:
    subject: str
    badge_worn: int
    duties_performed: int
    integrity_kept: int
    as_of: dt.date


@dataclass
class Finding:
    rule_id: str
    article: str
    interpretation: str
    severity: int
    message: str
    subject: str
    facts: dict[str, str]


@dataclass
class Recommendation:
    article: str
    rung: int
    sanction: int  # proto Sanction number
    sanction_text: str
    immediate_report: bool
    serious: bool


@dataclass
class Decision:
    kind: int
    outcome: int
    findings: list[Finding]
    subject: str
    as_of: dt.date
    ruleset_id: str
    ruleset_version: str
    ruleset_effective: dt.date
    derived: dict[str, str] = field(default_factory=dict)
    recommended_team_size: int = 0
    member_count: int = 0
    recommendation: Recommendation | None = None
    case_openings: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)  # D14: (item, triggers)
    review_trigger: int = 0  # D12: the 第二十七条 trigger of the review the feedback opens, 0 = none
    extra: dict[str, Any] = field(default_factory=dict)
    name: str = ""  # "decisions/<id>", set when logged
    input_digest: str = ""  # sha256 of the canonical request item, set at the API edge
    evaluated_at: dt.datetime | None = None

    def comparable(self) -> tuple:
        """What must be equal when a decision is replayed (everything but id and evaluation time)."""
        rec = self.recommendation
        return (
            self.kind,
            self.outcome,
            self.subject,
            self.as_of,
            self.ruleset_version,
            [(f.rule_id, f.severity, f.message, f.subject, sorted(f.facts.items())) for f in self.findings],
            sorted(self.derived.items()),
            self.recommended_team_size,
            self.member_count,
            None if rec is None else (rec.rung, rec.sanction, rec.immediate_report, rec.serious),
            self.case_openings,
            self.review_trigger,
        )
