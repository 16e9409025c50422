"""Case ladder state machine (第二十六条, 第二十七条, D13), plan validation, half-month report figures (D10)."""

from __future__ import annotations

import datetime as dt

import pytest

from common.clock import SHANGHAI
from common.errors import FailedPrecondition
from services.registry.domain.problems import ProblemsError
from services.registry.domain.workflow import cases
from services.registry.domain.workflow.model import (
    CaseState,
    CaseSubjectKind,
    CaseTrigger,
    CertificationMode,
    PenaltyRung,
    PlanIn,
    PlanSessionIn,
    SessionPersonIn,
    SupervisionForm,
    certification_mode_text,
)
from services.registry.domain.workflow.periods import period_of
from services.registry.domain.workflow.plans import validate_plan
from services.registry.domain.workflow.reports import CaseFact, DispatchFact, FeedbackFact, RecordFact, aggregate

D = dt.date
INST = CaseSubjectKind.INSTITUTION
SUP = CaseSubjectKind.SUPERVISOR
TODAY = D(2026, 3, 10)


def test_correction_order_needs_a_future_deadline_art26():
    with pytest.raises(ProblemsError) as e:
        cases.decide("cases/1", CaseState.OPEN, INST, PenaltyRung.CRITICISM_AND_CORRECTION, None, "市中心 王", TODAY)
    assert e.value.problems[0].reason == "CORRECTION_DEADLINE_REQUIRED"
    state = cases.decide(
        "cases/1", CaseState.OPEN, INST, PenaltyRung.CRITICISM_AND_CORRECTION, D(2026, 3, 20), "市中心 王", TODAY
    )
    assert state is CaseState.AWAITING_CORRECTION


def test_rung_must_be_on_the_subjects_ladder_art26_art27():
    with pytest.raises(ProblemsError) as e:
        cases.decide("cases/1", CaseState.OPEN, SUP, PenaltyRung.CRITICISM_AND_CORRECTION, D(2026, 3, 20), "王", TODAY)
    assert {p.reason for p in e.value.problems} == {"RUNG_NOT_ON_LADDER"}
    assert (
        cases.decide("cases/1", CaseState.OPEN, SUP, PenaltyRung.SUPERVISOR_CRITICISM, None, "王", TODAY)
        is CaseState.CLOSED
    )


def test_decided_case_cannot_be_decided_again():
    with pytest.raises(FailedPrecondition) as e:
        cases.decide("cases/1", CaseState.AWAITING_CORRECTION, INST, PenaltyRung.NO_ACTION, None, "王", TODAY)
    assert e.value.reason == "CASE_NOT_AWAITING_DECISION"


def test_correction_closes_the_case_before_the_deadline_only():
    assert (
        cases.record_correction("cases/1", CaseState.AWAITING_CORRECTION, D(2026, 3, 20), D(2026, 3, 20), "已整改")
        is CaseState.CLOSED
    )
    with pytest.raises(FailedPrecondition) as e:
        cases.record_correction("cases/1", CaseState.AWAITING_CORRECTION, D(2026, 3, 20), D(2026, 3, 21), "已整改")
    assert e.value.reason == "CORRECTION_DEADLINE_PASSED"


def test_deadline_passed_uncorrected_is_due_for_escalation_refuses_to_correct_art26_d13():
    assert not cases.due_for_escalation(CaseState.AWAITING_CORRECTION, D(2026, 3, 20), D(2026, 3, 20))
    assert cases.due_for_escalation(CaseState.AWAITING_CORRECTION, D(2026, 3, 20), D(2026, 3, 21))
    assert not cases.due_for_escalation(CaseState.CLOSED, D(2026, 3, 20), D(2026, 3, 21))


def test_open_case_validation_matches_trigger_to_subject():
    with pytest.raises(ProblemsError) as e:
        cases.validate_open(INST, "institutions/1100012001", [CaseTrigger.SUPERVISOR_DUTY_FAILURE], "x")
    assert e.value.problems[0].reason == "TRIGGER_SUBJECT_MISMATCH"
    cases.validate_open(SUP, "supervisors/3", [CaseTrigger.SUPERVISOR_PRIVATE_GAIN], "收受财物")


