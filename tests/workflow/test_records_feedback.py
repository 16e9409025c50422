"""Annex 3 records (第二十三条) and Annex 4 feedback: the form's structure, and findings built from the rules
service's D14 case openings. D11 (remark for 否), D12 (the review trigger) and D14 (which items open a case) are
decided by the rules service and tested through the API (test_supervision_api.py, and with overrides in
tests/registry/test_registry_policy_parameters.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from common.clock import SHANGHAI
from services.registry.domain.problems import ProblemsError
from services.registry.domain.workflow.feedback import (
    FeedbackAnswers,
    review_description,
    validate_feedback,
)
from services.registry.domain.workflow.model import Answer, CaseTrigger, ItemAnswer, SupervisionForm
from services.registry.domain.workflow.records import case_description, derive_findings, validate_record

ON_SITE, REVIEW = SupervisionForm.ON_SITE, SupervisionForm.RECORDS_REVIEW
D = dt.date


def all_yes(n: int) -> list[ItemAnswer]:
    return [ItemAnswer(i, Answer.YES) for i in range(1, n + 1)]


def check(form, answers, **kw):
    args = dict(
        problems_text="",
        signatures=["张三", "李四"],
        sign_date=D(2026, 3, 10),
        supervision_start=D(2026, 3, 10),
        today=D(2026, 3, 11),
    )
    args.update(kw)
    return validate_record(form, answers, **args)


def reasons(exc: pytest.ExceptionInfo) -> set[str]:
    return {p.reason for p in exc.value.problems}


def test_on_site_record_has_17_items_and_records_review_16_annex3():
    assert len(check(ON_SITE, all_yes(17))) == 17
    assert len(check(REVIEW, all_yes(16))) == 16
    with pytest.raises(ProblemsError) as e:
        check(REVIEW, all_yes(17))
    assert reasons(e) == {"ITEM_NUMBER_UNKNOWN"}


def test_every_item_must_be_ticked_annex3_note1():
    answers = [*all_yes(17)[:-2], ItemAnswer(16, None)]
    with pytest.raises(ProblemsError) as e:
        check(ON_SITE, answers)
    assert reasons(e) == {"ITEM_UNANSWERED", "ITEMS_MISSING"}
    assert any("缺少第17项" in p.description for p in e.value.problems)


def test_a_no_answer_without_remark_is_left_to_the_rules_service_d11():
    answers = all_yes(16)
    answers[11] = ItemAnswer(12, Answer.NO, "  ")
    assert check(REVIEW, answers)[11].answer is Answer.NO  # EvaluateRecord decides whether it is refused


def test_signature_and_sign_date_are_required_and_plausible():
    with pytest.raises(ProblemsError) as e:
        check(ON_SITE, all_yes(17), signatures=[" "], sign_date=D(2026, 3, 12))
    assert reasons(e) == {"SIGNATURE_REQUIRED", "SIGN_DATE_IN_FUTURE"}


ITEM_12_OPENS = {12: (CaseTrigger.REFUSED_INFORMATION, CaseTrigger.OBSTRUCTED_REPORTING)}  # as EvaluateRecord says


def test_a_finding_per_no_with_the_case_triggers_the_rules_service_gave_art26_d14():
    answers = all_yes(16)
    answers[11] = ItemAnswer(12, Answer.NO, "机构拒绝提供考场录像")
    answers[2] = ItemAnswer(3, Answer.NO, "评价方式与实施方案不一致")
    findings = derive_findings(REVIEW, check(REVIEW, answers), ITEM_12_OPENS)
    assert [(f.item_number, f.item_text) for f in findings] == [
        (3, "理论知识考试、技能操作考核、综合评审等评价方式与实施方案一致"),
        (12, "被督导单位配合外督员人员工作"),
    ]
    assert findings[0].triggers == ()
    assert findings[1].triggers == (CaseTrigger.REFUSED_INFORMATION, CaseTrigger.OBSTRUCTED_REPORTING)
    text = case_description(REVIEW, findings[1])
    assert "第12项“被督导单位配合外督员人员工作”为“否”：机构拒绝提供考场录像" in text
    assert "第二十六条（一）" in text and "第二十六条（二）" in text


def t(h: int, m: int = 0, day: int = 10) -> dt.datetime:
    return dt.datetime(2026, 3, day, h, m, tzinfo=SHANGHAI)


YES3 = FeedbackAnswers(Answer.YES, Answer.YES, Answer.YES)


def test_feedback_exit_must_be_after_entry_d12():
    with pytest.raises(ProblemsError) as e:
        validate_feedback(YES3, entry=t(12), exit=t(9), allowed_days=[D(2026, 3, 10)], comments="", signed_by="王")
    assert reasons(e) == {"EXIT_NOT_AFTER_ENTRY"}


def test_feedback_entry_must_be_on_a_supervised_day():
    with pytest.raises(ProblemsError) as e:
        validate_feedback(
            YES3, entry=t(8, day=11), exit=t(9, day=11), allowed_days=[D(2026, 3, 10)], comments="", signed_by="王"
        )
    assert reasons(e) == {"ENTRY_OUTSIDE_SUPERVISION"}


def test_feedback_questions_must_all_be_answered_d12():
    with pytest.raises(ProblemsError) as e:
        validate_feedback(
            FeedbackAnswers(None, Answer.YES, None),
            entry=t(8),
            exit=t(9),
            allowed_days=[D(2026, 3, 10)],
            comments="",
            signed_by="",
        )
    assert reasons(e) == {"ANSWER_REQUIRED", "SIGNATURE_REQUIRED"}


def test_the_review_description_names_the_negative_answers_art27_d12():
    answers = FeedbackAnswers(Answer.NO, Answer.YES, Answer.YES)
    validate_feedback(answers, entry=t(8), exit=t(11), allowed_days=[D(2026, 3, 10)], comments="", signed_by="王")
    text = review_description(answers, "赵六", "进场时未佩戴证卡")
    assert "外督员赵六未佩戴质量督导员证卡（第十七条）" in text and "第二十七条" in text
