"""Regulatory fidelity of the rules service over a real gRPC channel (issue #14): one home for every
interpretation (each D-parameter overridden by BJSV_RULES_POLICY_FILE changes behaviour), 第二十七条 for 外督员
only, the law's sanction wording and honest findings, bounded error details, one vocabulary, due dates."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
import yaml
from rules_service import RulesProcess, status_details

from bjsv.registry.v1 import registry_pb2, supervision_pb2
from bjsv.rules.v1 import rules_pb2, rules_pb2_grpc
from supervisionctl.natsd import free_port
from tests import auth_support

R = rules_pb2
DAY = "2024-06-03"
PARAMETERS = Path(__file__).resolve().parents[2] / "services/rules/rulesets/bj-2022/parameters.yaml"
ALL = [R.Attestation(item=i, attested_by="agencies/08", attested_date="2022-08-01") for i in range(1, 6)]
PLAN = R.PlanFacts(name="plans/7", institution="institutions/1100012001", district_code="08", candidate_count=50)
SESSION = R.SessionFacts(name="plans/7/sessions/1", date=DAY)


def sup(n, **kw) -> R.SupervisorFacts:
    base = dict(
        name=f"supervisors/{n}",
        person_id=f"P{n}",
        gender=R.GENDER_MALE,
        birth_date="1970-05-17",
        kind=R.SUPERVISOR_KIND_EXTERNAL,
        level=R.SUPERVISOR_LEVEL_DISTRICT,
        district_code="08",
        status=R.SUPERVISOR_STATUS_ACTIVE,
        term_start_date="2023-01-01",
        training_passed=True,
        attestations=ALL,
    )
    base.update(kw)
    return R.SupervisorFacts(**base)


@pytest.fixture(scope="module")
def service(nats_server, tmp_path_factory):
    data = tmp_path_factory.mktemp("rules-fidelity")
    policy = data / "policy.yaml"
    policy.write_text("rulesets: {}\n", encoding="utf-8")
    proc = RulesProcess(
        data_dir=data,
        port=free_port(),
        nats_url=nats_server.url,
        workers=1,
        extra_env={"BJSV_RULES_POLICY_FILE": str(policy), "BJSV_CALENDAR_FILE": ""},
    )
    proc.policy = policy
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
async def stub(service):
    async with auth_support.aio_channel(service.target) as ch:
        yield rules_pb2_grpc.RulesServiceStub(ch)


# ------------------------------------------------------------------------------------------------------------
# Item 8: every D-parameter is read from the rule set — an override changes what the service answers.


async def _param(stub, name):
    rs = (await stub.GetRuleSet(R.GetRuleSetRequest(as_of_date=DAY))).rule_set
    return json.loads(next(p.value_json for p in rs.parameters if p.name == name))


async def _record(stub, form, item, remark="发现问题"):
    r = await stub.EvaluateRecord(
        R.EvaluateRecordRequest(
            subject="dispatches/1/records/1",
            form=form,
            as_of_date=DAY,
            answers=[R.RecordAnswer(item_number=item, answer=R.ANSWER_VALUE_NO, remark=remark)],
        )
    )
    return r


async def _feedback(stub):
    return await stub.EvaluateFeedback(
        R.EvaluateFeedbackRequest(
            subject="supervisors/1",
            badge_worn=R.ANSWER_VALUE_YES,
            duties_performed=R.ANSWER_VALUE_NO,
            integrity_kept=R.ANSWER_VALUE_YES,
            as_of_date=DAY,
        )
    )


async def _eligible(stub, s, day=DAY):
    r = await stub.CheckEligibility(R.CheckEligibilityRequest(supervisor=s, as_of_date=day, purpose=R.PURPOSE_DISPATCH))
    return R.Outcome.Name(r.decision.outcome)


async def _team(stub, agency="agencies/08", members=(1, 2), candidates=50, **kw):
    plan = R.PlanFacts()
    plan.CopyFrom(PLAN)
    plan.candidate_count = candidates
    r = await stub.CheckTeam(
        R.CheckTeamRequest(
            dispatching_agency=agency,
            plan=plan,
            session=SESSION,
            supervisors=[sup(n, **kw) for n in members],
            as_of_date=DAY,
        )
    )
    return R.Outcome.Name(r.decision.outcome), r.recommended_team_size


async def _penalty(stub, trigger, history=(), kind=R.PENALTY_SUBJECT_KIND_INSTITUTION, **kw):
    r = await stub.EvaluatePenalty(
        R.EvaluatePenaltyRequest(
            subject_kind=kind,
            subject="institutions/1100012001" if kind == R.PENALTY_SUBJECT_KIND_INSTITUTION else "supervisors/1",
            history=list(history),
            trigger=R.NewTrigger(trigger=trigger, occurred_date=DAY),
            as_of_date=DAY,
            **kw,
        )
    )
    return r.recommendation


async def _draw_heavy(stub):
    """How many of 10 drawn come from the half of the pool dispatched 1,000 times recently (D7 weighting)."""
    pool = [sup(n, recent_dispatch_count=1000 if n % 2 else 0) for n in range(1, 41)]
    r = await stub.ProposeTeam(
        R.ProposeTeamRequest(
            dispatching_agency="agencies/08", plan=PLAN, session=SESSION, pool=pool, as_of_date=DAY, team_size=10,
            seed="fixed",
        )
    )  # fmt: skip
    return sum(1 for name in r.team if int(name.split("/")[1]) % 2)


async def _sample(stub):
    plans = [R.PlanFacts(name=f"plans/{i}") for i in range(10)]
    r = await stub.SampleInspectionTargets(
        R.SampleInspectionTargetsRequest(plans=plans, seed="s", as_of_date=DAY, requesting_agency="agencies/08")
    )
    return len(r.plans)


CLOSE_PRIOR = R.PriorCase(
    name="cases/1", trigger=1, decided_date="2024-04-04", sanction=R.SANCTION_ART26_CRITICISE_AND_ORDER_CORRECTION
)

# parameter → (override value, probe: what the service answers that depends on it)
PROBES = {
    # registry-side values: the rules service is their one home and serves them (GetRuleSet)
    "badge.city_serial_max": (500, lambda s: _param(s, "badge.city_serial_max")),
    "badge.district_serial_max": (50, lambda s: _param(s, "badge.district_serial_max")),
    "badge.internal_serial_max": (5000, lambda s: _param(s, "badge.internal_serial_max")),
    "badge.internal_explicit_serial_allowed": (False, lambda s: _param(s, "badge.internal_explicit_serial_allowed")),
    "period.first_half_last_day": (14, lambda s: _param(s, "period.first_half_last_day")),
    "timing.session_tolerance_minutes": (15, lambda s: _param(s, "timing.session_tolerance_minutes")),
    "appointment.max_backdate_days": (30, lambda s: _param(s, "appointment.max_backdate_days")),
    # rules-side behaviour
    "record.deadline_workdays": (
        10,
        lambda s: s.ComputeDueDate(R.ComputeDueDateRequest(supervision_end_date="2025-09-30")),
    ),
    "record.no_answer_requires_remark": (
        False,
        lambda s: _record(s, R.SUPERVISION_FORM_ON_SITE, 3, remark=""),
    ),
    "record.case_opening_items": (
        [{"form": 1, "item": 11, "triggers": [6]}],
        lambda s: _record(s, R.SUPERVISION_FORM_RECORDS_REVIEW, 12),
    ),
    "feedback.any_no_opens_review": (False, _feedback),
    "feedback.review_trigger": (8, _feedback),
    "eligibility.max_age_male": (70, lambda s: _eligible(s, sup(1, birth_date="1957-01-01"))),
    "eligibility.max_age_female": (65, lambda s: _eligible(s, sup(1, gender=R.GENDER_FEMALE, birth_date="1962-01-01"))),
    "appointment.term_years": (5, lambda s: _eligible(s, sup(1, term_start_date="2020-01-01"))),
    "team.min_external": (3, _team),
    "team.large_plan_threshold": (300, lambda s: _team(s, candidates=250)),
    "team.recommend_block_size": (50, lambda s: _team(s, candidates=450)),
    "scope.city_centre_agency": (
        "agencies/X",
        lambda s: _team(s, agency="agencies/A", level=R.SUPERVISOR_LEVEL_CITY, district_code="A"),
    ),
    "recusal.external_employer_conflict": (
        False,
        lambda s: s.CheckRecusal(
            R.CheckRecusalRequest(
                supervisor=sup(1, employer=PLAN.institution), plan=PLAN, session=SESSION, as_of_date=DAY
            )
        ),
    ),
    "penalty.repeat_window_days": (30, lambda s: _penalty(s, 1, [CLOSE_PRIOR])),
    "penalty.serious_triggers": ([4], lambda s: _penalty(s, 5)),
    "penalty.ladder.art26": (["一", "二", "三"], lambda s: _penalty(s, 1)),
    "penalty.ladder.art27": (
        ["一", "二", "三"],
        lambda s: _penalty(s, 7, kind=R.PENALTY_SUBJECT_KIND_SUPERVISOR, supervisor_kind=R.SUPERVISOR_KIND_EXTERNAL),
    ),
    "dispatch.recent_dispatch_exponent": (0.0, _draw_heavy),
    "inspection.default_sample_ratio": (0.5, _sample),
}


def _comparable(answer):
    """A probe's answer without what changes on every call (decision names, times, versions)."""
    if hasattr(answer, "DESCRIPTOR"):
        copy = type(answer)()
        copy.CopyFrom(answer)
        if copy.DESCRIPTOR.fields_by_name.get("decision"):
            d = copy.decision
            d.name, d.ruleset_version, d.input_digest = "", "", ""
            d.ClearField("evaluation_time")
        if "ruleset_version" in copy.DESCRIPTOR.fields_by_name:
            copy.ruleset_version = ""
        return copy.SerializeToString(deterministic=True)
    return answer


