"""notify: inbox, deliveries, durable timers, contacts, operator alerts, blocked deadlines, clock

Revision ID: 0001_notify_initial
Revises:
"""

import sqlalchemy as sa
from alembic import op

from common.migrations import create_platform_tables

revision = "0001_notify_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables()
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(400), nullable=False, unique=True),
        sa.Column("recipient", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("articles", sa.Text, nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("due_date", sa.String(10), nullable=False),
        sa.Column("document_id", sa.String(120), nullable=False),
        sa.Column("attachment_request", sa.LargeBinary, nullable=True),
        sa.Column("source_event_id", sa.String(64), nullable=False),
        sa.Column("created_ts", sa.Float, nullable=False),
        sa.Column("inserted_wall_ts", sa.Float, nullable=False),
        sa.Column("event_wall_ts", sa.Float, nullable=True),
        sa.Column("read_ts", sa.Float, nullable=True),
    )
    op.create_index("ix_notification_recipient_id", "notification", ["recipient", "id"])
    op.create_index("ix_notification_subject", "notification", ["subject"])
    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("notification_id", sa.Integer, sa.ForeignKey("notification.id"), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("key", sa.String(420), nullable=False, unique=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_ts", sa.Float, nullable=False),
        sa.Column("lease_until_ts", sa.Float, nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("delivered_ts", sa.Float, nullable=True),
        sa.Column("dead_lettered_ts", sa.Float, nullable=True),
    )
    op.create_index("ix_delivery_due", "delivery", ["state", "next_attempt_ts"])
    op.create_index("ix_delivery_notification", "delivery", ["notification_id"])
    op.create_table(
        "timer",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(400), nullable=False, unique=True),
        sa.Column("group_key", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("recipient", sa.String(120), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("due_date", sa.String(10), nullable=False),
        sa.Column("fire_ts", sa.Float, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("draft", sa.Text, nullable=False),
        sa.Column("source_event_id", sa.String(64), nullable=False),
        sa.Column("created_ts", sa.Float, nullable=False),
        sa.Column("done_ts", sa.Float, nullable=True),
    )
    op.create_index("ix_timer_due", "timer", ["state", "fire_ts"])
    op.create_index("ix_timer_group", "timer", ["group_key"])
    op.create_index("ix_timer_subject", "timer", ["subject"])
    op.create_table(
        "contact",
        sa.Column("recipient", sa.String(120), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("updated_ts", sa.Float, nullable=False),
    )
    op.create_table(
        "operator_alert",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(400), nullable=False, unique=True),
        sa.Column("code", sa.String(60), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("created_ts", sa.Float, nullable=False),
    )
    op.create_table(
        "blocked_deadline",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(400), nullable=False, unique=True),
        sa.Column("deadline", sa.Text, nullable=False),
        sa.Column("created_ts", sa.Float, nullable=False),
        sa.Column("resolved_ts", sa.Float, nullable=True),
    )
    op.create_table(
        "clock_setting",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("fixed_ts", sa.Float, nullable=True),
        sa.Column("offset_seconds", sa.Float, nullable=False),
        sa.Column("updated_ts", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "clock_setting",
        "blocked_deadline",
        "operator_alert",
        "contact",
        "timer",
        "delivery",
        "notification",
    ):
        op.drop_table(table)
