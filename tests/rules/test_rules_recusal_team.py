"""Recusal grounds (第十六条, 第十二条, 第二十条; D9) and team composition/scope (第二十条; D7, D8)."""

from __future__ import annotations

import pytest
from rules_helpers import DAY, plan, rule_ids, session, sup

from services.rules.domain import model as m

INST = "institutions/1100012001"

RECUSAL_CASES = [
    ("art16_D9_examiner_in_same_session", dict(), dict(examiners=["P1"]), "bj-2022.art16.same-session-examiner"),
    ("art16_D9_employed_by_supervised_institution", dict(employer=INST), {}, "bj-2022.art16.employer-or-affiliation"),
    (
        "art16_D9_affiliated_with_supervised_institution",
        dict(affiliations=("institutions/5", INST)),
        {},
        "bj-2022.art16.employer-or-affiliation",
    ),
    (
        "art16_D9_declared_relative_among_candidates",
        dict(conflicts=(m.Conflict(1, "C77"),)),
        dict(candidates=["C77"]),
        "bj-2022.art16.declared-conflict",
    ),
    (
        "art16_D9_declared_relative_among_examiners",
        dict(conflicts=(m.Conflict(2, "E5"),)),
        dict(examiners=["E5"]),
        "bj-2022.art16.declared-conflict",
    ),
    (
        "art16_D9_declared_interest_in_institution",
        dict(conflicts=(m.Conflict(3, INST),)),
        {},
        "bj-2022.art16.declared-conflict",
    ),
    (
        "art12_D9_internal_supervisor_of_another_institution",
        dict(kind=m.INTERNAL, level=m.LEVEL_NONE, institution="institutions/5", district_code=""),
        {},
        "bj-2022.art12.internal-other-institution",
    ),
    (
        "art20_D9_district_supervisor_outside_own_district",
        dict(district_code="05"),
        {},
        "bj-2022.art20.district-outside",
    ),
]


@pytest.mark.parametrize(
    ("sup_kw", "session_kw", "rule"), [c[1:] for c in RECUSAL_CASES], ids=[c[0] for c in RECUSAL_CASES]
)
async def test_each_recusal_ground_blocks(decider, catalog, engine_pool, sup_kw, session_kw, rule):
    item = m.RecusalInput(sup(**sup_kw), plan(), session(**session_kw), DAY)
    d = (await decider.recusal(catalog, engine_pool, [item]))[0]
    assert rule_ids(d) == [rule]
    assert d.outcome == m.DENY
    assert d.findings[0].article.startswith(("第十六条", "第十二条", "第二十条"))


RECUSAL_CLEAR = [
    ("art16_unrelated_declared_relative_is_no_ground", dict(conflicts=(m.Conflict(1, "C1"),)), dict(candidates=["C2"])),
    (
        "art16_internal_supervisor_of_own_institution_clear",
        dict(kind=m.INTERNAL, level=m.LEVEL_NONE, institution=INST, employer=INST, district_code=""),
        {},
    ),
    ("art20_city_supervisor_anywhere_clear", dict(level=m.CITY, district_code="A"), {}),
    ("art16_examiner_in_other_session_clear", dict(), dict(examiners=["P2"])),
]


@pytest.mark.parametrize(("sup_kw", "session_kw"), [c[1:] for c in RECUSAL_CLEAR], ids=[c[0] for c in RECUSAL_CLEAR])
async def test_no_recusal_ground(decider, catalog, engine_pool, sup_kw, session_kw):
    d = (
        await decider.recusal(catalog, engine_pool, [m.RecusalInput(sup(**sup_kw), plan(), session(**session_kw), DAY)])
    )[0]
    assert d.outcome == m.ALLOW and d.findings == []


async def team(
    decider, catalog, engine_pool, members, *, agency="agencies/08", candidates=50, district="08", examiners=()
):
    item = m.TeamInput(agency, plan(candidates, district), session(examiners=examiners), tuple(members), DAY)
    return (await decider.team(catalog, engine_pool, [item]))[0]