def test_every_parameter_has_an_override_probe_d1_to_d14():
    names = {p["name"] for p in yaml.safe_load(PARAMETERS.read_text(encoding="utf-8"))}
    assert names == set(PROBES)


@pytest.mark.parametrize("name", sorted(PROBES))
async def test_policy_file_override_changes_behaviour_d1_to_d14(stub, service, name):
    value, probe = PROBES[name]
    before = _comparable(await probe(stub))
    service.policy.write_text(yaml.safe_dump({"rulesets": {"bj-2022": {name: value}}}), encoding="utf-8")
    try:
        assert (await stub.ReloadRuleSet(R.ReloadRuleSetRequest())).changed
        after = _comparable(await probe(stub))
    finally:
        service.policy.write_text("rulesets: {}\n", encoding="utf-8")
        await stub.ReloadRuleSet(R.ReloadRuleSetRequest())
    assert before != after, f"overriding {name} changed nothing"


async def test_rule_set_declares_every_interpretation_d1_to_d16_d20_to_d22_with_article_and_meaning(stub):
    # D17–D19 (auditor, operator, personal data) are authorisation decisions: common/auth/policy.yaml is their home.
    rs = (await stub.GetRuleSet(R.GetRuleSetRequest(as_of_date=DAY))).rule_set
    assert [d.id for d in rs.interpretations] == [f"D{i}" for i in (*range(1, 17), 20, 21, 22)]
    assert all(d.article and d.meaning and d.applied_by for d in rs.interpretations)
    by_id = {d.id: d for d in rs.interpretations}
    assert "record.no_answer_requires_remark" in by_id["D11"].parameters
    assert {"feedback.any_no_opens_review", "feedback.review_trigger"} <= set(by_id["D12"].parameters)
    assert "record.case_opening_items" in by_id["D14"].parameters
    assert "period.first_half_last_day" in by_id["D10"].parameters
    assert "badge.city_serial_max" in by_id["D1"].parameters


