"""Derive the flat, numeric fact messages the engine evaluates (one message = one single-pattern match).

All joins, counts and date arithmetic happen here in Python (library-notes §1.8): the engine never
joins, never counts and never sees a date string. Every builder returns (facts, derived) where `derived`
are human-readable values worth showing in the decision (e.g. the age).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from common.ages import age_on, anniversary
from services.rules.domain import model as m
from services.rules.domain.dates import to_num
from services.rules.domain.ruleset import AS_OF, RuleSet


def eligibility_facts(rs: RuleSet, item: m.EligibilityInput) -> tuple[dict[str, Any], dict[str, str]]:
    sup, day = item.supervisor, item.as_of
    age = age_on(sup.birth_date, day)
    has_term = sup.term_start is not None
    before_start = after_end = 0
    term_end = None
    if sup.term_start is not None:
        # D4: a term without explicit end runs term_years; the end day is the day before the anniversary.
        term_years = int(rs.param("appointment.term_years"))
        term_end = sup.term_end or anniversary(sup.term_start, term_years) - dt.timedelta(1)
        before_start = (sup.term_start - day).days
        after_end = (day - term_end).days
    att = sup.attestations
    facts = {
        AS_OF: to_num(day),
        "purpose": item.purpose,
        "gender": sup.gender,
        "age_years": age,
        "attest_party_line": int(m.PARTY_LINE in att),
        "attest_policy_knowledge": int(m.POLICY_KNOWLEDGE in att),
        "attest_integrity": int(m.INTEGRITY in att),
        "attest_ability": int(m.ABILITY in att),
        "attest_health": int(m.HEALTH in att),
        "training_passed": int(sup.training_passed),
        "status": sup.status,
        "has_term": int(has_term),
        "term_days_before_start": before_start,
        "term_days_after_end": after_end,
    }
    derived = {"age_years": str(age), "purpose": m.PURPOSE_NAMES.get(item.purpose, str(item.purpose))}
    if term_end is not None:
        derived["term_end_date"] = term_end.isoformat()
    return facts, derived


def recusal_facts(rs: RuleSet, sup: m.Supervisor, plan: m.Plan, session: m.Session, day: dt.date) -> dict[str, Any]:
    external = sup.kind == m.EXTERNAL
    employer_rule = bool(rs.param("recusal.external_employer_conflict"))
    inst = plan.institution
    own = {inst, plan.name, session.name} - {""}
    return {
        AS_OF: to_num(day),
        "is_session_examiner": int(bool(sup.person_id) and sup.person_id in session.examiner_person_ids),
        "employed_by_institution": int(external and employer_rule and bool(inst) and sup.employer == inst),
        "affiliated_with_institution": int(external and employer_rule and bool(inst) and inst in sup.affiliations),
        "matching_conflicts": sum(
            1
            for c in sup.conflicts
            if c.counterpart
            and (
                c.counterpart in own
                or c.counterpart in session.examiner_person_ids
                or c.counterpart in session.candidate_person_ids
            )
        ),
        "internal_other_institution": int(sup.kind == m.INTERNAL and sup.institution != inst),
        "district_outside": int(external and sup.level == m.DISTRICT and sup.district_code != plan.district_code),
    }


def agency_kind(rs: RuleSet, agency: str) -> tuple[int, str]:
    """(kind, district code or institution) of a dispatching organisation (D8)."""
    if agency == rs.param("scope.city_centre_agency"):
        return m.AGENCY_CITY_CENTRE, ""
    if agency.startswith("agencies/"):
        return m.AGENCY_DISTRICT, agency.split("/", 1)[1]
    return m.AGENCY_INSTITUTION, agency


def recommended_team_size(rs: RuleSet, candidate_count: int) -> int:
    """D7: the minimum plus one per further started block above the threshold (200 → 2, 201 → 3, 401 → 4)."""
    base = int(rs.param("team.min_external"))
    over = candidate_count - int(rs.param("team.large_plan_threshold"))
    return base + (math.ceil(over / int(rs.param("team.recommend_block_size"))) if over > 0 else 0)


def member_facts(rs: RuleSet, agency: str, sup: m.Supervisor, day: dt.date) -> dict[str, Any]:
    kind, where = agency_kind(rs, agency)
    return {
        AS_OF: to_num(day),
        "agency_kind": kind,
        "member_kind": sup.kind,
        "member_level": sup.level,
        "member_in_agency_district": int(kind != m.AGENCY_DISTRICT or sup.district_code == where),
        "member_of_institution": int(kind != m.AGENCY_INSTITUTION or sup.institution == where),
    }


def team_facts(rs: RuleSet, item: m.TeamInput, members: list[m.Supervisor]) -> tuple[dict[str, Any], dict[str, str]]:
    kind, where = agency_kind(rs, item.agency)
    external = sum(1 for s in members if s.kind == m.EXTERNAL)
    recommended = recommended_team_size(rs, item.plan.candidate_count)
    counted = external if kind != m.AGENCY_INSTITUTION else len(members)
    facts = {
        AS_OF: to_num(item.as_of),
        "agency_kind": kind,
        "external_count": external,
        "member_count": len(members),
        "candidate_count": item.plan.candidate_count,
        "recommended_shortfall": recommended - counted,
        "plan_in_agency_district": int(kind != m.AGENCY_DISTRICT or item.plan.district_code == where),
        "plan_of_institution": int(kind != m.AGENCY_INSTITUTION or item.plan.institution == where),
    }
    derived = {
        "recommended_team_size": str(recommended),
        "member_count": str(len(members)),
        "external_count": str(external),
    }
    return facts, derived


def penalty_facts(rs: RuleSet, item: m.PenaltyInput) -> tuple[dict[str, Any], dict[str, str]]:
    window = int(rs.param("penalty.repeat_window_days"))
    start = item.occurred - dt.timedelta(days=window)
    in_window = [c for c in item.history if start <= c.decided <= item.occurred]
    uncorrected = [
        c
        for c in item.history
        if c.correction_deadline is not None
        and c.correction_deadline < item.as_of
        and (c.corrected is None or c.corrected > c.correction_deadline)
    ]
    serious_trigger = item.subject_kind == m.SUBJECT_INSTITUTION and item.trigger in set(
        rs.param("penalty.serious_triggers")
    )
    facts = {
        AS_OF: to_num(item.as_of),
        "subject_kind": item.subject_kind,
        "trigger": item.trigger,
        "serious_trigger": int(serious_trigger),
        "assessed_serious": int(item.serious),
        "prior_in_window": len(in_window),
        "prior_max_rung_in_window": max((c.rung for c in in_window), default=0),
        "uncorrected_orders": len(uncorrected),
        "supervisor_kind": item.supervisor_kind if item.subject_kind == m.SUBJECT_SUPERVISOR else 0,
    }
    derived = {
        "window_start": start.isoformat(),
        "prior_cases_in_window": ",".join(c.name for c in in_window),
        "uncorrected_orders": ",".join(c.name for c in uncorrected),
    }
    return facts, derived


def case_opening_items(rs: RuleSet) -> dict[tuple[int, int], tuple[int, ...]]:
    """D14 `record.case_opening_items` as {(form, item): 第二十六条 triggers}."""
    return {(e["form"], e["item"]): tuple(e["triggers"]) for e in rs.param("record.case_opening_items")}


def record_item_facts(rs: RuleSet, item: m.RecordInput, answer: m.RecordAnswer) -> dict[str, Any]:
    """One answered Annex 3 item; D11 and D14 come from the rule set's parameters."""
    return {
        AS_OF: to_num(item.as_of),
        "form": item.form,
        "item_number": answer.item_number,
        "answer_no": int(answer.answer == m.NO),
        "remark_empty": int(not answer.remark.strip()),
        "remark_required": int(bool(rs.param("record.no_answer_requires_remark"))),
        "opens_case": int((item.form, answer.item_number) in case_opening_items(rs)),
    }


def feedback_facts(rs: RuleSet, item: m.FeedbackInput) -> dict[str, Any]:
    """An Annex 4 feedback's three answers; D12 `feedback.any_no_opens_review` decides whether a 否 opens a review."""
    no = [item.badge_worn == m.NO, item.duties_performed == m.NO, item.integrity_kept == m.NO]
    return {
        AS_OF: to_num(item.as_of),
        "badge_not_worn": int(no[0]),
        "duties_not_performed": int(no[1]),
        "integrity_not_kept": int(no[2]),
        "any_no": int(any(no)),
        "opens_review": int(bool(rs.param("feedback.any_no_opens_review"))),
    }
