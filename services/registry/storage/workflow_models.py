"""Supervision workflow tables (issue #7) on the registry's declarative `Base` (one metadata, one alembic
history for the registry process). Nested, form-shaped data (sessions with their people, checklist
answers, findings, recommendations) is kept as JSON next to the columns that are queried."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from services.registry.storage.models import Base


class UTCDateTime(sa.types.TypeDecorator):
    """Instants stored in UTC and read back timezone-aware on both SQLite (which keeps no offset) and
    PostgreSQL, so a value never shifts by the Asia/Shanghai offset on the way through the database."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored in a workflow table")
        value = value.astimezone(dt.UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


TS = UTCDateTime()
JSON = sa.JSON()


class CertPlan(Base):
    """A certification plan (评价计划) with its sessions (场次)."""

    __tablename__ = "cert_plan"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    institution: Mapped[str] = mapped_column(sa.String(60), index=True)  # institutions/<number>
    institution_name: Mapped[str] = mapped_column(sa.String(100))
    title: Mapped[str] = mapped_column(sa.String(200))
    modes: Mapped[list[str]] = mapped_column(JSON)
    other_mode_text: Mapped[str] = mapped_column(sa.String(100), default="")
    district: Mapped[str] = mapped_column(sa.String(2), index=True)
    candidate_count: Mapped[int] = mapped_column(sa.Integer)
    occupation: Mapped[str] = mapped_column(sa.String(200), default="")
    sessions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    first_day: Mapped[dt.date] = mapped_column(sa.Date, index=True)
    last_day: Mapped[dt.date] = mapped_column(sa.Date)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    client_request_id: Mapped[str | None] = mapped_column(sa.String(100), unique=True)
    created_by: Mapped[str] = mapped_column(sa.String(60), default="")
    created_at: Mapped[dt.datetime] = mapped_column(TS)
    updated_at: Mapped[dt.datetime] = mapped_column(TS)


class Dispatch(Base):
    """A dispatch (委派, 第十四条/第二十条) of a team to a plan, with its due dates (D5)."""

    __tablename__ = "dispatch"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("cert_plan.id"), index=True)
    session_ids: Mapped[list[str]] = mapped_column(JSON)
    dispatching_agency: Mapped[str] = mapped_column(sa.String(60), index=True)
    scope: Mapped[str] = mapped_column(sa.String(16))
    form: Mapped[str] = mapped_column(sa.String(20))
    selection: Mapped[str] = mapped_column(sa.String(16))
    seed: Mapped[str] = mapped_column(sa.String(100), default="")
    advisory_findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    rule_set_version: Mapped[str] = mapped_column(sa.String(80), default="")
    decisions: Mapped[list[str]] = mapped_column(JSON)  # rules decision names (D15)
    district: Mapped[str] = mapped_column(sa.String(2), index=True)
    window_start: Mapped[dt.datetime] = mapped_column(TS)
    window_end: Mapped[dt.datetime] = mapped_column(TS)
    start_day: Mapped[dt.date] = mapped_column(sa.Date, index=True)
    end_day: Mapped[dt.date] = mapped_column(sa.Date, index=True)
    record_due: Mapped[dt.date] = mapped_column(sa.Date, index=True)
    feedback_due: Mapped[dt.date] = mapped_column(sa.Date)
    state: Mapped[str] = mapped_column(sa.String(16), index=True)
    cancel_reason: Mapped[str] = mapped_column(sa.String(500), default="")
    client_request_id: Mapped[str | None] = mapped_column(sa.String(100), unique=True)
    created_by: Mapped[str] = mapped_column(sa.String(60), default="")
    created_at: Mapped[dt.datetime] = mapped_column(TS)
    created_on: Mapped[dt.date] = mapped_column(sa.Date)
    updated_at: Mapped[dt.datetime] = mapped_column(TS)


class DispatchMember(Base):
    """A supervisor on a dispatched team; a replaced member stays with the reason (D15)."""

    __tablename__ = "dispatch_member"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    dispatch_id: Mapped[int] = mapped_column(sa.ForeignKey("dispatch.id"), index=True)
    supervisor_id: Mapped[int] = mapped_column(sa.Integer, index=True)
    display_name: Mapped[str] = mapped_column(sa.String(50))
    badge_code: Mapped[str] = mapped_column(sa.String(13), default="")
    state: Mapped[str] = mapped_column(sa.String(16))
    replaced_by: Mapped[int | None] = mapped_column(sa.Integer)
    replace_reason: Mapped[str] = mapped_column(sa.String(500), default="")
    added_at: Mapped[dt.datetime] = mapped_column(TS)