# ------------------------------------------------------------------------------------------------------------
# D11 / D14 (附件3) and D12 (附件4)


async def test_no_answer_without_remark_is_denied_annex3_note1_d11(stub):
    r = await _record(stub, R.SUPERVISION_FORM_ON_SITE, 5, remark=" ")
    assert r.decision.outcome == R.OUTCOME_DENY
    blocking = [f for f in r.decision.findings if f.severity == R.SEVERITY_BLOCKING]
    assert [(f.rule_id, f.subject, f.article) for f in blocking] == [
        ("bj-2022.annex3.note1.remark-required", "items/5", "附件3注1")
    ]


async def test_records_review_item_12_no_opens_art26_case_d14(stub):
    r = await _record(stub, R.SUPERVISION_FORM_RECORDS_REVIEW, 12)
    assert r.decision.outcome == R.OUTCOME_ADVISE
    assert [(c.item_number, list(c.triggers)) for c in r.case_openings] == [
        (12, [R.PENALTY_TRIGGER_ART26_REFUSE_INFORMATION, R.PENALTY_TRIGGER_ART26_OBSTRUCT_REPORTING])
    ]
    on_site = await _record(stub, R.SUPERVISION_FORM_ON_SITE, 12)
    assert not on_site.case_openings  # D14 names the records-review form only
    replay = await stub.ReplayDecision(R.ReplayDecisionRequest(name=r.decision.name))  # logged like any decision (D15)
    assert replay.identical and replay.original.kind == R.DECISION_KIND_RECORD


