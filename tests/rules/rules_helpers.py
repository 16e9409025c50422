"""Builders shared by the rules tests (imported as a plain module: tests/ has no packages)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from services.rules.domain import model as m

RULESETS = Path(__file__).resolve().parents[2] / "services" / "rules" / "rulesets"
ALL_ATTESTATIONS = frozenset({m.PARTY_LINE, m.POLICY_KNOWLEDGE, m.INTEGRITY, m.ABILITY, m.HEALTH})
DAY = dt.date(2024, 6, 3)


def sup(n: int | str = 1, **kw) -> m.Supervisor:
    """An eligible, active district-08 external supervisor unless told otherwise."""
    base = dict(
        name=f"supervisors/{n}",
        person_id=f"P{n}",
        gender=m.MALE,
        birth_date=dt.date(1970, 5, 17),
        kind=m.EXTERNAL,
        level=m.DISTRICT,
        district_code="08",
        status=m.ACTIVE,
        term_start=dt.date(2023, 1, 1),
        training_passed=True,
        attestations=ALL_ATTESTATIONS,
        employer="institutions/9990001",
    )
    base.update(kw)
    return m.Supervisor(**base)


def plan(candidates: int = 50, district: str = "08", institution: str = "institutions/1100012001") -> m.Plan:
    return m.Plan("plans/7", institution, district, candidates)


def session(examiners=(), candidates=()) -> m.Session:
    return m.Session("plans/7/sessions/1", DAY, frozenset(examiners), frozenset(candidates))


def rule_ids(decision: m.Decision, subject: str | None = None) -> list[str]:
    return [f.rule_id for f in decision.findings if subject is None or f.subject == subject]
