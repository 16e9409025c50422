"""Annex 3 supervision records (《北京市职业技能等级认定督导记录表》, 第二十三条): the form's structure per form and
the findings derived from 否 answers. Whether a 否 needs its remark (D11) and which items open a case (D14) are
the rules service's decisions (EvaluateRecord); this module keeps no copy of them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from services.registry.domain.problems import Problem, ProblemsError
from services.registry.domain.workflow import checklists
from services.registry.domain.workflow.model import Answer, CaseTrigger, Finding, ItemAnswer, SupervisionForm
from services.registry.domain.workflow.policy import DEFAULT_POLICY, WorkflowPolicy


def _answer_problems(
    form: SupervisionForm, answers: list[ItemAnswer], expected: Sequence[int], policy: WorkflowPolicy
) -> tuple[list[Problem], dict[int, ItemAnswer]]:
    """Each answer on its own: a known item, once, ticked (附件3 注1)."""
    problems: list[Problem] = []
    by_number: dict[int, ItemAnswer] = {}
    for i, a in enumerate(answers):
        f = f"record.answers[{i}]"
        if a.item_number not in expected:
            problems.append(
                Problem(
                    f"{f}.item_number",
                    "ITEM_NUMBER_UNKNOWN",
                    f"{form.label}督导记录表没有第{a.item_number}项（共{len(expected)}项）",
                )
            )
            continue
        if a.item_number in by_number:
            problems.append(Problem(f"{f}.item_number", "ITEM_DUPLICATE", f"第{a.item_number}项重复填写"))
            continue
        by_number[a.item_number] = a
        if a.answer is None:
            problems.append(
                Problem(
                    f"{f}.answer",
                    "ITEM_UNANSWERED",
                    f"第{a.item_number}项未勾选“是”或“否”（附件3 注1：所有项目均为勾选项）",
                )
            )
        if len(a.remark) > policy.max_text_length:
            problems.append(Problem(f"{f}.remark", "REMARK_TOO_LONG", f"备注不能超过{policy.max_text_length}字"))
    return problems, by_number


def validate_record(
    form: SupervisionForm,
    answers: list[ItemAnswer],
    *,
    problems_text: str,
    signatures: list[str],
    sign_date: dt.date | None,
    supervision_start: dt.date,
    today: dt.date,
    policy: WorkflowPolicy = DEFAULT_POLICY,
) -> list[ItemAnswer]:
    """Check a record and return its answers ordered by item number; raise ProblemsError otherwise.

    附件3 注1: every item is ticked (是 or 否); the remark a 否 needs (D11) is checked by EvaluateRecord.
    """
    expected = checklists.item_numbers(form)
    problems, by_number = _answer_problems(form, answers, expected, policy)
    missing = [n for n in expected if n not in by_number]
    if missing:
        problems.append(
            Problem(
                "record.answers",
                "ITEMS_MISSING",
                f"{form.label}督导记录表共{len(expected)}项，缺少第{'、'.join(map(str, missing))}项"
                "（附件3 注1：所有项目均为勾选项）",
            )
        )
    if len(problems_text) > policy.max_text_length:
        problems.append(Problem("record.problems", "PROBLEMS_TOO_LONG", f"存在问题不能超过{policy.max_text_length}字"))
    if not [s for s in signatures if s.strip()]:
        problems.append(Problem("record.supervisor_signatures", "SIGNATURE_REQUIRED", "督导记录表须有外督员签名"))
    if sign_date is None:
        problems.append(Problem("record.sign_date", "SIGN_DATE_REQUIRED", "请填写签名日期（年 月 日）"))
    elif sign_date > today:
        problems.append(Problem("record.sign_date", "SIGN_DATE_IN_FUTURE", "签名日期不能晚于今天"))
    elif sign_date < supervision_start:
        problems.append(Problem("record.sign_date", "SIGN_DATE_BEFORE_SUPERVISION", "签名日期不能早于督导开始日期"))
    if problems:
        raise ProblemsError(problems)
    return [by_number[n] for n in expected]


def derive_findings(
    form: SupervisionForm, answers: list[ItemAnswer], openings: dict[int, tuple[CaseTrigger, ...]]
) -> list[Finding]:
    """One finding per 否 item, citing its number and text; `openings` (EvaluateRecord's `case_openings`,
    D14) gives the 第二十六条 triggers of the items that open a case."""
    return [
        Finding(
            item_number=a.item_number,
            item_text=checklists.item_text(form, a.item_number),
            remark=a.remark.strip(),
            triggers=openings.get(a.item_number, ()),
        )
        for a in answers
        if a.answer is Answer.NO
    ]


def case_description(form: SupervisionForm, finding: Finding) -> str:
    """Chinese description of a case opened from a finding (D14)."""
    citations = "；".join(t.citation for t in finding.triggers)
    return (
        f"{form.label}督导记录表第{finding.item_number}项“{finding.item_text}”为“否”：{finding.remark}。"
        f"涉嫌{citations}，立案审查（D14）。"
    )
