"""Badge-code allocation in the database (附件1, D1–D3) on SQLite and PostgreSQL: sequences per
(scope, year), year rollover, exhaustion at 999 / 99 / 9999, explicit serials, no partial rows; and the
appointment lifecycle (第十条, 第十三条, 第二十七条) with its outbox events."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from common.api import Page
from common.config import Settings
from common.db import Database
from common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, ResourceExhausted
from services.registry.domain import id_number
from services.registry.domain.districts import DISTRICT_CODES
from services.registry.domain.institutions import validate_institution
from services.registry.domain.supervisors import SupervisorInput, validate_supervisor
from services.registry.storage import models as m
from services.registry.storage import repository as repo
from services.registry.usecases import appointments, badges, organisations, supervisors
from services.registry.verify import verification_of

MIGRATIONS = Path(repo.__file__).parent / "migrations"
TODAY = dt.date(2026, 11, 28)
NOW = dt.datetime(2026, 11, 28, 2, tzinfo=dt.UTC)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path_factory):
    """One migrated database per backend for the module; tests keep apart by scope (district / institution /
    year), so they do not depend on each other's counters."""
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        settings = Settings(data_dir=tmp)
    else:
        url, prefix = request.getfixturevalue("pg_url_module")
        settings = Settings(data_dir=tmp, database_url=url, db_schema_prefix=prefix)
    database = Database(settings, service="registry", metadata=m.Base.metadata, migrations=MIGRATIONS)
    database.migrate()
    yield database
    database.dispose()


_seq = iter(range(1, 10**6))


def person(kind="external", level="district", district="08", institution="", birth=dt.date(1970, 1, 1)):
    n = next(_seq)
    return validate_supervisor(
        SupervisorInput(
            full_name=f"测试{n}",
            gender="",
            birth_date="",
            id_number=id_number.compose("110108", birth, n),
            type=kind,
            level=level if kind == "external" else "",
            district_code=district if level == "district" else "",
            institution_number=institution,
            training=(True, "agencies/08" if kind == "external" else f"institutions/{institution}", "2024-06-01"),
        ),
        TODAY,
    )


def appointed(db: Database, draft, start=dt.date(2026, 1, 1)) -> int:
    def run(s):
        sup = supervisors.register_supervisor(s, draft=draft, now=NOW)
        return appointments.appoint(
            s, supervisor_id=sup.id, start=start, decision_id="decisions/test", term_years=3, today=TODAY, now=NOW
        ).id

    return db.write_sync(run)


def issue(db: Database, appt_id: int, year: int = 2026, explicit: int = 0, replace=False) -> str:
    return db.write_sync(
        lambda s: (
            badges.issue_badge(
                s,
                now=NOW,
                appointment_id=appt_id,
                issue_date=dt.date(year, 6, 1),
                explicit_serial=explicit,
                replace_existing=replace,
            ).code
        )
    )


def institution(db: Database, number="1100012001", letter="Y") -> str:
    draft = validate_institution(number, letter, f"机构{number}", "08", "")
    db.write_sync(lambda s: organisations.create_institution(s, draft=draft, now=NOW))
    return number


def set_counter(db: Database, prefix: str, last: int) -> None:
    def run(s):
        repo.ensure_counter(s, prefix)
        s.execute(sa.update(m.BadgeCounter).where(m.BadgeCounter.prefix == prefix).values(last_serial=last))

    db.write_sync(run)


def door(s, code: str, as_of: dt.date) -> str:
    """VerifyBadge's status (the exam door) from the same query the service runs."""
    conn = s.connection()
    return verification_of(repo.verify_row(conn.connection, conn.dialect.paramstyle, code=code), as_of).status


def count(db: Database, model) -> int:
    return db.read_sync(lambda s: s.execute(sa.select(sa.func.count()).select_from(model)).scalar_one())


def test_seed_has_the_city_centre_and_the_17_districts_of_table3(db):
    agencies = db.read_sync(lambda s: [(a.code, a.district_name) for a in repo.agencies(s)])
    assert [c for c, _ in agencies] == ["A", *DISTRICT_CODES]
    assert ("29", "延庆区") in agencies and ("30", "北京经济技术开发区") in agencies


def test_every_district_and_the_city_get_their_own_sequence_from_01(db):
    for district in ("A", *DISTRICT_CODES):
        level = "city" if district == "A" else "district"
        codes = [issue(db, appointed(db, person(level=level, district=district)), year=2028) for _ in range(2)]
        if district == "A":
            assert codes == ["R1128A001", "R1128A002"]
        else:
            assert codes == [f"R1128{district}01", f"R1128{district}02"]


@pytest.mark.parametrize("letter", ["Y", "S"])
def test_internal_codes_use_the_institution_type_and_last_four_digits(db, letter):
    number = institution(db, "11000" + ("2001" if letter == "Y" else "3002"), letter)
    a = appointed(db, person(kind="internal", institution=number))
    b = appointed(db, person(kind="internal", institution=number))
    digits = number[-4:]
    assert issue(db, a) == f"{letter}11{digits}260001"
    assert issue(db, b) == f"{letter}11{digits}260002"
    filings = db.read_sync(lambda s: repo.list_filings(s, page=Page(50), institution_number=number))
    assert filings[1] == 2  # both filed with the city centre (第十二条)


