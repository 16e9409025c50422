"""Engine isolation: worker processes, crash recovery, flat memory, canaries (library-notes §1)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import random
import signal

import pytest
from rules_helpers import ALL_ATTESTATIONS, DAY, sup

from services.rules.domain import model as m
from services.rules.domain.decisions import PythonEvaluator
from services.rules.engine.pool import WorkerPool, WorkerStartError


def random_items(n: int, seed: int = 7) -> list[m.EligibilityInput]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        att = frozenset(a for a in ALL_ATTESTATIONS if rnd.random() > 0.05)
        s = sup(
            i,
            gender=rnd.choice([m.MALE, m.FEMALE]),
            birth_date=dt.date(rnd.randint(1955, 1990), rnd.randint(1, 12), rnd.randint(1, 28)),
            status=rnd.choice([m.ACTIVE] * 8 + [m.EXPIRED, m.SUSPENDED, m.REVOKED]),
            training_passed=rnd.random() > 0.05,
            attestations=att,
            term_start=dt.date(rnd.randint(2020, 2024), 1, 1),
        )
        out.append(m.EligibilityInput(s, DAY, rnd.choice([m.APPOINTMENT, m.RENEWAL, m.DISPATCH])))
    return out


async def test_engine_agrees_with_plain_python_and_20k_more_evaluations_leave_no_state(decider, catalog, engine_pool):
    items = random_items(5_000)
    engine = await decider.eligibility(catalog, engine_pool, items)  # also warms the workers up
    python = await decider.eligibility(catalog, PythonEvaluator(catalog), items)
    assert [d.comparable() for d in engine] == [d.comparable() for d in python]
    before = await engine_pool.stats()
    for _ in range(4):
        await decider.eligibility(catalog, engine_pool, items)
    after = await engine_pool.stats()
    assert all(s["open_sessions"] == 0 for s in after)
    assert sum(s["evaluations"] for s in after) - sum(s["evaluations"] for s in before) == 20_000
    # memory stays flat (the 1M-evaluation version of this lives in bench/bench_rules.py)
    for b, a in zip(before, after, strict=True):
        assert b["pid"] == a["pid"]
        assert a["rss_kb"] - b["rss_kb"] < 4 * 1024, (b, a)


async def test_worker_killed_mid_batch_is_replaced_and_the_batch_completes(decider, catalog):
    pool = await WorkerPool(list(catalog.rulesets), size=2, split_min=100).start()
    try:
        items = random_items(8_000, seed=11)
        expected = [d.comparable() for d in await decider.eligibility(catalog, PythonEvaluator(catalog), items)]
        victim = pool.pids()[0]
        task = asyncio.ensure_future(decider.eligibility(catalog, pool, items))
        await asyncio.sleep(0.1)
        os.kill(victim, signal.SIGKILL)
        got = await task
        assert [d.comparable() for d in got] == expected
        for _ in range(300):  # the replacement starts in the background
            if pool.replaced:
                break
            await asyncio.sleep(0.05)
        assert pool.replaced == 1 and pool.retried >= 1
        assert victim not in pool.pids() and len(pool.pids()) == 2
        again = await decider.eligibility(catalog, pool, items[:500])
        assert [d.comparable() for d in again] == expected[:500]
    finally:
        await pool.close()


async def test_a_worker_whose_engine_fails_the_canary_is_not_started(catalog):
    rs = catalog.rulesets[0]
    bad = dataclasses.replace(rs, canaries=({**rs.canaries[1], "expect": ["bj-2022.art10.training"]},))
    with pytest.raises(WorkerStartError, match="canary 0"):
        await WorkerPool([bad], size=1).start()


async def test_single_calls_are_served_one_at_a_time_per_worker(decider, catalog, engine_pool):
    items = random_items(200, seed=3)
    singles = await asyncio.gather(*[decider.eligibility(catalog, engine_pool, [it]) for it in items])
    batch = await decider.eligibility(catalog, engine_pool, items)
    assert [s[0].comparable() for s in singles] == [b.comparable() for b in batch]
