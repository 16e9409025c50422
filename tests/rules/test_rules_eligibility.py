"""Eligibility per rule (第九条, 第十条, 第十三条, 第二十七条; D4, D6), evaluated by the real engine workers."""

from __future__ import annotations

import datetime as dt

import pytest
from rules_helpers import ALL_ATTESTATIONS, DAY, rule_ids, sup

from common.errors import FailedPrecondition
from services.rules.domain import model as m

D = dt.date
AGE = "bj-2022.art9.5.age"


async def decide(decider, catalog, engine_pool, supervisor, on=DAY, purpose=m.DISPATCH):
    return (await decider.eligibility(catalog, engine_pool, [m.EligibilityInput(supervisor, on, purpose)]))[0]


AGE_CASES = [
    # (id, gender, birth, on, eligible)
    ("art9_5_D6_man_day_before_66th_birthday_eligible", m.MALE, D(1958, 6, 3), D(2024, 6, 2), True),
    ("art9_5_D6_man_on_66th_birthday_ineligible", m.MALE, D(1958, 6, 3), D(2024, 6, 3), False),
    ("art9_5_D6_man_aged_65_on_65th_birthday_eligible", m.MALE, D(1959, 6, 3), D(2024, 6, 3), True),
    ("art9_5_D6_woman_day_before_61st_birthday_eligible", m.FEMALE, D(1963, 6, 3), D(2024, 6, 2), True),
    ("art9_5_D6_woman_on_61st_birthday_ineligible", m.FEMALE, D(1963, 6, 3), D(2024, 6, 3), False),
    ("art9_5_D6_woman_aged_61_is_eligible_if_man", m.MALE, D(1963, 6, 3), D(2024, 6, 3), True),
    # leap-day birth: in a common year the birthday is 1 March (D6)
    ("art9_5_D6_leapday_man_feb28_common_year_still_65", m.MALE, D(1960, 2, 29), D(2026, 2, 28), True),
    ("art9_5_D6_leapday_man_mar1_common_year_is_66", m.MALE, D(1960, 2, 29), D(2026, 3, 1), False),
    ("art9_5_D6_leapday_woman_feb28_common_year_still_60", m.FEMALE, D(1964, 2, 29), D(2025, 2, 28), True),
    ("art9_5_D6_leapday_woman_mar1_common_year_is_61", m.FEMALE, D(1964, 2, 29), D(2025, 3, 1), False),
    ("art9_5_D6_woman_61st_birthday_feb28_in_leap_year", m.FEMALE, D(1963, 2, 28), D(2024, 2, 28), False),
    ("art9_5_D6_leapday_woman_day_before_mar1_birthday_eligible", m.FEMALE, D(1964, 2, 29), D(2025, 2, 28), True),
]


@pytest.mark.parametrize(
    ("gender", "birth", "on", "eligible"), [c[1:] for c in AGE_CASES], ids=[c[0] for c in AGE_CASES]
)
async def test_age_limit_by_gender_at_birthday_boundaries(decider, catalog, engine_pool, gender, birth, on, eligible):
    supervisor = sup(gender=gender, birth_date=birth, term_start=on - dt.timedelta(days=365))
    d = await decide(decider, catalog, engine_pool, supervisor, on)
    assert (AGE not in rule_ids(d)) is eligible
    assert d.outcome == (m.ALLOW if eligible else m.DENY)
    if not eligible:
        f = next(f for f in d.findings if f.rule_id == AGE)
        assert f.article == "第九条第（五）项" and f.interpretation == "D6"
        assert "男性不超过65周岁、女性不超过60周岁" in f.message
        assert f.facts["gender"] == str(gender)


ATTESTATION_CASES = [
    ("art9_1_party_line_missing", m.PARTY_LINE, "bj-2022.art9.1.party-line"),
    ("art9_2_policy_knowledge_missing", m.POLICY_KNOWLEDGE, "bj-2022.art9.2.policy-knowledge"),
    ("art9_3_integrity_missing", m.INTEGRITY, "bj-2022.art9.3.integrity"),
    ("art9_4_ability_missing", m.ABILITY, "bj-2022.art9.4.ability"),
    ("art9_5_health_missing", m.HEALTH, "bj-2022.art9.5.health"),
]


@pytest.mark.parametrize(("item", "rule"), [c[1:] for c in ATTESTATION_CASES], ids=[c[0] for c in ATTESTATION_CASES])
@pytest.mark.parametrize("purpose", [m.APPOINTMENT, m.RENEWAL, m.DISPATCH], ids=["appointment", "renewal", "dispatch"])
async def test_each_missing_attestation_blocks(decider, catalog, engine_pool, item, rule, purpose):
    d = await decide(decider, catalog, engine_pool, sup(attestations=ALL_ATTESTATIONS - {item}), purpose=purpose)
    assert rule_ids(d) == [rule]
    assert d.outcome == m.DENY