async def test_record_item_outside_the_form_is_invalid_annex3(stub):
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await _record(stub, R.SUPERVISION_FORM_RECORDS_REVIEW, 17)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert status_details(e.value)["BadRequest"].field_violations[0].field == "answers[0].item_number"


async def test_feedback_no_opens_art27_review_under_neglect_d12(stub):
    r = await _feedback(stub)
    assert r.opens_review and r.review_trigger == R.PENALTY_TRIGGER_ART27_NEGLECT_OF_DUTY
    assert [f.rule_id for f in r.decision.findings] == [
        "bj-2022.annex4.duties-not-performed",
        "bj-2022.art27.feedback-opens-review",
    ]
    all_yes = await stub.EvaluateFeedback(
        R.EvaluateFeedbackRequest(
            subject="supervisors/1", badge_worn=1, duties_performed=1, integrity_kept=1, as_of_date=DAY
        )
    )
    assert all_yes.decision.outcome == R.OUTCOME_ALLOW and not all_yes.opens_review


# ------------------------------------------------------------------------------------------------------------
# Items 5 and 6: 第二十七条 is for 外督员; the law's words; only the findings that decided it


async def test_art27_case_against_internal_supervisor_is_refused_art8(stub):
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await _penalty(stub, 7, kind=R.PENALTY_SUBJECT_KIND_SUPERVISOR, supervisor_kind=R.SUPERVISOR_KIND_INTERNAL)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    d = status_details(e.value)
    assert d["ErrorInfo"].reason == "PENALTY_NOT_APPLICABLE"
    (v,) = d["PreconditionFailure"].violations
    assert v.type == "bj-2022.art27.external-supervisors-only" and v.subject == "supervisors/1"
    assert "第二十七条" in v.description and "第八条" in v.description and "内督员" in v.description


async def test_private_gain_recommends_revocation_in_the_laws_words_with_only_its_finding_art27(stub):
    r = await stub.EvaluatePenalty(
        R.EvaluatePenaltyRequest(
            subject_kind=R.PENALTY_SUBJECT_KIND_SUPERVISOR,
            supervisor_kind=R.SUPERVISOR_KIND_EXTERNAL,
            subject="supervisors/1",
            trigger=R.NewTrigger(trigger=R.PENALTY_TRIGGER_ART27_PRIVATE_GAIN, occurred_date=DAY),
            as_of_date=DAY,
        )
    )
    assert r.recommendation.sanction_text == "取消其外督员资格"
    assert r.recommendation.sanction == R.SANCTION_ART27_REVOCATION
    assert [f.rule_id for f in r.decision.findings] == ["bj-2022.art27.private-gain"]


async def test_rung2_recommendation_has_no_first_offence_finding_art26(stub):
    r = await stub.EvaluatePenalty(
        R.EvaluatePenaltyRequest(
            subject_kind=R.PENALTY_SUBJECT_KIND_INSTITUTION,
            subject="institutions/1100012001",
            trigger=R.NewTrigger(trigger=R.PENALTY_TRIGGER_ART26_FALSIFICATION, occurred_date=DAY),
            as_of_date=DAY,
        )
    )
    assert r.recommendation.rung == 2 and r.recommendation.immediate_report
    assert [f.rule_id for f in r.decision.findings] == ["bj-2022.art26.serious-trigger"]


# ------------------------------------------------------------------------------------------------------------
# Item 7: refusals reach the caller whatever their number


async def test_thousands_of_violations_reach_the_caller_as_a_bounded_invalid_argument(stub):
    bad = [R.CheckEligibilityRequest(supervisor=R.SupervisorFacts(), as_of_date="x") for _ in range(3000)]
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.BatchCheckEligibility(R.BatchCheckEligibilityRequest(requests=bad))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # not RESOURCE_EXHAUSTED "Stream removed"
    d = status_details(e.value)
    total, shown = int(d["ErrorInfo"].metadata["violations_total"]), int(d["ErrorInfo"].metadata["violations_shown"])
    assert total >= 3000 * 5 and 0 < shown == len(d["BadRequest"].field_violations) < total
    assert d["BadRequest"].field_violations[0].field.startswith("requests[0].")
    assert f"共{total}项" in e.value.details()


