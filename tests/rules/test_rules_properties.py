"""Properties (hypothesis): same input → same decision; the engine and the declarations agree."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rules_helpers import ALL_ATTESTATIONS, sup

from services.rules.domain import model as m
from services.rules.domain.decisions import PythonEvaluator

dates = st.dates(min_value=dt.date(2022, 7, 28), max_value=dt.date(2030, 12, 31))
supervisors = st.builds(
    lambda gender, birth, status, training, missing, start: sup(
        1,
        gender=gender,
        birth_date=birth,
        status=status,
        training_passed=training,
        attestations=ALL_ATTESTATIONS - set(missing),
        term_start=start,
    ),
    st.sampled_from([m.MALE, m.FEMALE]),
    st.dates(min_value=dt.date(1950, 1, 1), max_value=dt.date(2000, 12, 31)),
    st.sampled_from([m.STATUS_NONE, m.ACTIVE, m.EXPIRED, m.SUSPENDED, m.REVOKED]),
    st.booleans(),
    st.lists(st.sampled_from(sorted(ALL_ATTESTATIONS)), max_size=2),
    st.one_of(st.none(), st.dates(min_value=dt.date(2019, 1, 1), max_value=dt.date(2030, 1, 1))),
)
items = st.builds(m.EligibilityInput, supervisors, dates, st.sampled_from([m.APPOINTMENT, m.RENEWAL, m.DISPATCH]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(items, min_size=1, max_size=30))
async def test_property_same_input_same_decision_and_engine_equals_declarations(decider, catalog, engine_pool, batch):
    first = await decider.eligibility(catalog, engine_pool, batch)
    second = await decider.eligibility(catalog, engine_pool, list(batch))
    python = await decider.eligibility(catalog, PythonEvaluator(catalog), batch)
    assert [d.comparable() for d in first] == [d.comparable() for d in second] == [d.comparable() for d in python]


penalties = st.builds(
    lambda kind, trig, hist, serious, day: m.PenaltyInput(
        kind, "x", tuple(hist), trig if kind == m.SUBJECT_SUPERVISOR else trig % 6 + 1, day, serious, day
    ),
    st.sampled_from([m.SUBJECT_INSTITUTION, m.SUBJECT_SUPERVISOR]),
    st.sampled_from([7, 8, 1, 2, 3, 4, 5, 6]),
    st.lists(
        st.builds(
            lambda d, r, dl: m.PriorCase("cases/1", 1, d, r, dl, None),
            st.dates(min_value=dt.date(2022, 1, 1), max_value=dt.date(2025, 1, 1)),
            st.integers(0, 3),
            st.one_of(st.none(), st.dates(min_value=dt.date(2022, 1, 1), max_value=dt.date(2025, 1, 1))),
        ),
        max_size=4,
    ),
    st.booleans(),
    st.dates(min_value=dt.date(2023, 1, 1), max_value=dt.date(2025, 1, 1)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(penalties, min_size=1, max_size=10))
async def test_property_penalty_rung_is_monotone_and_deterministic_D13(decider, catalog, engine_pool, batch):
    first = await decider.penalty(catalog, engine_pool, batch)
    python = await decider.penalty(catalog, PythonEvaluator(catalog), batch)
    assert [d.comparable() for d in first] == [d.comparable() for d in python]
    for item, d in zip(batch, first, strict=True):
        assert 1 <= d.recommendation.rung <= 3
        if item.trigger == m.PRIVATE_GAIN:
            assert d.recommendation.rung == 3
