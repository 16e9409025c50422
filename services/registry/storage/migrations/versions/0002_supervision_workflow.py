"""supervision workflow (issue #7): certification plans, dispatches and members, Annex 3 records and
their versions, Annex 4 feedback, penalty cases and decisions, half-month district reports, closed periods.

Revision ID: 0002_supervision_workflow
Revises: 0001_registry_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_supervision_workflow"
down_revision = "0001_registry_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cert_plan",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("institution", sa.String(length=60), nullable=False),
        sa.Column("institution_name", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("modes", sa.JSON(), nullable=False),
        sa.Column("other_mode_text", sa.String(length=100), nullable=False),
        sa.Column("district", sa.String(length=2), nullable=False),
        sa.Column("candidate_count", sa.Integer(), nullable=False),
        sa.Column("occupation", sa.String(length=200), nullable=False),
        sa.Column("sessions", sa.JSON(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("client_request_id", sa.String(length=100), nullable=True),
        sa.Column("created_by", sa.String(length=60), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_request_id"),
    )
    with op.batch_alter_table("cert_plan", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cert_plan_district"), ["district"], unique=False)
        batch_op.create_index(batch_op.f("ix_cert_plan_first_day"), ["first_day"], unique=False)
        batch_op.create_index(batch_op.f("ix_cert_plan_institution"), ["institution"], unique=False)

    op.create_table(
        "closed_period",
        sa.Column("period_key", sa.String(length=10), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.String(length=60), nullable=False),
        sa.PrimaryKeyConstraint("period_key"),
    )
    op.create_table(
        "district_report",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("period_key", sa.String(length=10), nullable=False),
        sa.Column("district", sa.String(length=2), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("period_key", "district"),
    )
    with op.batch_alter_table("district_report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_district_report_period_key"), ["period_key"], unique=False)

    op.create_table(
        "penalty_case",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=60), nullable=False),
        sa.Column("subject_name", sa.String(length=100), nullable=False),
        sa.Column("district", sa.String(length=2), nullable=False),
        sa.Column("triggers", sa.JSON(), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=60), nullable=False),
        sa.Column("item_numbers", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("recommendation", sa.JSON(), nullable=False),
        sa.Column("correction_deadline", sa.Date(), nullable=True),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("correction_note", sa.Text(), nullable=False),
        sa.Column("escalation_count", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("dispatch_id", sa.Integer(), nullable=True),
        sa.Column("immediate_report_raised", sa.Boolean(), nullable=False),
        sa.Column("opened_by", sa.String(length=60), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("client_request_id", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_request_id"),
    )
    with op.batch_alter_table("penalty_case", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_penalty_case_correction_deadline"), ["correction_deadline"], unique=False)
        batch_op.create_index(batch_op.f("ix_penalty_case_district"), ["district"], unique=False)
        batch_op.create_index(batch_op.f("ix_penalty_case_opened_on"), ["opened_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_penalty_case_plan_id"), ["plan_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_penalty_case_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_penalty_case_subject"), ["subject"], unique=False)

    op.create_table(
        "case_decision",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("rung", sa.String(length=40), nullable=False),
        sa.Column("official", sa.String(length=100), nullable=False),
        sa.Column("official_org", sa.String(length=60), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("correction_deadline", sa.Date(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["penalty_case.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_decision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_decision_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_decision_decided_on"), ["decided_on"], unique=False)

    op.create_table(
        "dispatch",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("session_ids", sa.JSON(), nullable=False),
        sa.Column("dispatching_agency", sa.String(length=60), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("form", sa.String(length=20), nullable=False),
        sa.Column("selection", sa.String(length=16), nullable=False),
        sa.Column("seed", sa.String(length=100), nullable=False),
        sa.Column("advisory_findings", sa.JSON(), nullable=False),
        sa.Column("rule_set_version", sa.String(length=80), nullable=False),
        sa.Column("decisions", sa.JSON(), nullable=False),
        sa.Column("district", sa.String(length=2), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_day", sa.Date(), nullable=False),
        sa.Column("end_day", sa.Date(), nullable=False),
        sa.Column("record_due", sa.Date(), nullable=False),
        sa.Column("feedback_due", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cancel_reason", sa.String(length=500), nullable=False),
        sa.Column("client_request_id", sa.String(length=100), nullable=True),
        sa.Column("created_by", sa.String(length=60), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["cert_plan.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_request_id"),
    )
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dispatch_dispatching_agency"), ["dispatching_agency"], unique=False)
        batch_op.create_index(batch_op.f("ix_dispatch_district"), ["district"], unique=False)
        batch_op.create_index(batch_op.f("ix_dispatch_end_day"), ["end_day"], unique=False)
        batch_op.create_index(batch_op.f("ix_dispatch_plan_id"), ["plan_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dispatch_record_due"), ["record_due"], unique=False)
        batch_op.create_index(batch_op.f("ix_dispatch_start_day"), ["start_day"], unique=False)
        batch_op.create_index(batch_op.f("ix_dispatch_state"), ["state"], unique=False)

    op.create_table(
        "dispatch_member",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dispatch_id", sa.Integer(), nullable=False),
        sa.Column("supervisor_id", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=50), nullable=False),
        sa.Column("badge_code", sa.String(length=13), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("replaced_by", sa.Integer(), nullable=True),
        sa.Column("replace_reason", sa.String(length=500), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dispatch_id"],
            ["dispatch.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dispatch_member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dispatch_member_dispatch_id"), ["dispatch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dispatch_member_supervisor_id"), ["supervisor_id"], unique=False)

    op.create_table(
        "supervision_record",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dispatch_id", sa.Integer(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("district", sa.String(length=2), nullable=False),
        sa.Column("form", sa.String(length=20), nullable=False),
        sa.Column("first_submitted_on", sa.Date(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("no_items", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dispatch_id"],
            ["dispatch.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dispatch_id"),
    )
    with op.batch_alter_table("supervision_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_supervision_record_district"), ["district"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_supervision_record_first_submitted_on"), ["first_submitted_on"], unique=False
        )

    op.create_table(
        "supervisor_feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dispatch_id", sa.Integer(), nullable=False),
        sa.Column("supervisor_id", sa.Integer(), nullable=False),
        sa.Column("supervisor_name", sa.String(length=50), nullable=False),
        sa.Column("badge_code", sa.String(length=13), nullable=False),
        sa.Column("district", sa.String(length=2), nullable=False),
        sa.Column("entry_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exit_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("badge_worn", sa.String(length=4), nullable=False),
        sa.Column("duties_performed", sa.String(length=4), nullable=False),
        sa.Column("integrity_kept", sa.String(length=4), nullable=False),
        sa.Column("comments", sa.Text(), nullable=False),
        sa.Column("signed_by", sa.String(length=50), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_on", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("late_working_days", sa.Integer(), nullable=False),
        sa.Column("late_calendar_days", sa.Integer(), nullable=False),
        sa.Column("review_case_id", sa.Integer(), nullable=True),
        sa.Column("client_request_id", sa.String(length=100), nullable=False),
        sa.Column("actor", sa.String(length=60), nullable=False),
        sa.ForeignKeyConstraint(
            ["dispatch_id"],
            ["dispatch.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_request_id"),
        sa.UniqueConstraint("dispatch_id", "supervisor_id"),
    )
    with op.batch_alter_table("supervisor_feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_supervisor_feedback_dispatch_id"), ["dispatch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_supervisor_feedback_district"), ["district"], unique=False)
        batch_op.create_index(batch_op.f("ix_supervisor_feedback_submitted_on"), ["submitted_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_supervisor_feedback_supervisor_id"), ["supervisor_id"], unique=False)

    op.create_table(
        "supervision_record_version",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("submitted_by", sa.Integer(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("problems", sa.Text(), nullable=False),
        sa.Column("signatures", sa.JSON(), nullable=False),
        sa.Column("head_signature", sa.String(length=50), nullable=False),
        sa.Column("sign_date", sa.Date(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("late_working_days", sa.Integer(), nullable=False),
        sa.Column("late_calendar_days", sa.Integer(), nullable=False),
        sa.Column("correction_reason", sa.String(length=500), nullable=False),
        sa.Column("client_request_id", sa.String(length=100), nullable=False),
        sa.Column("actor", sa.String(length=60), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["supervision_record.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_request_id"),
        sa.UniqueConstraint("record_id", "version"),
    )
    with op.batch_alter_table("supervision_record_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_supervision_record_version_record_id"), ["record_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("supervision_record_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_supervision_record_version_record_id"))

    op.drop_table("supervision_record_version")
    with op.batch_alter_table("supervisor_feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_supervisor_feedback_supervisor_id"))
        batch_op.drop_index(batch_op.f("ix_supervisor_feedback_submitted_on"))
        batch_op.drop_index(batch_op.f("ix_supervisor_feedback_district"))
        batch_op.drop_index(batch_op.f("ix_supervisor_feedback_dispatch_id"))

    op.drop_table("supervisor_feedback")
    with op.batch_alter_table("supervision_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_supervision_record_first_submitted_on"))
        batch_op.drop_index(batch_op.f("ix_supervision_record_district"))

    op.drop_table("supervision_record")
    with op.batch_alter_table("dispatch_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dispatch_member_supervisor_id"))
        batch_op.drop_index(batch_op.f("ix_dispatch_member_dispatch_id"))

    op.drop_table("dispatch_member")
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dispatch_state"))
        batch_op.drop_index(batch_op.f("ix_dispatch_start_day"))
        batch_op.drop_index(batch_op.f("ix_dispatch_record_due"))
        batch_op.drop_index(batch_op.f("ix_dispatch_plan_id"))
        batch_op.drop_index(batch_op.f("ix_dispatch_end_day"))
        batch_op.drop_index(batch_op.f("ix_dispatch_district"))
        batch_op.drop_index(batch_op.f("ix_dispatch_dispatching_agency"))

    op.drop_table("dispatch")
    with op.batch_alter_table("case_decision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_decision_decided_on"))
        batch_op.drop_index(batch_op.f("ix_case_decision_case_id"))

    op.drop_table("case_decision")
    with op.batch_alter_table("penalty_case", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_penalty_case_subject"))
        batch_op.drop_index(batch_op.f("ix_penalty_case_state"))
        batch_op.drop_index(batch_op.f("ix_penalty_case_plan_id"))
        batch_op.drop_index(batch_op.f("ix_penalty_case_opened_on"))
        batch_op.drop_index(batch_op.f("ix_penalty_case_district"))
        batch_op.drop_index(batch_op.f("ix_penalty_case_correction_deadline"))

    op.drop_table("penalty_case")
    with op.batch_alter_table("district_report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_district_report_period_key"))

    op.drop_table("district_report")
    op.drop_table("closed_period")
    with op.batch_alter_table("cert_plan", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cert_plan_institution"))
        batch_op.drop_index(batch_op.f("ix_cert_plan_first_day"))
        batch_op.drop_index(batch_op.f("ix_cert_plan_district"))

    op.drop_table("cert_plan")
