"""Domain vocabulary of the supervision workflow: enumerations and value objects (stable English values
that are also what the database stores; the API edge maps them to and from the proto enums)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class SupervisionForm(StrEnum):
    """第十九条: 现场督导 and 事后认定资料督导."""

    ON_SITE = "on_site"
    RECORDS_REVIEW = "records_review"

    @property
    def label(self) -> str:
        return "现场督导" if self is SupervisionForm.ON_SITE else "事后认定资料督导"


class CertificationMode(StrEnum):
    """认定形式 of a plan."""

    THEORY_EXAM = "theory_exam"
    SKILL_OPERATION = "skill_operation"
    COMPREHENSIVE_REVIEW = "comprehensive_review"
    PROCESS_ASSESSMENT = "process_assessment"
    PERFORMANCE_EVALUATION = "performance_evaluation"
    DIRECT_CERTIFICATION = "direct_certification"
    OTHER = "other"


CERTIFICATION_MODE_LABELS: dict[CertificationMode, str] = {
    CertificationMode.THEORY_EXAM: "理论知识考试",
    CertificationMode.SKILL_OPERATION: "技能操作考核",
    CertificationMode.COMPREHENSIVE_REVIEW: "综合评审",
    CertificationMode.PROCESS_ASSESSMENT: "过程化考核",
    CertificationMode.PERFORMANCE_EVALUATION: "业绩评价",
    CertificationMode.DIRECT_CERTIFICATION: "直接认定",
    CertificationMode.OTHER: "其他",
}


def certification_mode_text(modes: list[CertificationMode], other_text: str = "") -> str:
    """认定形式 as printed on Annex 3, e.g. "理论知识考试、技能操作考核"."""
    labels = [
        other_text.strip() if m is CertificationMode.OTHER and other_text.strip() else CERTIFICATION_MODE_LABELS[m]
        for m in modes
    ]
    return "、".join(labels)


class Answer(StrEnum):
    YES = "yes"  # 是
    NO = "no"  # 否

    @property
    def label(self) -> str:
        return "是" if self is Answer.YES else "否"


class DispatchScope(StrEnum):
    EXTERNAL = "external"
    INTERNAL = "internal"


class CaseSubjectKind(StrEnum):
    INSTITUTION = "institution"  # 第二十六条
    SUPERVISOR = "supervisor"  # 第二十七条


class CaseTrigger(StrEnum):
    REFUSED_INFORMATION = "refused_information"  # 第二十六条（一）
    OBSTRUCTED_REPORTING = "obstructed_reporting"  # 第二十六条（二）
    REFUSED_IMPROVEMENT = "refused_improvement"  # 第二十六条（三）
    FALSIFICATION = "falsification"  # 第二十六条（四）
    RETALIATION = "retaliation"  # 第二十六条（五）
    OTHER_INTERFERENCE = "other_interference"  # 第二十六条（六）
    SUPERVISOR_DUTY_FAILURE = "supervisor_duty_failure"  # 第二十七条 未认真履行职责
    SUPERVISOR_PRIVATE_GAIN = "supervisor_private_gain"  # 第二十七条 利用职务谋取私利

    @property
    def subject_kind(self) -> CaseSubjectKind:
        if self in (CaseTrigger.SUPERVISOR_DUTY_FAILURE, CaseTrigger.SUPERVISOR_PRIVATE_GAIN):
            return CaseSubjectKind.SUPERVISOR
        return CaseSubjectKind.INSTITUTION

    @property
    def citation(self) -> str:
        return TRIGGER_CITATIONS[self]


TRIGGER_CITATIONS: dict[CaseTrigger, str] = {
    CaseTrigger.REFUSED_INFORMATION: "第二十六条（一）拒绝向外督员提供与其督导内容有关情况和文件资料的",
    CaseTrigger.OBSTRUCTED_REPORTING: "第二十六条（二）阻挠有关人员向外督员反映情况的",
    CaseTrigger.REFUSED_IMPROVEMENT: "第二十六条（三）对提出的督导意见拒不采取改进措施的",
    CaseTrigger.FALSIFICATION: "第二十六条（四）弄虚作假、采取欺骗手段干扰质量督导工作的",
    CaseTrigger.RETALIATION: "第二十六条（五）打击、报复外督员的",
    CaseTrigger.OTHER_INTERFERENCE: "第二十六条（六）其他影响质量督导工作的行为",
    CaseTrigger.SUPERVISOR_DUTY_FAILURE: "第二十七条 未认真履行职责",
    CaseTrigger.SUPERVISOR_PRIVATE_GAIN: "第二十七条 利用职务谋取私利",
}


class CaseOrigin(StrEnum):
    RECORD_FINDING = "record_finding"
    FEEDBACK = "feedback"
    MANUAL = "manual"


class PenaltyRung(StrEnum):
    NO_ACTION = "no_action"
    CRITICISM_AND_CORRECTION = "criticism_and_correction"  # 第二十六条 rung 1
    DISCIPLINARY_RECOMMENDATION = "disciplinary_recommendation"  # 第二十六条 rung 2
    QUALIFICATION_REVOKED = "qualification_revoked"  # 第二十六条 rung 3
    SUPERVISOR_CRITICISM = "supervisor_criticism"  # 第二十七条 rung 1
    SUPERVISOR_SUSPENSION = "supervisor_suspension"  # 第二十七条 rung 2
    SUPERVISOR_REVOCATION = "supervisor_revocation"  # 第二十七条 rung 3

    @property
    def ladder(self) -> CaseSubjectKind | None:
        if self is PenaltyRung.NO_ACTION:
            return None
        return CaseSubjectKind.SUPERVISOR if self.value.startswith("supervisor_") else CaseSubjectKind.INSTITUTION


#: Each ladder's rungs in the law's order (第二十六条, 第二十七条); their wording is the rule set's (D13
#: `penalty.ladder.art26`, `penalty.ladder.art27`), read when a case is shown.
LADDER_RUNGS: dict[str, tuple[PenaltyRung, PenaltyRung, PenaltyRung]] = {
    "penalty.ladder.art26": (
        PenaltyRung.CRITICISM_AND_CORRECTION,
        PenaltyRung.DISCIPLINARY_RECOMMENDATION,
        PenaltyRung.QUALIFICATION_REVOKED,
    ),
    "penalty.ladder.art27": (
        PenaltyRung.SUPERVISOR_CRITICISM,
        PenaltyRung.SUPERVISOR_SUSPENSION,
        PenaltyRung.SUPERVISOR_REVOCATION,
    ),
}
#: An official's finding of no violation is on neither ladder.
NO_ACTION_TEXT = "不予处理"


class CaseState(StrEnum):
    OPEN = "open"
    AWAITING_CORRECTION = "awaiting_correction"
    ESCALATED = "escalated"
    CLOSED = "closed"


@dataclass(frozen=True)
class Period:
    """A half-month reporting period (D10)."""

    start: dt.date
    end: dt.date

    @property
    def key(self) -> str:
        """ "YYYY-MM-1" for the first half (1st to the D10 split day), "YYYY-MM-2" for the second."""
        return f"{self.start:%Y-%m}-{1 if self.start.day == 1 else 2}"


@dataclass(frozen=True)
class ItemAnswer:
    item_number: int
    answer: Answer | None
    remark: str = ""


@dataclass(frozen=True)
class RecordInput:
    """What a supervisor submits on Annex 3 (附件3): answers, 存在问题, signatures and the sign date."""

    answers: list[ItemAnswer]
    problems: str
    signatures: list[str]
    head_signature: str
    sign_date: dt.date | None


@dataclass(frozen=True)
class Finding:
    """A finding derived from a 否 item (D11)."""

    item_number: int
    item_text: str
    remark: str
    triggers: tuple[CaseTrigger, ...] = ()


@dataclass(frozen=True)
class Lateness:
    late: bool
    working_days: int
    calendar_days: int


@dataclass
class SessionWindow:
    session_id: str
    start: dt.datetime
    end: dt.datetime


@dataclass
class SessionPersonIn:
    display_name: str
    id_number: str = ""
    supervisor: str = ""
    role: str = ""


@dataclass
class PlanSessionIn:
    session_id: str
    start: dt.datetime | None
    end: dt.datetime | None
    venue: str = ""
    examiners: list[SessionPersonIn] = field(default_factory=list)
    staff: list[SessionPersonIn] = field(default_factory=list)
    internal_supervisors: list[str] = field(default_factory=list)


@dataclass
class PlanIn:
    institution: str
    title: str
    modes: list[CertificationMode | None]
    other_mode_text: str
    district: str
    candidate_count: int
    occupation: str
    sessions: list[PlanSessionIn]
