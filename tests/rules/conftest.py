"""Fixtures of the rules tests: the real bj-2022 rule set and a real engine worker pool (durable_rules)."""

from __future__ import annotations

import datetime as dt

import pytest
from rules_helpers import RULESETS

from common.clock import FixedClock
from services.rules.domain.decisions import Decider
from services.rules.domain.ruleset import Catalog, load_catalog
from services.rules.engine.pool import WorkerPool


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(RULESETS)


@pytest.fixture(scope="session")
async def engine_pool(catalog):
    pool = await WorkerPool(list(catalog.rulesets), size=2).start()
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def decider() -> Decider:
    return Decider(FixedClock(dt.datetime(2024, 6, 3, 9, 0)))
