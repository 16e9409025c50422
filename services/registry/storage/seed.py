"""Bulk demo / bench population, written through the registry's use cases in one transaction.

Used by `supervisionctl seed --demo` (via deploy/supervisionctl/registry_cmds.py), the concurrency test and
bench/bench_registry.py. It bypasses the rules service on purpose (thousands of appointments in seconds);
such appointments carry the decision id "seed:<reason>" so they are recognisable as not rules-checked.
Events (supervisor.registered, appointment.started) are recorded as usual.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.registry.domain import id_number
from services.registry.domain.districts import CITY_CODE
from services.registry.domain.institutions import validate_institution
from services.registry.domain.supervisors import AttestationItem, SupervisorDraft, SupervisorInput, validate_supervisor
from services.registry.domain.training import TrainingInput
from services.registry.storage import models as m
from services.registry.storage import repository as repo
from services.registry.usecases import appointments, organisations, supervisors

# Demo and bench data only, written straight to the database: a real appointment takes its term from the
# rule set in force (`appointment.term_years`, read from the rules service).
DEMO_TERM_YEARS = 3
DEMO_TRAINED_DAYS_BEFORE = 30  # demo attestations and training date from a month before the term starts
DEMO_COURSE = "质量督导员岗前培训"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超"]


@dataclass(frozen=True)
class ScopeSpec:
    """Where supervisors go: city level ("A"), a district code, or an institution (number, Y/S)."""

    district: str = ""
    institution_number: str = ""
    institution_letter: str = "Y"
    count: int = 1


def _ensure_institution(session: Session, number: str, letter: str) -> None:
    if repo.institution_exists(session, number=number):
        return
    draft = validate_institution(number, letter, f"演示评价机构{number[-4:]}", "08", "演示联系人 010-00000000")
    organisations.create_institution(session, draft=draft, now=dt.datetime.now(dt.UTC))


def _demo_supervisor(
    n: int, number: str, spec: ScopeSpec, start: dt.date, today: dt.date
) -> tuple[SupervisorDraft, TrainingInput]:
    """A demo supervisor with 第九条 attested and a 第十条 training passed before the term starts, by the body
    第十一条/第十二条 names (the city or district agency; an internal supervisor's own institution), so that
    the demo supervisors pass the rules service's checks at dispatch."""
    internal = bool(spec.institution_number)
    trainer = f"institutions/{spec.institution_number}" if internal else f"agencies/{spec.district}"
    vetted = (start - dt.timedelta(days=DEMO_TRAINED_DAYS_BEFORE)).isoformat()
    draft = validate_supervisor(
        SupervisorInput(
            full_name=SURNAMES[n % len(SURNAMES)] + GIVEN[n % len(GIVEN)], gender="", birth_date="",
            id_number=number, type="internal" if internal else "external",
            level="" if internal else ("city" if spec.district == CITY_CODE else "district"),
            district_code="" if internal else spec.district, institution_number=spec.institution_number,
            phone=f"1380000{n:04d}", attestations=[(item.value, True, trainer, vetted) for item in AttestationItem],
        ),
        today,
    )  # fmt: skip
    return draft, TrainingInput(DEMO_COURSE, trainer, vetted, True, f"DEMO-PX-{n:05d}")


def seed_population(
    session: Session, *, specs: list[ScopeSpec], today: dt.date, start: dt.date | None = None,
    reason: str = "demo", id_region_base: int = 110101,
) -> list[int]:  # fmt: skip
    """Register and appoint supervisors per spec; returns the appointment ids in order."""
    start = start or today
    used = set(session.execute(sa.select(m.Supervisor.id_number)).scalars())
    appointed: list[int] = []
    now = dt.datetime.now(dt.UTC)  # the instant stored (created_at); dates come from `today` / `start`
    region, seq = id_region_base, 1
    n = 0
    for spec in specs:
        if spec.institution_number:
            _ensure_institution(session, spec.institution_number, spec.institution_letter)
        for _ in range(spec.count):
            n += 1
            birth = dt.date(1965 + n % 25, 1 + n % 12, 1 + n % 28)
            while True:
                number = id_number.compose(str(region), birth, seq)
                seq += 1
                if seq >= 1000:
                    seq, region = 1, region + 1
                if number not in used:
                    used.add(number)
                    break
            draft, training = _demo_supervisor(n, number, spec, start, today)
            sup = supervisors.register_supervisor(session, draft=draft, now=now)
            supervisors.record_training(session, supervisor_id=sup.id, training=training, today=today, now=now)
            appt = appointments.appoint(
                session,
                supervisor_id=sup.id,
                start=start,
                decision_id=f"seed:{reason}",
                term_years=DEMO_TERM_YEARS,
                today=today,
                now=now,
            )
            appointed.append(appt.id)
    return appointed
