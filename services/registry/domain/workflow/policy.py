"""Named, overridable limits of the supervision workflow that are not interpretations of the regulation.

The interpretation decisions (D5 deadline, D10 periods, D11 remarks, D12 review trigger, D13 ladder, D14 case
items) live in the rule set only: the workflow reads them through common.policy or asks the rules service
(EvaluateRecord, EvaluateFeedback, EvaluatePenalty) and keeps no copy of its own."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkflowPolicy:
    #: 第二十四条: the recipient of district reports and immediate reports.
    city_centre: str = "agencies/A"
    #: Longest accepted free text (remarks, 存在问题, comments).
    max_text_length: int = 2000
    #: Longest accepted plan: sessions per plan.
    max_sessions: int = 200


DEFAULT_POLICY = WorkflowPolicy()