class SupervisionRecord(Base):
    """One Annex 3 record per dispatch (第二十三条); its versions are immutable rows below."""

    __tablename__ = "supervision_record"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    dispatch_id: Mapped[int] = mapped_column(sa.ForeignKey("dispatch.id"), unique=True)
    current_version: Mapped[int] = mapped_column(sa.Integer)
    district: Mapped[str] = mapped_column(sa.String(2), index=True)
    form: Mapped[str] = mapped_column(sa.String(20))
    first_submitted_on: Mapped[dt.date] = mapped_column(sa.Date, index=True)
    late: Mapped[bool] = mapped_column(sa.Boolean)
    no_items: Mapped[list[int]] = mapped_column(JSON)  # 否 items of the current version


class SupervisionRecordVersion(Base):
    """An immutable version of a record: the submission (1) or a correction with its reason."""

    __tablename__ = "supervision_record_version"
    __table_args__ = (sa.UniqueConstraint("record_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    record_id: Mapped[int] = mapped_column(sa.ForeignKey("supervision_record.id"), index=True)
    version: Mapped[int] = mapped_column(sa.Integer)
    submitted_by: Mapped[int] = mapped_column(sa.Integer)
    answers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    problems: Mapped[str] = mapped_column(sa.Text, default="")
    signatures: Mapped[list[str]] = mapped_column(JSON)
    head_signature: Mapped[str] = mapped_column(sa.String(50), default="")
    sign_date: Mapped[dt.date] = mapped_column(sa.Date)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    submitted_at: Mapped[dt.datetime] = mapped_column(TS)
    due_date: Mapped[dt.date] = mapped_column(sa.Date)
    late_working_days: Mapped[int] = mapped_column(sa.Integer, default=0)
    late_calendar_days: Mapped[int] = mapped_column(sa.Integer, default=0)
    correction_reason: Mapped[str] = mapped_column(sa.String(500), default="")
    client_request_id: Mapped[str] = mapped_column(sa.String(100), unique=True)
    actor: Mapped[str] = mapped_column(sa.String(60), default="")


class SupervisorFeedback(Base):
    """Annex 4 feedback of the institution on one external supervisor of a dispatch (D12)."""

    __tablename__ = "supervisor_feedback"
    __table_args__ = (sa.UniqueConstraint("dispatch_id", "supervisor_id"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    dispatch_id: Mapped[int] = mapped_column(sa.ForeignKey("dispatch.id"), index=True)
    supervisor_id: Mapped[int] = mapped_column(sa.Integer, index=True)
    supervisor_name: Mapped[str] = mapped_column(sa.String(50))
    badge_code: Mapped[str] = mapped_column(sa.String(13), default="")
    district: Mapped[str] = mapped_column(sa.String(2), index=True)
    entry_time: Mapped[dt.datetime] = mapped_column(TS)
    exit_time: Mapped[dt.datetime] = mapped_column(TS)
    badge_worn: Mapped[str] = mapped_column(sa.String(4))
    duties_performed: Mapped[str] = mapped_column(sa.String(4))
    integrity_kept: Mapped[str] = mapped_column(sa.String(4))
    comments: Mapped[str] = mapped_column(sa.Text, default="")
    signed_by: Mapped[str] = mapped_column(sa.String(50))
    submitted_at: Mapped[dt.datetime] = mapped_column(TS)
    submitted_on: Mapped[dt.date] = mapped_column(sa.Date, index=True)
    due_date: Mapped[dt.date] = mapped_column(sa.Date)
    late_working_days: Mapped[int] = mapped_column(sa.Integer, default=0)
    late_calendar_days: Mapped[int] = mapped_column(sa.Integer, default=0)
    review_case_id: Mapped[int | None] = mapped_column(sa.Integer)
    client_request_id: Mapped[str] = mapped_column(sa.String(100), unique=True)
    actor: Mapped[str] = mapped_column(sa.String(60), default="")


class PenaltyCase(Base):
    """A penalty case (第二十六条 / 第二十七条) with the current recommendation (D13)."""

    __tablename__ = "penalty_case"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    subject_kind: Mapped[str] = mapped_column(sa.String(16))
    subject: Mapped[str] = mapped_column(sa.String(60), index=True)
    subject_name: Mapped[str] = mapped_column(sa.String(100), default="")
    district: Mapped[str] = mapped_column(sa.String(2), index=True)
    triggers: Mapped[list[str]] = mapped_column(JSON)
    origin: Mapped[str] = mapped_column(sa.String(20))
    source: Mapped[str] = mapped_column(sa.String(60), default="")
    item_numbers: Mapped[list[int]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(sa.Text)
    state: Mapped[str] = mapped_column(sa.String(24), index=True)
    recommendation: Mapped[dict[str, Any]] = mapped_column(JSON)
    correction_deadline: Mapped[dt.date | None] = mapped_column(sa.Date, index=True)
    corrected_at: Mapped[dt.datetime | None] = mapped_column(TS)
    correction_note: Mapped[str] = mapped_column(sa.Text, default="")
    escalation_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    plan_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)
    dispatch_id: Mapped[int | None] = mapped_column(sa.Integer)
    immediate_report_raised: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    opened_by: Mapped[str] = mapped_column(sa.String(60), default="")
    opened_at: Mapped[dt.datetime] = mapped_column(TS)
    opened_on: Mapped[dt.date] = mapped_column(sa.Date, index=True)
    client_request_id: Mapped[str | None] = mapped_column(sa.String(100), unique=True)


class CaseDecision(Base):
    """A decision recorded by an authorised official (D13): who, when, which rung, correction deadline."""

    __tablename__ = "case_decision"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("penalty_case.id"), index=True)
    rung: Mapped[str] = mapped_column(sa.String(40))
    official: Mapped[str] = mapped_column(sa.String(100))
    official_org: Mapped[str] = mapped_column(sa.String(60), default="")
    note: Mapped[str] = mapped_column(sa.Text, default="")
    correction_deadline: Mapped[dt.date | None] = mapped_column(sa.Date)
    decided_at: Mapped[dt.datetime] = mapped_column(TS)
    decided_on: Mapped[dt.date] = mapped_column(sa.Date, index=True)


class DistrictReport(Base):
    """A closed half-month district report (第二十四条, D10); figures as produced at close time."""

    __tablename__ = "district_report"
    __table_args__ = (sa.UniqueConstraint("period_key", "district"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    period_key: Mapped[str] = mapped_column(sa.String(10), index=True)
    district: Mapped[str] = mapped_column(sa.String(2))
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    closed_at: Mapped[dt.datetime] = mapped_column(TS)


class ClosedPeriod(Base):
    """A half-month period that has been closed (reports produced once)."""

    __tablename__ = "closed_period"
    period_key: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    period_start: Mapped[dt.date] = mapped_column(sa.Date)
    closed_at: Mapped[dt.datetime] = mapped_column(TS)
    closed_by: Mapped[str] = mapped_column(sa.String(60), default="")


class WorkflowClockSetting(Base):
    """The workflow's test clock (one row, id 1): an instant fixed by an operator, or none (real time).

    Stored so every replica of the registry process answers with the same "now"; honoured only when
    BJSV_SUPERVISION_TEST_CLOCK is on."""

    __tablename__ = "workflow_clock"
    id: Mapped[int] = mapped_column(primary_key=True)
    fixed_at: Mapped[dt.datetime | None] = mapped_column(TS)
    updated_at: Mapped[dt.datetime] = mapped_column(TS)


class ConflictDeclaration(Base):
    """A dispatched supervisor's 第十六条 declaration (relatives, interests; empty = none), checked by the
    rules service before it is stored."""

    __tablename__ = "conflict_declaration"
    __table_args__ = (sa.UniqueConstraint("dispatch_id", "supervisor_id"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    dispatch_id: Mapped[int] = mapped_column(sa.ForeignKey("dispatch.id"), index=True)
    supervisor_id: Mapped[int] = mapped_column(sa.Integer)
    conflicts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    decisions: Mapped[list[str]] = mapped_column(JSON)
    declared_at: Mapped[dt.datetime] = mapped_column(TS)


class Complaint(Base):
    """A public complaint (群众举报, 第二十二条(九)) and its investigation."""

    __tablename__ = "complaint"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(sa.String(100))
    subject: Mapped[str] = mapped_column(sa.String(60), index=True)
    subject_name: Mapped[str] = mapped_column(sa.String(100), default="")
    district: Mapped[str] = mapped_column(sa.String(2), default="")
    content: Mapped[str] = mapped_column(sa.Text)
    state: Mapped[str] = mapped_column(sa.String(16))
    handling: Mapped[str] = mapped_column(sa.Text, default="")
    result: Mapped[str] = mapped_column(sa.Text, default="")
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("penalty_case.id"))
    received_by: Mapped[str] = mapped_column(sa.String(60))
    client_request_id: Mapped[str | None] = mapped_column(sa.String(100), unique=True)
    received_at: Mapped[dt.datetime] = mapped_column(TS)
    closed_at: Mapped[dt.datetime | None] = mapped_column(TS)


class MajorProblemReport(Base):
    """A major problem (重大问题) reported by a dispatched supervisor, with suggestions (第二十二条(十))."""

    __tablename__ = "major_problem_report"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    dispatch_id: Mapped[int] = mapped_column(sa.ForeignKey("dispatch.id"), index=True)
    supervisor_id: Mapped[int] = mapped_column(sa.Integer)
    findings: Mapped[str] = mapped_column(sa.Text)
    suggestions: Mapped[str] = mapped_column(sa.Text, default="")
    recipients: Mapped[list[str]] = mapped_column(JSON)
    client_request_id: Mapped[str | None] = mapped_column(sa.String(100), unique=True)
    reported_at: Mapped[dt.datetime] = mapped_column(TS)
