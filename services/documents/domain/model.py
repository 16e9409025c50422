"""Plain input types of the renderers; api.py converts the protos into these (from_proto_*)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from services.documents.domain.annex3 import ChecklistKind


class SupervisorCategory(StrEnum):
    EXTERNAL = "external"  # 外督员
    INTERNAL = "internal"  # 内督员

    @property
    def label(self) -> str:
        return "外督员" if self is SupervisorCategory.EXTERNAL else "内督员"

    @classmethod
    def from_code(cls, code: str) -> SupervisorCategory:
        """附件1: R = external; Y (用人单位) / S (社会培训评价组织) = internal."""
        return cls.EXTERNAL if code[:1].upper() == "R" else cls.INTERNAL


@dataclass(frozen=True, slots=True)
class Badge:
    code: str
    holder_name: str
    valid_from: str  # "YYYY-MM"
    valid_until: str  # "YYYY-MM"
    issuer: str  # resource name, e.g. "agencies/A"
    issuer_name: str
    category: SupervisorCategory | None = None
    level: str = ""
    photo: bytes = b""
    issuer_seal: bytes = b""
    issuer_logo: bytes = b""
    validity: str = ""  # as printed, when the registry supplies it (D4 text is the registry's call)

    @property
    def resolved_category(self) -> SupervisorCategory:
        return self.category or SupervisorCategory.from_code(self.code)

    @property
    def validity_text(self) -> str:
        """D4: `YYYY.MM-YYYY.MM` (the registry's text when given)."""
        if self.validity:
            return self.validity
        return f"{self.valid_from.replace('-', '.')}-{self.valid_until.replace('-', '.')}"

    @property
    def subject(self) -> str:
        return f"badges/{self.code}"


@dataclass(frozen=True, slots=True)
class ChecklistAnswer:
    item: int
    compliant: bool  # 是 = True, 否 = False
    remark: str = ""


@dataclass(frozen=True, slots=True)
class SupervisionRecord:
    name: str  # "records/17"
    kind: ChecklistKind
    institution_name: str
    plan_name: str
    assessment_method: str
    answers: tuple[ChecklistAnswer, ...]
    problems: str = ""
    supervisor_names: tuple[str, ...] = ()
    signed_date: dt.date | None = None
    institution_head_name: str = ""

    def answer(self, item: int) -> ChecklistAnswer | None:
        for a in self.answers:
            if a.item == item:
                return a
        return None


@dataclass(frozen=True, slots=True)
class Feedback:
    name: str  # "feedback/5"
    reporting_unit: str
    supervisor_name: str
    entry_time: dt.datetime | None
    exit_time: dt.datetime | None
    badge_worn: bool | None
    duties_performed: bool | None
    integrity_kept: bool | None
    comments: str = ""
    signed_by: str = ""  # who signed for the reporting unit (填报单位（盖章/签字）)
    signed_date: dt.date | None = None


@dataclass(frozen=True, slots=True)
class ItemCount:
    kind: ChecklistKind
    item: int
    count: int


@dataclass(frozen=True, slots=True)
class LateSubmission:
    record: str
    institution_name: str
    due_date: dt.date | None  # printed blank when not given (cn_date)
    submitted_date: dt.date | None


@dataclass(frozen=True, slots=True)
class DistrictReport:
    name: str  # "reports/08/2026-03-1"
    district_code: str
    district_name: str
    period_start: dt.date
    period_end: dt.date
    on_site_count: int
    records_review_count: int
    non_compliant_counts: tuple[ItemCount, ...] = ()
    late_submissions: tuple[LateSubmission, ...] = ()
    cases_opened: int = 0
    cases_decided: int = 0
    report_date: dt.date | None = None
    late_record_count: int = 0  # used when late_submissions are not itemised
    late_feedback_count: int = 0
    feedback_count: int = 0
    dispatches_created: int = 0