def test_a_new_issue_year_restarts_the_serials_D1_D3(db):
    assert issue(db, appointed(db, person()), year=2026) == "R11260801"
    assert issue(db, appointed(db, person()), year=2026) == "R11260802"
    assert issue(db, appointed(db, person()), year=2027) == "R11270801"


@pytest.mark.parametrize(
    ("level", "district", "prefix", "last", "code"),
    [("city", "A", "R1126A", 998, "R1126A999"), ("district", "16", "R112616", 98, "R11261699")],
)
def test_external_ranges_end_at_999_and_99_then_resource_exhausted_D2(db, level, district, prefix, last, code):
    set_counter(db, prefix, last)
    assert issue(db, appointed(db, person(level=level, district=district))) == code
    before = count(db, m.Badge)
    appt = appointed(db, person(level=level, district=district))
    with pytest.raises(ResourceExhausted) as e:
        issue(db, appt)
    assert e.value.metadata["prefix"] == prefix and "已用尽" in e.value.message
    assert count(db, m.Badge) == before  # nothing stored
    last_serial = db.read_sync(lambda s: s.get(m.BadgeCounter, prefix).last_serial)
    assert last_serial == last + 1  # the failed call did not move the counter


def test_internal_range_ends_at_9999(db):
    number = institution(db, "1100014001")
    set_counter(db, "Y11400126", 9998)
    assert issue(db, appointed(db, person(kind="internal", institution=number))) == "Y114001269999"
    with pytest.raises(ResourceExhausted):
        issue(db, appointed(db, person(kind="internal", institution=number)))


def test_explicit_internal_serials_are_accepted_once_and_skipped_by_the_sequence_D1(db):
    number = institution(db, "1100015555", "S")
    a, b, c = (appointed(db, person(kind="internal", institution=number)) for _ in range(3))
    assert issue(db, a, explicit=2) == "S115555260002"
    with pytest.raises(AlreadyExists) as e:
        issue(db, b, explicit=2)
    assert e.value.field_name == "explicit_serial"
    assert issue(db, b) == "S115555260001"
    assert issue(db, c) == "S115555260003"  # 0002 was taken explicitly


def test_externals_cannot_choose_a_serial(db):
    with pytest.raises(InvalidArgument):
        issue(db, appointed(db, person()), explicit=5)


def test_codes_are_never_reused_after_revocation_D2(db):
    appt = appointed(db, person(district="12"))
    first = issue(db, appt)
    db.write_sync(lambda s: badges.revoke_badge(s, code=first, reason="遗失", now=NOW))
    assert issue(db, appt) == "R11261202"


def test_second_badge_for_the_same_term_needs_replace_and_revokes_the_old_one(db):
    appt = appointed(db, person(district="13"))
    first = issue(db, appt)
    with pytest.raises(AlreadyExists):
        issue(db, appt)
    second = issue(db, appt, replace=True)
    assert second != first
    assert db.read_sync(lambda s: repo.badge(s, code=first).revoked)


def test_duplicate_id_number_is_refused_and_leaves_nothing(db):
    draft = person()
    db.write_sync(lambda s: supervisors.register_supervisor(s, draft=draft, now=NOW))
    n_sup, n_out = (
        count(db, m.Supervisor),
        db.read_sync(lambda s: s.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one()),
    )
    with pytest.raises(AlreadyExists):
        db.write_sync(lambda s: supervisors.register_supervisor(s, draft=draft, now=NOW))
    assert count(db, m.Supervisor) == n_sup
    assert db.read_sync(lambda s: s.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one()) == n_out


def test_lifecycle_suspend_reinstate_expire_revoke_art13_art27(db):
    appt = appointed(db, person(district="14"), start=dt.date(2025, 1, 1))
    code = issue(db, appt, year=2026)
    assert db.read_sync(lambda s: door(s, code, TODAY)) == "active"
    db.write_sync(
        lambda s: appointments.suspend(s, appointment_id=appt, reason="未认真履行职责", article="第二十七条", now=NOW)
    )
    assert db.read_sync(lambda s: door(s, code, TODAY)) == "suspended"
    with pytest.raises(FailedPrecondition):
        issue(db, appt, replace=True)
    db.write_sync(lambda s: appointments.reinstate(s, appointment_id=appt, reason="整改完毕", today=TODAY, now=NOW))
    # term 2025-01-01 … 2027-12-31: the sweep on 2028-01-01 expires it (聘期届满自动解聘)
    assert db.write_sync(lambda s: appointments.expire_due(s, as_of=dt.date(2027, 12, 31), now=NOW)) == []
    assert db.write_sync(lambda s: appointments.expire_due(s, as_of=dt.date(2028, 1, 1), now=NOW)) == [appt]
    assert db.read_sync(lambda s: door(s, code, dt.date(2028, 1, 1))) == "expired"
    db.write_sync(
        lambda s: appointments.revoke(s, appointment_id=appt, reason="利用职务谋取私利", article="第二十七条", now=NOW)
    )
    assert db.read_sync(lambda s: door(s, code, TODAY)) == "revoked"
    types = db.read_sync(lambda s: s.execute(sa.text("SELECT nats_subject FROM outbox ORDER BY seq")).scalars().all())
    for t in ("appointment.started", "badge.issued", "appointment.suspended", "appointment.reinstated",
              "appointment.expired", "appointment.revoked", "badge.revoked"):  # fmt: skip
        assert f"bjsv.registry.{t}" in types
