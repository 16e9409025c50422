"""Annex 4 feedback (《北京市技能人才评价外督员情况反馈表》, 第二十三条) on one external supervisor: validation
(D12) and the description of the 第二十七条 review it opens. Whether the answers open a review, and under which
trigger, is the rules service's decision (EvaluateFeedback; D12 `feedback.any_no_opens_review`,
`feedback.review_trigger`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from common.clock import SHANGHAI
from services.registry.domain.problems import Problem, ProblemsError
from services.registry.domain.workflow.model import Answer
from services.registry.domain.workflow.policy import DEFAULT_POLICY, WorkflowPolicy

#: The three structured questions of D12 with their Chinese wording and the article behind each.
QUESTIONS: dict[str, tuple[str, str]] = {
    "badge_worn": ("未佩戴质量督导员证卡", "第十七条"),
    "duties_performed": ("未认真履行督导职责", "第二十七条"),
    "integrity_kept": ("未遵守廉洁纪律", "第十七条、第二十七条"),
}


@dataclass(frozen=True)
class FeedbackAnswers:
    badge_worn: Answer | None
    duties_performed: Answer | None
    integrity_kept: Answer | None

    def negatives(self) -> list[str]:
        return [q for q in QUESTIONS if getattr(self, q) is Answer.NO]


def validate_feedback(
    answers: FeedbackAnswers,
    *,
    entry: dt.datetime | None,
    exit: dt.datetime | None,
    allowed_days: list[dt.date],
    comments: str,
    signed_by: str,
    policy: WorkflowPolicy = DEFAULT_POLICY,
) -> None:
    """D12: every question answered; exit after entry, both on one Beijing day that is a supervised day."""
    problems: list[Problem] = [
        Problem(f"feedback.{q}", "ANSWER_REQUIRED", "反馈表各项须回答“是”或“否”")
        for q in QUESTIONS
        if getattr(answers, q) is None
    ]
    if entry is None or exit is None:
        problems.append(Problem("feedback.entry_time", "ENTRY_EXIT_REQUIRED", "请填写外督员进场时间和离场时间"))
    else:
        entry_day, exit_day = entry.astimezone(SHANGHAI).date(), exit.astimezone(SHANGHAI).date()
        if exit <= entry:
            problems.append(
                Problem("feedback.exit_time", "EXIT_NOT_AFTER_ENTRY", "外督员离场时间应晚于进场时间（D12）")
            )
        elif entry_day != exit_day:
            problems.append(
                Problem("feedback.exit_time", "EXIT_ON_ANOTHER_DAY", "外督员进场和离场应在同一天（北京时间）")
            )
        if entry_day not in allowed_days:
            days = "、".join(d.isoformat() for d in allowed_days)
            problems.append(
                Problem(
                    "feedback.entry_time",
                    "ENTRY_OUTSIDE_SUPERVISION",
                    f"进场时间{entry_day.isoformat()}不在本次督导的日期内（{days}）",
                )
            )
    if len(comments) > policy.max_text_length:
        problems.append(
            Problem("feedback.comments", "COMMENTS_TOO_LONG", f"工作反馈情况不能超过{policy.max_text_length}字")
        )
    if not signed_by.strip():
        problems.append(Problem("feedback.signed_by", "SIGNATURE_REQUIRED", "反馈表须由填报单位签字"))
    if problems:
        raise ProblemsError(problems)


def review_description(answers: FeedbackAnswers, supervisor_name: str, comments: str) -> str:
    items = "；".join(f"{QUESTIONS[q][0]}（{QUESTIONS[q][1]}）" for q in answers.negatives())
    text = f"评价机构反馈（附件4）：外督员{supervisor_name}{items}。"
    if comments.strip():
        text += f"工作反馈情况：{comments.strip()}。"
    return text + "依第二十七条进行审查（D12）。"
