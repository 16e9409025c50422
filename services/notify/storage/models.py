"""SQLAlchemy 2.x tables of the notify service.

Instants used for scheduling and leases are stored as float epoch seconds (UTC): they compare the same
way on SQLite and PostgreSQL, which matters for ``fire_ts <= now`` claims shared by two replicas.
Unique idempotency keys (notification.key, delivery.key, timer.key, operator_alert.key) are the
backstop that makes a redelivered event, a second replica or a restart harmless.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.events import platform_tables


class Base(DeclarativeBase):
    pass


platform_tables(Base.metadata)


class Notification(Base):
    """One notification in one recipient's inbox (the inbox channel is this row)."""

    __tablename__ = "notification"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(sa.String(400), unique=True, nullable=False)
    recipient: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    kind: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    title: Mapped[str] = mapped_column(sa.Text, nullable=False)
    body: Mapped[str] = mapped_column(sa.Text, nullable=False)
    articles: Mapped[str] = mapped_column(sa.Text, nullable=False, default="[]")  # JSON list
    subject: Mapped[str] = mapped_column(sa.String(200), nullable=False, default="")
    due_date: Mapped[str] = mapped_column(sa.String(10), nullable=False, default="")
    document_id: Mapped[str] = mapped_column(sa.String(120), nullable=False, default="")
    attachment_request: Mapped[bytes | None] = mapped_column(sa.LargeBinary, nullable=True)
    source_event_id: Mapped[str] = mapped_column(sa.String(64), nullable=False, default="")
    created_ts: Mapped[float] = mapped_column(sa.Float, nullable=False)  # service clock
    inserted_wall_ts: Mapped[float] = mapped_column(sa.Float, nullable=False)  # wall clock (lag metrics)
    event_wall_ts: Mapped[float | None] = mapped_column(sa.Float, nullable=True)  # event occurred_time
    read_ts: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    __table_args__ = (
        sa.Index("ix_notification_recipient_id", "recipient", "id"),
        sa.Index("ix_notification_subject", "subject"),
    )


class Delivery(Base):
    """One notification on one outbound channel (nats, email)."""

    __tablename__ = "delivery"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(sa.ForeignKey("notification.id"), nullable=False)
    channel: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    key: Mapped[str] = mapped_column(sa.String(420), unique=True, nullable=False)
    state: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    next_attempt_ts: Mapped[float] = mapped_column(sa.Float, nullable=False)
    lease_until_ts: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    claimed_by: Mapped[str] = mapped_column(sa.String(64), nullable=False, default="")
    last_error: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")
    delivered_ts: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    dead_lettered_ts: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    __table_args__ = (
        sa.Index("ix_delivery_due", "state", "next_attempt_ts"),
        sa.Index("ix_delivery_notification", "notification_id"),
    )


class Timer(Base):
    """A durable timer: at ``fire_ts`` (service clock) its draft becomes a notification, once."""

    __tablename__ = "timer"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(sa.String(400), unique=True, nullable=False)
    group_key: Mapped[str] = mapped_column(sa.String(300), nullable=False)
    kind: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    recipient: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    subject: Mapped[str] = mapped_column(sa.String(200), nullable=False, default="")
    due_date: Mapped[str] = mapped_column(sa.String(10), nullable=False, default="")
    fire_ts: Mapped[float] = mapped_column(sa.Float, nullable=False)
    state: Mapped[str] = mapped_column(sa.String(12), nullable=False)  # pending | fired | cancelled
    draft: Mapped[str] = mapped_column(sa.Text, nullable=False)  # JSON of the NotificationDraft
    source_event_id: Mapped[str] = mapped_column(sa.String(64), nullable=False, default="")
    created_ts: Mapped[float] = mapped_column(sa.Float, nullable=False)
    done_ts: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    __table_args__ = (
        sa.Index("ix_timer_due", "state", "fire_ts"),
        sa.Index("ix_timer_group", "group_key"),
        sa.Index("ix_timer_subject", "subject"),
    )


class Contact(Base):
    """E-mail address of a recipient organisation (set by RPC)."""

    __tablename__ = "contact"
    recipient: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), nullable=False, default="")
    display_name: Mapped[str] = mapped_column(sa.String(200), nullable=False, default="")
    updated_ts: Mapped[float] = mapped_column(sa.Float, nullable=False)


class OperatorAlert(Base):
    """Something an operator must act on (CALENDAR_NOT_COVERED …)."""

    __tablename__ = "operator_alert"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(sa.String(400), unique=True, nullable=False)
    code: Mapped[str] = mapped_column(sa.String(60), nullable=False)
    message: Mapped[str] = mapped_column(sa.Text, nullable=False)
    subject: Mapped[str] = mapped_column(sa.String(200), nullable=False, default="")
    year: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    created_ts: Mapped[float] = mapped_column(sa.Float, nullable=False)


class BlockedDeadline(Base):
    """A 第二十三条 deadline no calendar covered yet; rescheduled once a calendar covers its year."""

    __tablename__ = "blocked_deadline"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(sa.String(400), unique=True, nullable=False)
    deadline: Mapped[str] = mapped_column(sa.Text, nullable=False)  # JSON of the FormDeadline
    created_ts: Mapped[float] = mapped_column(sa.Float, nullable=False)
    resolved_ts: Mapped[float | None] = mapped_column(sa.Float, nullable=True)


class ClockSetting(Base):
    """The service clock shared by replicas: real, fixed at an instant, or offset from real time."""

    __tablename__ = "clock_setting"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    mode: Mapped[str] = mapped_column(sa.String(10), nullable=False, default="real")
    fixed_ts: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    offset_seconds: Mapped[float] = mapped_column(sa.Float, nullable=False, default=0.0)
    updated_ts: Mapped[float] = mapped_column(sa.Float, nullable=False)
