"""双随机 draws: reproducible ProposeTeam / SampleInspectionTargets, legal pools, clear failures (第二十条)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rules_helpers import DAY, plan, session, sup

from common.errors import FailedPrecondition
from services.rules.domain import model as m
from services.rules.domain.draws import order_pool, propose_team, sample_inspection_targets


async def propose(
    decider, catalog, ev, pool, *, seed="s1", size=0, agency="agencies/08", candidates=50, examiners=(), district="08"
):
    return await propose_team(
        decider,
        catalog,
        ev,
        agency=agency,
        plan=plan(candidates, district),
        session=session(examiners=examiners),
        as_of=DAY,
        pool=[(s.name, s.recent_dispatch_count) for s in pool],
        load=lambda i: pool[i],
        team_size=size,
        seed=seed,
        pool_digest="d",
    )


def mixed_pool(n: int) -> list[m.Supervisor]:
    out = []
    for i in range(n):
        kw = {}
        if i % 5 == 1:
            kw["district_code"] = "05"  # other district
        elif i % 5 == 2:
            kw["status"] = m.SUSPENDED
        elif i % 5 == 3:
            kw["birth_date"] = dt.date(1950, 1, 1)  # too old
        out.append(sup(i, recent_dispatch_count=i % 4, **kw))
    return out


async def test_same_seed_gives_the_same_team_and_any_pool_order(decider, catalog, engine_pool):
    pool = mixed_pool(60)
    a = await propose(decider, catalog, engine_pool, pool, seed="abc")
    b = await propose(decider, catalog, engine_pool, list(reversed(pool)), seed="abc")
    c = await propose(decider, catalog, engine_pool, pool, seed="other")
    assert a.team == b.team and len(a.team) == 2
    assert a.team != c.team or a.seed != c.seed
    for name in a.team:  # only legal members are drawn
        assert int(name.split("/")[1]) % 5 in (0, 4)


async def test_drawn_team_passes_check_team_art20(decider, catalog, engine_pool):
    pool = mixed_pool(40)
    draw = await propose(decider, catalog, engine_pool, pool, candidates=450, examiners=["P0"])
    assert len(draw.team) == 4  # D7: 2 + 2 further started blocks of 200
    assert "supervisors/0" not in draw.team  # examiner in the session
    by_name = {s.name: s for s in pool}
    check = (
        await decider.team(
            catalog,
            engine_pool,
            [
                m.TeamInput(
                    "agencies/08", plan(450), session(examiners=["P0"]), tuple(by_name[n] for n in draw.team), DAY
                )
            ],
        )
    )[0]
    assert check.outcome == m.ALLOW
    assert draw.decision.kind == m.KIND_TEAM_DRAW and draw.decision.derived["seed"] == "s1"


async def test_a_multi_day_dispatch_draws_only_members_legal_on_every_covered_day_art9_art13(
        decider, catalog, engine_pool):  # fmt: skip
    # turns 66 on 2024-06-04 (D6: ineligible from then); term of the other one ends 2024-06-04
    pool = [sup(1, birth_date=dt.date(1958, 6, 4)), sup(2, term_start=dt.date(2021, 6, 5)), sup(3), sup(4)]
    later = dt.date(2024, 6, 5)
    one_day = await propose(decider, catalog, engine_pool, pool, size=4)
    assert sorted(one_day.team) == [s.name for s in pool]  # all legal on the first day
    with pytest.raises(FailedPrecondition) as err:
        await propose_team(
            decider,
            catalog,
            engine_pool,
            agency="agencies/08",
            plan=plan(),
            session=session(),
            as_of=DAY,
            also_on=[later],
            pool=[(s.name, 0) for s in pool],
            load=lambda i: pool[i],
            team_size=4,
            seed="s1",
            pool_digest="d",
        )
    assert err.value.metadata["eligible_count"] == "2"
    draw = await propose_team(
        decider,
        catalog,
        engine_pool,
        agency="agencies/08",
        plan=plan(),
        session=session(),
        as_of=DAY,
        also_on=[later],
        pool=[(s.name, 0) for s in pool],
        load=lambda i: pool[i],
        team_size=2,
        seed="s1",
        pool_digest="d",
    )
    assert sorted(draw.team) == ["supervisors/3", "supervisors/4"]
    assert draw.decision.derived["also_on_dates"] == "2024-06-05"


async def test_too_small_pool_says_how_many_are_eligible_and_why_art20(decider, catalog, engine_pool):
    pool = [sup(1), sup(2, status=m.SUSPENDED), sup(3, district_code="05"), sup(4, district_code="05")]
    with pytest.raises(FailedPrecondition) as err:
        await propose(decider, catalog, engine_pool, pool, size=3)
    e = err.value
    assert e.reason == "POOL_TOO_SMALL"
    assert e.metadata["eligible_count"] == "1" and e.metadata["required"] == "3"
    assert e.metadata["excluded.bj-2022.art20.district-outside"] == "2"
    assert e.metadata["excluded.bj-2022.art27.suspended"] == "1"
    assert "符合条件的只有1人" in e.violations[0].description


async def test_empty_pool_is_a_failed_precondition(decider, catalog, engine_pool):
    with pytest.raises(FailedPrecondition) as err:
        await propose(decider, catalog, engine_pool, [])
    assert err.value.metadata["eligible_count"] == "0"


async def test_district_agency_cannot_draw_for_another_district_plan_art20(decider, catalog, engine_pool):
    with pytest.raises(FailedPrecondition) as err:
        await propose(decider, catalog, engine_pool, mixed_pool(10), district="05")
    assert err.value.reason == "TEAM_NOT_DISPATCHABLE"
    assert err.value.violations[0].type == "bj-2022.art20.scope.plan-outside-district"


async def test_requested_team_of_one_is_refused_art20(decider, catalog, engine_pool):
    with pytest.raises(FailedPrecondition) as err:
        await propose(decider, catalog, engine_pool, mixed_pool(10), size=1)
    assert err.value.violations[0].type == "bj-2022.art20.team.min-size"


def test_fewer_recent_dispatches_are_preferred_D7():
    pool = [(f"supervisors/{i}", 0 if i < 50 else 9) for i in range(100)]
    firsts = Counter()
    for seed in range(400):
        first = order_pool(str(seed), pool, 1.0)[0]
        firsts["rested" if first < 50 else "busy"] += 1
    assert firsts["rested"] > 5 * firsts["busy"]
    uniform = Counter("rested" if order_pool(str(s), pool, 0.0)[0] < 50 else "busy" for s in range(400))
    assert 120 < uniform["rested"] < 280


def test_inspection_sample_is_reproducible_and_sized(decider, catalog):
    plans = [f"plans/{i}" for i in range(95)]
    a = sample_inspection_targets(
        decider,
        catalog,
        plans=plans,
        sample_size=0,
        sample_ratio=0,
        seed="x",
        as_of=DAY,
        subject="agencies/08",
        pool_digest="d",
    )
    b = sample_inspection_targets(
        decider,
        catalog,
        plans=list(reversed(plans)),
        sample_size=0,
        sample_ratio=0,
        seed="x",
        as_of=DAY,
        subject="agencies/08",
        pool_digest="d",
    )
    assert a.plans == b.plans and len(a.plans) == 10  # ceil(10 % of 95)
    c = sample_inspection_targets(
        decider,
        catalog,
        plans=plans,
        sample_size=500,
        sample_ratio=0,
        seed="x",
        as_of=DAY,
        subject="agencies/08",
        pool_digest="d",
    )
    assert sorted(c.plans) == sorted(plans)


member = st.builds(
    lambda i, status, district, level, old, examiner, recent: sup(
        i,
        status=status,
        district_code=district,
        level=level,
        birth_date=dt.date(1950 if old else 1975, 3, 1),
        person_id=f"E{i}" if examiner else f"P{i}",
        recent_dispatch_count=recent,
    ),
    st.integers(0, 10_000),
    st.sampled_from([m.ACTIVE, m.ACTIVE, m.ACTIVE, m.SUSPENDED, m.EXPIRED]),
    st.sampled_from(["08", "08", "05"]),
    st.sampled_from([m.DISTRICT, m.DISTRICT, m.CITY]),
    st.booleans(),
    st.booleans(),
    st.integers(0, 5),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pool=st.lists(member, max_size=25, unique_by=lambda s: s.name),
    seed=st.text(max_size=8),
    candidates=st.integers(1, 700),
)
async def test_property_proposed_team_always_passes_check_team_and_is_reproducible(
    decider, catalog, engine_pool, pool, seed, candidates
):
    examiners = [s.person_id for s in pool if s.person_id.startswith("E")]
    try:
        draw = await propose(decider, catalog, engine_pool, pool, seed=seed, candidates=candidates, examiners=examiners)
    except FailedPrecondition as err:
        assert err.reason == "POOL_TOO_SMALL"
        return
    again = await propose(decider, catalog, engine_pool, pool, seed=seed, candidates=candidates, examiners=examiners)
    assert again.team == draw.team
    by_name = {s.name: s for s in pool}
    check = (
        await decider.team(
            catalog,
            engine_pool,
            [
                m.TeamInput(
                    "agencies/08",
                    plan(candidates),
                    session(examiners=examiners),
                    tuple(by_name[n] for n in draw.team),
                    DAY,
                )
            ],
        )
    )[0]
    assert check.outcome != m.DENY