def _plan(**kw) -> PlanIn:
    start = dt.datetime(2026, 3, 10, 9, tzinfo=SHANGHAI)
    base = dict(
        institution="institutions/1100012001",
        title="2026年第一期电工四级认定",
        modes=[CertificationMode.THEORY_EXAM, CertificationMode.SKILL_OPERATION],
        other_mode_text="",
        district="08",
        candidate_count=250,
        occupation="电工",
        sessions=[
            PlanSessionIn(
                "S1", start, start + dt.timedelta(hours=3), examiners=[SessionPersonIn("钱七", "11010519491231002X")]
            )
        ],
    )
    base.update(kw)
    return PlanIn(**base)


def test_valid_plan_and_mode_text():
    validate_plan(_plan())
    assert (
        certification_mode_text([CertificationMode.THEORY_EXAM, CertificationMode.SKILL_OPERATION])
        == "理论知识考试、技能操作考核"
    )


def test_plan_problems_are_reported_together():
    start = dt.datetime(2026, 3, 10, 9, tzinfo=SHANGHAI)
    bad = _plan(
        district="A",
        candidate_count=0,
        modes=[],
        sessions=[
            PlanSessionIn("S1", start, start - dt.timedelta(hours=1)),
            PlanSessionIn(
                "S1", start, start + dt.timedelta(hours=1), examiners=[SessionPersonIn("钱七", "110105194912310021")]
            ),
        ],
    )
    with pytest.raises(ProblemsError) as e:
        validate_plan(bad)
    assert {p.reason for p in e.value.problems} == {
        "DISTRICT_UNKNOWN",
        "CANDIDATE_COUNT_INVALID",
        "CERTIFICATION_MODE_REQUIRED",
        "SESSION_END_BEFORE_START",
        "SESSION_ID_DUPLICATE",
        "ID_NUMBER_CHECK_DIGIT",
    }


def test_district_report_figures_for_one_half_month_art24_d10():
    period = period_of(D(2026, 3, 5), 15)
    review, onsite = SupervisionForm.RECORDS_REVIEW, SupervisionForm.ON_SITE
    figs = aggregate(
        period,
        records=[
            RecordFact("records/1", "08", review, D(2026, 3, 3), False, (12,)),
            RecordFact("records/2", "08", onsite, D(2026, 3, 14), True, (12, 17)),
            RecordFact("records/3", "08", review, D(2026, 3, 16), False, (12,)),  # next period
            RecordFact("records/4", "05", review, D(2026, 3, 4), False, (12, 3)),
        ],
        feedback=[FeedbackFact("08", D(2026, 3, 4), True), FeedbackFact("08", D(2026, 3, 4), False)],
        cases=[
            CaseFact("cases/1", "08", D(2026, 3, 3), (D(2026, 3, 5),)),
            CaseFact("cases/2", "08", D(2026, 2, 1), (D(2026, 3, 1),)),
        ],
        dispatches=[DispatchFact("08", D(2026, 3, 1)), DispatchFact("08", D(2026, 2, 28))],
    )
    assert [f.district for f in figs] == ["05", "08"]
    hd = figs[1]
    assert hd.district_name == "海淀区"
    assert hd.supervisions_by_form == {onsite: 1, review: 1}
    assert [(f, n, c) for f, n, _, c in hd.no_counts] == [(onsite, 12, 1), (onsite, 17, 1), (review, 12, 1)]
    assert (hd.late_records, hd.late_feedback, hd.feedback_count) == (1, 1, 2)
    assert (hd.cases_opened, hd.cases_decided, hd.dispatches_created) == (1, 2, 1)
    assert hd.records == ["records/1", "records/2"]
    assert len(aggregate(period, records=[], feedback=[], cases=[], dispatches=[], include_empty=True)) == 17