async def test_team_refused_for_hundreds_of_members_returns_every_finding_art16_art20(stub):
    members = [sup(n, district_code="05", person_id=f"E{n}") for n in range(300)]  # outside district 08
    r = await stub.CheckTeam(
        R.CheckTeamRequest(
            dispatching_agency="agencies/08", plan=PLAN, session=SESSION, supervisors=members, as_of_date=DAY
        )
    )
    assert r.decision.outcome == R.OUTCOME_DENY
    assert len(r.decision.findings) >= 600  # scope (第二十条) and recusal (第二十条, D9) for each of 300
    logged = await stub.GetDecision(R.GetDecisionRequest(name=r.decision.name))
    assert len(logged.decision.findings) == len(r.decision.findings)


# ------------------------------------------------------------------------------------------------------------
# Item 11: one vocabulary across the protos


def test_attestation_items_have_the_same_names_and_numbers_in_rules_and_registry_art9():
    rules = {v.name: v.number for v in R.AttestationItem.DESCRIPTOR.values}
    registry = {v.name: v.number for v in registry_pb2.AttestationItem.DESCRIPTOR.values}
    assert rules == registry


def test_penalty_ladder_has_one_numbering_across_protos_art26_art27():
    rung = supervision_pb2.PenaltyRung
    assert {
        R.SANCTION_NO_ACTION: rung.Value("PENALTY_RUNG_NO_ACTION"),
        R.SANCTION_ART26_CRITICISE_AND_ORDER_CORRECTION: rung.Value("PENALTY_RUNG_CRITICISM_AND_CORRECTION"),
        R.SANCTION_ART26_DISCIPLINE_RECOMMENDATION: rung.Value("PENALTY_RUNG_DISCIPLINARY_RECOMMENDATION"),
        R.SANCTION_ART26_DISQUALIFICATION: rung.Value("PENALTY_RUNG_QUALIFICATION_REVOKED"),
        R.SANCTION_ART27_CRITICISM_EDUCATION: rung.Value("PENALTY_RUNG_SUPERVISOR_CRITICISM"),
        R.SANCTION_ART27_SUSPENSION: rung.Value("PENALTY_RUNG_SUPERVISOR_SUSPENSION"),
        R.SANCTION_ART27_REVOCATION: rung.Value("PENALTY_RUNG_SUPERVISOR_REVOCATION"),
    } == {n: n for n in range(1, 8)}
    forms = {v.name: v.number for v in R.SupervisionForm.DESCRIPTOR.values}
    assert forms == {v.name: v.number for v in supervision_pb2.SupervisionForm.DESCRIPTOR.values}
    answers = {v.name: v.number for v in R.AnswerValue.DESCRIPTOR.values}
    assert answers == {v.name: v.number for v in supervision_pb2.AnswerValue.DESCRIPTOR.values}


# ------------------------------------------------------------------------------------------------------------
# Item 12: ComputeDueDate (D5)


async def test_due_date_counts_five_statutory_working_days_across_national_day_art23_d5(stub):
    r = await stub.ComputeDueDate(R.ComputeDueDateRequest(supervision_end_date="2025-09-30"))
    assert (r.due_date, r.working_days, r.ruleset_id) == ("2025-10-14", 5, "bj-2022")
    assert "第二十三条" in r.article and "D5" in r.article


async def test_due_date_in_a_year_without_calendar_is_failed_precondition_art23_d5(stub):
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.ComputeDueDate(R.ComputeDueDateRequest(supervision_end_date="2031-06-30"))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    d = status_details(e.value)
    assert d["ErrorInfo"].reason == "CALENDAR_NOT_COVERED" and d["ErrorInfo"].metadata["year"] == "2031"


async def test_due_date_needs_a_valid_end_date(stub):
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.ComputeDueDate(R.ComputeDueDateRequest(supervision_end_date="2025-02-30"))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert status_details(e.value)["BadRequest"].field_violations[0].field == "supervision_end_date"
