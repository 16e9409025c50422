"""registry: agencies (Table 3 seed), institutions, supervisors, attestations, appointments, terms,
status changes, badge counters, badges, badge filings — plus the platform outbox tables.

Revision ID: 0001_registry_initial
Revises:
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

from common.migrations import create_platform_tables
from services.registry.domain.districts import DISTRICTS, agency_display_name

revision = "0001_registry_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables()
    op.create_table(
        "agency",
        sa.Column("code", sa.String(length=2), nullable=False),
        sa.Column("district_name", sa.String(length=40), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=False),
        sa.Column("seal", sa.LargeBinary(), nullable=True),
        sa.Column("seal_sha256", sa.String(length=64), nullable=False),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("logo_sha256", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "badge_counter",
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("last_serial", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("prefix"),
    )
    op.create_table(
        "institution",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("code_digits", sa.String(length=4), nullable=False),
        sa.Column("type_letter", sa.String(length=1), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("district_code", sa.String(length=2), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=False),
        sa.Column("seal", sa.LargeBinary(), nullable=True),
        sa.Column("seal_sha256", sa.String(length=64), nullable=False),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("logo_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["district_code"],
            ["agency.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code_digits"),
        sa.UniqueConstraint("number"),
    )
    op.create_table(
        "supervisor",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("full_name", sa.String(length=50), nullable=False),
        sa.Column("male", sa.Boolean(), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("id_number", sa.String(length=18), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("district_code", sa.String(length=2), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(length=50), nullable=False),
        sa.Column("photo", sa.LargeBinary(), nullable=True),
        sa.Column("photo_sha256", sa.String(length=64), nullable=False),
        sa.Column("photo_mime", sa.String(length=20), nullable=False),
        sa.Column("training_passed", sa.Boolean(), nullable=True),
        sa.Column("training_by", sa.String(length=100), nullable=False),
        sa.Column("training_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("current_appointment_id", sa.Integer(), nullable=True),
        sa.Column("term_end", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["district_code"],
            ["agency.code"],
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("id_number"),
    )
    op.create_index(op.f("ix_supervisor_district_code"), "supervisor", ["district_code"], unique=False)
    op.create_index(op.f("ix_supervisor_full_name"), "supervisor", ["full_name"], unique=False)
    op.create_index(op.f("ix_supervisor_institution_id"), "supervisor", ["institution_id"], unique=False)
    op.create_index(op.f("ix_supervisor_status"), "supervisor", ["status"], unique=False)
    op.create_index(op.f("ix_supervisor_term_end"), "supervisor", ["term_end"], unique=False)
    op.create_table(
        "appointment",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("supervisor_id", sa.Integer(), nullable=False),
        sa.Column("organization", sa.String(length=60), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("term_number", sa.Integer(), nullable=False),
        sa.Column("term_start", sa.Date(), nullable=False),
        sa.Column("term_end", sa.Date(), nullable=False),
        sa.Column("decision_id", sa.String(length=80), nullable=False),
        sa.Column("appointed_by", sa.String(length=100), nullable=False),
        sa.Column("status_reason", sa.String(length=500), nullable=False),
        sa.Column("status_article", sa.String(length=50), nullable=False),
        sa.Column("status_decided_by", sa.String(length=100), nullable=False),
        sa.Column("status_case_reference", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["supervisor_id"],
            ["supervisor.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_appointment_status"), "appointment", ["status"], unique=False)
    op.create_index(op.f("ix_appointment_supervisor_id"), "appointment", ["supervisor_id"], unique=False)
    op.create_index(op.f("ix_appointment_term_end"), "appointment", ["term_end"], unique=False)
    op.create_table(
        "attestation",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("supervisor_id", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(length=16), nullable=False),
        sa.Column("satisfied", sa.Boolean(), nullable=False),
        sa.Column("attested_by", sa.String(length=100), nullable=False),
        sa.Column("attested_date", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["supervisor_id"],
            ["supervisor.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("supervisor_id", "item"),
    )
    op.create_table(
        "appointment_status_change",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=False),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("article", sa.String(length=50), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=False),
        sa.Column("case_reference", sa.String(length=100), nullable=False),
        sa.Column("actor", sa.String(length=60), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_appointment_status_change_appointment_id"),
        "appointment_status_change",
        ["appointment_id"],
        unique=False,
    )
    op.create_table(
        "appointment_term",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("term_number", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("decision_id", sa.String(length=80), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("appointment_id", "term_number"),
    )
    op.create_table(
        "badge",
        sa.Column("code", sa.String(length=13), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("explicit_serial", sa.Boolean(), nullable=False),
        sa.Column("category", sa.String(length=24), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("supervisor_id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("term_number", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=60), nullable=False),
        sa.Column("district_code", sa.String(length=2), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("validity_text", sa.String(length=20), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("revoke_reason", sa.String(length=500), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replaces_code", sa.String(length=13), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
        ),
        sa.ForeignKeyConstraint(
            ["supervisor_id"],
            ["supervisor.id"],
        ),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index(op.f("ix_badge_appointment_id"), "badge", ["appointment_id"], unique=False)
    op.create_index(op.f("ix_badge_institution_id"), "badge", ["institution_id"], unique=False)
    op.create_index(op.f("ix_badge_prefix"), "badge", ["prefix"], unique=False)
    op.create_index(op.f("ix_badge_supervisor_id"), "badge", ["supervisor_id"], unique=False)
    op.create_table(
        "badge_filing",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("badge_code", sa.String(length=13), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("filed_with", sa.String(length=20), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["badge_code"],
            ["badge.code"],
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("badge_code"),
    )
    op.create_index(op.f("ix_badge_filing_institution_id"), "badge_filing", ["institution_id"], unique=False)
    seed_agencies()


def seed_agencies() -> None:
    """The city centre and the 17 district agencies exactly as 附件1 表3 (the one district table)."""
    agency = sa.table(
        "agency",
        sa.column("code", sa.String),
        sa.column("district_name", sa.String),
        sa.column("display_name", sa.String),
        sa.column("contact", sa.String),
        sa.column("seal_sha256", sa.String),
        sa.column("logo_sha256", sa.String),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    now = dt.datetime.now(dt.UTC)
    op.bulk_insert(
        agency,
        [
            dict(
                code=code,
                district_name=name,
                display_name=agency_display_name(code),
                contact="",
                seal_sha256="",
                logo_sha256="",
                updated_at=now,
            )
            for code, name in DISTRICTS.items()
        ],
    )


def downgrade() -> None:
    raise NotImplementedError("the registry's initial revision is not reversible")