TEAM_SIZE_CASES = [
    ("art20_D7_team_of_1_blocked", 1, 50, m.DENY, ["bj-2022.art20.team.min-size"]),
    ("art20_D7_team_of_2_allowed", 2, 50, m.ALLOW, []),
    ("art20_D7_team_of_3_allowed", 3, 50, m.ALLOW, []),
    ("art20_D7_200_candidates_2_enough", 2, 200, m.ALLOW, []),
    ("art20_D7_201_candidates_advise_3", 2, 201, m.ADVISE, ["bj-2022.art20.team.large-plan"]),
    ("art20_D7_201_candidates_3_enough", 3, 201, m.ALLOW, []),
    ("art20_D7_401_candidates_3_advise_4", 3, 401, m.ADVISE, ["bj-2022.art20.team.large-plan"]),
    ("art20_D7_401_candidates_4_enough", 4, 401, m.ALLOW, []),
    (
        "art20_D7_team_of_1_with_201_candidates",
        1,
        201,
        m.DENY,
        ["bj-2022.art20.team.min-size", "bj-2022.art20.team.large-plan"],
    ),
]


@pytest.mark.parametrize(
    ("size", "candidates", "outcome", "expected"), [c[1:] for c in TEAM_SIZE_CASES], ids=[c[0] for c in TEAM_SIZE_CASES]
)
async def test_team_size(decider, catalog, engine_pool, size, candidates, outcome, expected):
    d = await team(decider, catalog, engine_pool, [sup(i) for i in range(size)], candidates=candidates)
    assert rule_ids(d) == expected
    assert d.outcome == outcome
    assert d.recommended_team_size == {50: 2, 200: 2, 201: 3, 401: 4}[candidates]


async def test_duplicate_member_counts_once_art20(decider, catalog, engine_pool):
    d = await team(decider, catalog, engine_pool, [sup(1), sup(1)])
    assert rule_ids(d) == ["bj-2022.art20.team.min-size"] and d.member_count == 1


SCOPE_CASES = [
    ("art20_D8_district_agency_dispatches_own_district_supervisors", "agencies/08", "08", [dict(), dict()], []),
    (
        "art20_D8_district_agency_cannot_send_city_level",
        "agencies/08",
        "08",
        [dict(), dict(level=m.CITY, district_code="A")],
        ["bj-2022.art20.scope.district-agency-own-district"],
    ),
    (
        "art20_D8_district_agency_cannot_send_other_district",
        "agencies/08",
        "08",
        [dict(), dict(district_code="05")],
        ["bj-2022.art20.scope.district-agency-own-district", "bj-2022.art20.district-outside"],
    ),
    (
        "art20_D8_district_agency_cannot_dispatch_to_other_district_plan",
        "agencies/08",
        "05",
        [dict(), dict()],
        ["bj-2022.art20.scope.plan-outside-district", "bj-2022.art20.district-outside"],
    ),
    (
        "art20_D8_city_centre_sends_city_level_anywhere",
        "agencies/A",
        "05",
        [dict(level=m.CITY, district_code="A"), dict(level=m.CITY, district_code="A")],
        [],
    ),
    (
        "art20_D8_city_centre_cannot_send_district_level",
        "agencies/A",
        "08",
        [dict(level=m.CITY, district_code="A"), dict()],
        ["bj-2022.art20.scope.city-centre-city-level"],
    ),
    (
        "art14_D8_institution_sends_own_internal",
        "institutions/1100012001",
        "08",
        [dict(kind=m.INTERNAL, level=0, institution=INST, employer=INST)],
        [],
    ),
    (
        "art14_D8_institution_cannot_send_external",
        "institutions/1100012001",
        "08",
        [dict(kind=m.INTERNAL, level=0, institution=INST, employer=INST), dict()],
        ["bj-2022.art14.scope.institution-own-internal"],
    ),
]


@pytest.mark.parametrize(
    ("agency", "district", "members", "expected"), [c[1:] for c in SCOPE_CASES], ids=[c[0] for c in SCOPE_CASES]
)
async def test_dispatch_scope(decider, catalog, engine_pool, agency, district, members, expected):
    d = await team(
        decider, catalog, engine_pool, [sup(i, **kw) for i, kw in enumerate(members)], agency=agency, district=district
    )
    assert sorted(set(rule_ids(d))) == sorted(expected)


async def test_team_reports_member_eligibility_and_recusal_per_member_art9_art16(decider, catalog, engine_pool):
    members = [sup(1), sup(2, status=m.SUSPENDED), sup(3, person_id="E1")]
    d = await team(decider, catalog, engine_pool, members, examiners=["E1"])
    assert d.outcome == m.DENY
    assert rule_ids(d, "supervisors/2") == ["bj-2022.art27.suspended"]
    assert rule_ids(d, "supervisors/3") == ["bj-2022.art16.same-session-examiner"]
    assert rule_ids(d, "supervisors/1") == []
