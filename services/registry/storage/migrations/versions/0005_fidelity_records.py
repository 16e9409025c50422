"""regulatory fidelity (issue #14): dated training records (第十条–第十二条) replacing the yes/no training
columns (existing values are carried over), dated employer/affiliations (第十六条), conflict declarations on
dispatches (第十六条), complaints (第二十二条(九)) and major-problem reports (第二十二条(十)).

Revision ID: 0005_fidelity_records
Revises: 0004_registry_audit_chain
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_fidelity_records"
down_revision = "0004_registry_audit_chain"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _training_and_affiliations() -> None:
    op.create_table(
        "training_record",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("supervisor_id", sa.Integer(), nullable=False),
        sa.Column("course", sa.String(length=200), nullable=False),
        sa.Column("trainer", sa.String(length=100), nullable=False),
        sa.Column("assessed_date", sa.Date(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("certificate_number", sa.String(length=60), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["supervisor_id"], ["supervisor.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("training_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_training_record_supervisor_id"), ["supervisor_id"], unique=False)
    op.execute(
        "INSERT INTO training_record (supervisor_id, course, trainer, assessed_date, passed, certificate_number,"
        " recorded_at) SELECT id, '', training_by, training_date, training_passed, '', updated_at FROM supervisor"
        " WHERE training_passed IS NOT NULL AND training_date IS NOT NULL"
    )
    with op.batch_alter_table("supervisor", schema=None) as batch_op:
        batch_op.drop_column("training_passed")
        batch_op.drop_column("training_by")
        batch_op.drop_column("training_date")
    op.create_table(
        "supervisor_affiliation",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("supervisor_id", sa.Integer(), nullable=False),
        sa.Column("institution", sa.String(length=60), nullable=False),
        sa.Column("employer", sa.Boolean(), nullable=False),
        sa.Column("from_date", sa.Date(), nullable=False),
        sa.Column("until_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["supervisor_id"], ["supervisor.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("supervisor_affiliation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_supervisor_affiliation_supervisor_id"), ["supervisor_id"], unique=False)


def _workflow() -> None:
    op.create_table(
        "conflict_declaration",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dispatch_id", sa.Integer(), nullable=False),
        sa.Column("supervisor_id", sa.Integer(), nullable=False),
        sa.Column("conflicts", sa.JSON(), nullable=False),
        sa.Column("decisions", sa.JSON(), nullable=False),
        sa.Column("declared_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["dispatch_id"], ["dispatch.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dispatch_id", "supervisor_id"),
    )
    with op.batch_alter_table("conflict_declaration", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conflict_declaration_dispatch_id"), ["dispatch_id"], unique=False)
    op.create_table(
        "complaint",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=60), nullable=False),
        sa.Column("subject_name", sa.String(length=100), nullable=False),
        sa.Column("district", sa.String(length=2), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("handling", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("received_by", sa.String(length=60), nullable=False),
        sa.Column("client_request_id", sa.String(length=100), nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["penalty_case.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_request_id"),
    )
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_complaint_subject"), ["subject"], unique=False)
    op.create_table(
        "major_problem_report",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dispatch_id", sa.Integer(), nullable=False),
        sa.Column("supervisor_id", sa.Integer(), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("suggestions", sa.Text(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("client_request_id", sa.String(length=100), nullable=True),
        sa.Column("reported_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["dispatch_id"], ["dispatch.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_request_id"),
    )
    with op.batch_alter_table("major_problem_report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_major_problem_report_dispatch_id"), ["dispatch_id"], unique=False)


def upgrade() -> None:
    _training_and_affiliations()
    _workflow()


def downgrade() -> None:
    for table in ("major_problem_report", "complaint", "conflict_declaration", "supervisor_affiliation"):
        op.drop_table(table)
    with op.batch_alter_table("supervisor", schema=None) as batch_op:
        batch_op.add_column(sa.Column("training_passed", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("training_by", sa.String(length=100), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("training_date", sa.Date(), nullable=True))
    op.drop_table("training_record")