async def test_training_not_passed_blocks_appointment_art10(decider, catalog, engine_pool):
    d = await decide(
        decider,
        catalog,
        engine_pool,
        sup(training_passed=False, status=m.STATUS_NONE, term_start=None),
        purpose=m.APPOINTMENT,
    )
    assert rule_ids(d) == ["bj-2022.art10.training"]
    assert d.findings[0].article == "第十条"


async def test_first_appointment_needs_no_status_or_term_art10(decider, catalog, engine_pool):
    d = await decide(decider, catalog, engine_pool, sup(status=m.STATUS_NONE, term_start=None), purpose=m.APPOINTMENT)
    assert d.outcome == m.ALLOW and d.findings == []


STATUS_CASES = [
    ("art13_expired_cannot_be_dispatched", m.EXPIRED, m.DISPATCH, ["bj-2022.art13.expired"]),
    ("art13_expired_may_be_renewed", m.EXPIRED, m.RENEWAL, []),
    ("art27_suspended_cannot_be_dispatched", m.SUSPENDED, m.DISPATCH, ["bj-2022.art27.suspended"]),
    ("art27_suspended_cannot_be_renewed", m.SUSPENDED, m.RENEWAL, ["bj-2022.art27.suspended"]),
    ("art27_revoked_cannot_be_dispatched", m.REVOKED, m.DISPATCH, ["bj-2022.art27.revoked"]),
    ("art27_revoked_cannot_be_appointed", m.REVOKED, m.APPOINTMENT, ["bj-2022.art27.revoked"]),
    ("art14_active_can_be_dispatched", m.ACTIVE, m.DISPATCH, []),
]


@pytest.mark.parametrize(
    ("status", "purpose", "expected"), [c[1:] for c in STATUS_CASES], ids=[c[0] for c in STATUS_CASES]
)
async def test_status(decider, catalog, engine_pool, status, purpose, expected):
    d = await decide(decider, catalog, engine_pool, sup(status=status), purpose=purpose)
    assert rule_ids(d) == expected


TERM_CASES = [
    # D4: a term from 2021-06-03 without explicit end runs through 2024-06-02
    ("art13_D4_last_day_of_term_valid", D(2021, 6, 3), None, D(2024, 6, 2), True),
    ("art13_D4_day_after_three_years_invalid", D(2021, 6, 3), None, D(2024, 6, 3), False),
    ("art13_before_term_start_invalid", D(2024, 7, 1), None, D(2024, 6, 3), False),
    ("art13_explicit_end_inclusive", D(2023, 1, 1), D(2024, 6, 3), D(2024, 6, 3), True),
    ("art13_explicit_end_passed", D(2023, 1, 1), D(2024, 6, 2), D(2024, 6, 3), False),
]


@pytest.mark.parametrize(("start", "end", "on", "valid"), [c[1:] for c in TERM_CASES], ids=[c[0] for c in TERM_CASES])
async def test_term_valid_on_dispatch_date(decider, catalog, engine_pool, start, end, on, valid):
    d = await decide(decider, catalog, engine_pool, sup(term_start=start, term_end=end), on)
    assert ("bj-2022.art13.term-not-valid" not in rule_ids(d)) is valid


async def test_no_term_blocks_dispatch_art13(decider, catalog, engine_pool):
    d = await decide(decider, catalog, engine_pool, sup(term_start=None))
    assert rule_ids(d) == ["bj-2022.art13.term-not-valid"]


async def test_all_findings_reported_in_declaration_order_art9(decider, catalog, engine_pool):
    d = await decide(
        decider,
        catalog,
        engine_pool,
        sup(attestations=frozenset(), training_passed=False, status=m.REVOKED, birth_date=D(1950, 1, 1)),
    )
    assert rule_ids(d) == [
        "bj-2022.art9.1.party-line",
        "bj-2022.art9.2.policy-knowledge",
        "bj-2022.art9.3.integrity",
        "bj-2022.art9.4.ability",
        "bj-2022.art9.5.age",
        "bj-2022.art9.5.health",
        "bj-2022.art10.training",
        "bj-2022.art27.revoked",
    ]
    assert d.derived["age_years"] == "74"


async def test_date_before_the_rule_set_is_in_force_is_an_error_D16(decider, catalog, engine_pool):
    with pytest.raises(FailedPrecondition) as err:
        await decide(decider, catalog, engine_pool, sup(), D(2022, 7, 27))
    assert err.value.reason == "NO_RULESET_IN_FORCE"


async def test_first_day_in_force_is_decided_D16(decider, catalog, engine_pool):
    d = await decide(decider, catalog, engine_pool, sup(term_start=D(2022, 1, 1)), D(2022, 7, 28))
    assert d.outcome == m.ALLOW
    assert d.ruleset_id == "bj-2022" and d.ruleset_effective == D(2022, 7, 28)
    assert len(d.ruleset_version) == 64
