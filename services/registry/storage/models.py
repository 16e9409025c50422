"""Registry tables (SQLAlchemy 2.x). One declarative `Base` for the whole registry process.

The workflow tables (services/registry/storage/workflow_models.py) import this `Base`, so one metadata
(and one alembic history) covers the process. The outbox/processed-event tables of common.events are
added to the same metadata.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.events import platform_tables


class Base(DeclarativeBase):
    pass


platform_tables(Base.metadata)

TS = sa.DateTime(timezone=True)


class Agency(Base):
    """The city centre ("A") and the 17 district agencies of 附件1 表3 (seeded by the first migration)."""

    __tablename__ = "agency"
    code: Mapped[str] = mapped_column(sa.String(2), primary_key=True)
    district_name: Mapped[str] = mapped_column(sa.String(40))
    display_name: Mapped[str] = mapped_column(sa.String(100))
    contact: Mapped[str] = mapped_column(sa.String(200), default="")
    seal: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    seal_sha256: Mapped[str] = mapped_column(sa.String(64), default="")
    logo: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    logo_sha256: Mapped[str] = mapped_column(sa.String(64), default="")
    updated_at: Mapped[dt.datetime | None] = mapped_column(TS)


class Institution(Base):
    """An evaluation institution (评价机构): 用人单位 (Y) or 社会培训评价组织 (S)."""

    __tablename__ = "institution"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(sa.String(32), unique=True)
    # Last four digits of the number (附件1 第4-7位); unique so a code maps to exactly one institution.
    code_digits: Mapped[str] = mapped_column(sa.String(4), unique=True)
    type_letter: Mapped[str] = mapped_column(sa.String(1))
    display_name: Mapped[str] = mapped_column(sa.String(100))
    district_code: Mapped[str] = mapped_column(sa.ForeignKey("agency.code"))
    contact: Mapped[str] = mapped_column(sa.String(200), default="")
    seal: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    seal_sha256: Mapped[str] = mapped_column(sa.String(64), default="")
    logo: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    logo_sha256: Mapped[str] = mapped_column(sa.String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(TS)
    updated_at: Mapped[dt.datetime] = mapped_column(TS)


class Supervisor(Base):
    """A quality supervisor (质量督导员, 第五条). `status`, `current_appointment_id` and `term_end` mirror the
    current appointment (updated in the same transaction as every appointment change) for fast filtering."""

    __tablename__ = "supervisor"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    full_name: Mapped[str] = mapped_column(sa.String(50), index=True)
    male: Mapped[bool] = mapped_column(sa.Boolean)
    birth_date: Mapped[dt.date] = mapped_column(sa.Date)
    id_number: Mapped[str] = mapped_column(sa.String(18), unique=True)
    type: Mapped[str] = mapped_column(sa.String(16))  # external | internal
    level: Mapped[str] = mapped_column(sa.String(16))  # city | district | institution
    # "A" for city level, Table 3 code for district level, the institution's district for internals.
    district_code: Mapped[str] = mapped_column(sa.ForeignKey("agency.code"), index=True)
    institution_id: Mapped[int | None] = mapped_column(sa.ForeignKey("institution.id"), index=True)
    phone: Mapped[str] = mapped_column(sa.String(50), default="")
    photo: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    photo_sha256: Mapped[str] = mapped_column(sa.String(64), default="")
    photo_mime: Mapped[str] = mapped_column(sa.String(20), default="")
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    current_appointment_id: Mapped[int | None] = mapped_column(sa.Integer)
    term_end: Mapped[dt.date | None] = mapped_column(sa.Date, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(TS)
    updated_at: Mapped[dt.datetime] = mapped_column(TS)


class Attestation(Base):
    """The latest attestation of one 第九条 item for a supervisor, with who attested and when."""

    __tablename__ = "attestation"
    __table_args__ = (sa.UniqueConstraint("supervisor_id", "item"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    supervisor_id: Mapped[int] = mapped_column(sa.ForeignKey("supervisor.id"))
    item: Mapped[str] = mapped_column(sa.String(16))
    satisfied: Mapped[bool] = mapped_column(sa.Boolean)
    attested_by: Mapped[str] = mapped_column(sa.String(100))
    attested_date: Mapped[dt.date] = mapped_column(sa.Date)
    recorded_at: Mapped[dt.datetime] = mapped_column(TS)


class TrainingRecord(Base):
    """One dated training and assessment (培训考核, 第十条) by the body 第十一条/第十二条 names."""

    __tablename__ = "training_record"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    supervisor_id: Mapped[int] = mapped_column(sa.ForeignKey("supervisor.id"), index=True)
    course: Mapped[str] = mapped_column(sa.String(200), default="")
    trainer: Mapped[str] = mapped_column(sa.String(100))
    assessed_date: Mapped[dt.date] = mapped_column(sa.Date)
    passed: Mapped[bool] = mapped_column(sa.Boolean)
    certificate_number: Mapped[str] = mapped_column(sa.String(60), default="")
    recorded_at: Mapped[dt.datetime] = mapped_column(TS)


class Affiliation(Base):
    """A dated relation of a supervisor to an institution: employer or other affiliation (第十六条 回避)."""

    __tablename__ = "supervisor_affiliation"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    supervisor_id: Mapped[int] = mapped_column(sa.ForeignKey("supervisor.id"), index=True)
    institution: Mapped[str] = mapped_column(sa.String(60))  # institutions/<number>
    employer: Mapped[bool] = mapped_column(sa.Boolean)
    from_date: Mapped[dt.date] = mapped_column(sa.Date)
    until_date: Mapped[dt.date | None] = mapped_column(sa.Date)


class Appointment(Base):
    """An appointment (聘任, 第十条) by one organisation; the current term is denormalised here."""

    __tablename__ = "appointment"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    supervisor_id: Mapped[int] = mapped_column(sa.ForeignKey("supervisor.id"), index=True)
    organization: Mapped[str] = mapped_column(sa.String(60))  # agencies/A | agencies/08 | institutions/<n>
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    term_number: Mapped[int] = mapped_column(sa.Integer)
    term_start: Mapped[dt.date] = mapped_column(sa.Date)
    term_end: Mapped[dt.date] = mapped_column(sa.Date, index=True)
    decision_id: Mapped[str] = mapped_column(sa.String(80))
    appointed_by: Mapped[str] = mapped_column(sa.String(100), default="")
    status_reason: Mapped[str] = mapped_column(sa.String(500), default="")
    status_article: Mapped[str] = mapped_column(sa.String(50), default="")
    status_decided_by: Mapped[str] = mapped_column(sa.String(100), default="")
    status_case_reference: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(TS)
    updated_at: Mapped[dt.datetime] = mapped_column(TS)


class AppointmentTerm(Base):
    """Every term of an appointment (first appointment and each renewal) with its eligibility decision."""

    __tablename__ = "appointment_term"
    __table_args__ = (sa.UniqueConstraint("appointment_id", "term_number"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    appointment_id: Mapped[int] = mapped_column(sa.ForeignKey("appointment.id"))
    term_number: Mapped[int] = mapped_column(sa.Integer)
    start_date: Mapped[dt.date] = mapped_column(sa.Date)
    end_date: Mapped[dt.date] = mapped_column(sa.Date)
    decision_id: Mapped[str] = mapped_column(sa.String(80))
    recorded_by: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(TS)


class AppointmentStatusChange(Base):
    """Audit trail of status changes (D15: who, when, why, which article)."""

    __tablename__ = "appointment_status_change"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    appointment_id: Mapped[int] = mapped_column(sa.ForeignKey("appointment.id"), index=True)
    from_status: Mapped[str] = mapped_column(sa.String(16))
    to_status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.String(500), default="")
    article: Mapped[str] = mapped_column(sa.String(50), default="")
    decided_by: Mapped[str] = mapped_column(sa.String(100), default="")
    case_reference: Mapped[str] = mapped_column(sa.String(100), default="")
    actor: Mapped[str] = mapped_column(sa.String(60), default="")
    at: Mapped[dt.datetime] = mapped_column(TS)


class BadgeCounter(Base):
    """One row per allocation scope (code prefix = category + issuer + year): the last sequential serial.

    Allocation locks this row (UPDATE … RETURNING) in the transaction that inserts the badge, so serials are
    gap-free and unique across processes (PostgreSQL row lock; SQLite BEGIN IMMEDIATE)."""

    __tablename__ = "badge_counter"
    prefix: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    last_serial: Mapped[int] = mapped_column(sa.Integer)


class Badge(Base):
    """A badge (证卡) with its code (附件1). Codes are never deleted or reused (D2)."""

    __tablename__ = "badge"
    code: Mapped[str] = mapped_column(sa.String(13), primary_key=True)
    prefix: Mapped[str] = mapped_column(sa.String(16), index=True)
    serial: Mapped[int] = mapped_column(sa.Integer)
    explicit_serial: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    category: Mapped[str] = mapped_column(sa.String(24))
    year: Mapped[int] = mapped_column(sa.Integer)
    supervisor_id: Mapped[int] = mapped_column(sa.ForeignKey("supervisor.id"), index=True)
    appointment_id: Mapped[int] = mapped_column(sa.ForeignKey("appointment.id"), index=True)
    term_number: Mapped[int] = mapped_column(sa.Integer)
    issuer: Mapped[str] = mapped_column(sa.String(60))
    district_code: Mapped[str] = mapped_column(sa.String(2), default="")
    institution_id: Mapped[int | None] = mapped_column(sa.ForeignKey("institution.id"), index=True)
    valid_from: Mapped[dt.date] = mapped_column(sa.Date)
    valid_until: Mapped[dt.date] = mapped_column(sa.Date)
    validity_text: Mapped[str] = mapped_column(sa.String(20))
    issue_date: Mapped[dt.date] = mapped_column(sa.Date)
    revoked: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    revoke_reason: Mapped[str] = mapped_column(sa.String(500), default="")
    revoked_at: Mapped[dt.datetime | None] = mapped_column(TS)
    replaces_code: Mapped[str] = mapped_column(sa.String(13), default="")
    created_at: Mapped[dt.datetime] = mapped_column(TS)


class BadgeFiling(Base):
    """Filing (备案) of an internal badge with the city centre (第十二条)."""

    __tablename__ = "badge_filing"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    badge_code: Mapped[str] = mapped_column(sa.ForeignKey("badge.code"), unique=True)
    institution_id: Mapped[int] = mapped_column(sa.ForeignKey("institution.id"), index=True)
    filed_with: Mapped[str] = mapped_column(sa.String(20))
    year: Mapped[int] = mapped_column(sa.Integer)
    filed_at: Mapped[dt.datetime] = mapped_column(TS)
