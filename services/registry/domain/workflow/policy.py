"""Named, overridable parameters of the supervision workflow, each with the article or decision it encodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

from services.registry.domain.workflow.model import CaseTrigger, SupervisionForm


def _default_case_items() -> MappingProxyType:
    # D14: records-review item 12 (被督导单位配合外督员人员工作) = 否 opens a 第二十六条(一)/(二) case.
    return MappingProxyType(
        {
            (SupervisionForm.RECORDS_REVIEW, 12): (CaseTrigger.REFUSED_INFORMATION, CaseTrigger.OBSTRUCTED_REPORTING),
        }
    )


@dataclass(frozen=True)
class WorkflowPolicy:
    #: D14: Annex 3 items whose 否 opens a case, with the triggers of 第二十六条 it opens.
    case_opening_items: MappingProxyType = field(default_factory=_default_case_items)
    #: D12: which 第二十七条 trigger a "否" in the Annex 4 feedback opens a review under. Integrity
    #: breaches are reviewed as a duty failure; 利用职务谋取私利 needs an official's manual case (D13 would
    #: otherwise recommend revocation from a single tick box).
    feedback_trigger: str = "SUPERVISOR_DUTY_FAILURE"
    #: D10: half-month periods 1st–15th and 16th–last day; the first half ends on this day.
    first_half_last_day: int = 15
    #: 第二十四条: the recipient of district reports and immediate reports.
    city_centre: str = "agencies/A"
    #: Longest accepted free text (remarks, 存在问题, comments).
    max_text_length: int = 2000
    #: Longest accepted plan: sessions per plan.
    max_sessions: int = 200
    #: D20 (第二十三条): how far before the supervision's start and after its end an Annex 4 entry/exit time
    #: may lie (arriving for the 考前 checks, leaving after the 考后 handover). Not yet declared in the rule
    #: set; to move there as `timing.session_tolerance_minutes` and be read through PolicyParameters.
    session_time_tolerance_minutes: int = 60


DEFAULT_POLICY = WorkflowPolicy()
