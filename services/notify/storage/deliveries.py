"""Delivery rows of the notify service: claims with a lease, completion, failure with backoff or dead-letter,
and the operator's view of dead letters. Plain sync functions taking the session first, run inside
``Database.write/read`` like those of `repository.py`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from common.events import record_event
from services.notify.domain.delivery import DeliveryState, FailureOutcome
from services.notify.domain.model import Channel
from services.notify.storage.models import Contact, Delivery, Notification
from services.notify.storage.repository import _changed, _lock


def claim_deliveries(
    session: Session, /, *, wall_ts: float, lease: float, worker: str, limit: int = 50
) -> list[dict[str, Any]]:
    """Claim due deliveries (pending and due, or sending with an expired lease: the sender died)."""
    due = sa.or_(
        sa.and_(Delivery.state == DeliveryState.PENDING.value, Delivery.next_attempt_ts <= wall_ts),
        sa.and_(Delivery.state == DeliveryState.SENDING.value, Delivery.lease_until_ts < wall_ts),
    )
    q = sa.select(Delivery.id).where(due).order_by(Delivery.next_attempt_ts, Delivery.id).limit(limit)
    ids = [r[0] for r in session.execute(_lock(q, session))]
    if not ids:
        return []
    session.execute(
        sa.update(Delivery)
        .where(Delivery.id.in_(ids))
        .values(
            state=DeliveryState.SENDING.value,
            attempts=Delivery.attempts + 1,
            lease_until_ts=wall_ts + lease,
            claimed_by=worker,
        )
    )
    rows = session.execute(
        sa.select(Delivery, Notification, Contact)
        .join(Notification, Notification.id == Delivery.notification_id)
        .outerjoin(Contact, Contact.recipient == Notification.recipient)
        .where(Delivery.id.in_(ids))
    ).all()
    out = []
    for d, n, c in rows:
        out.append(
            dict(
                delivery_id=d.id,
                channel=d.channel,
                key=d.key,
                attempts=d.attempts,
                notification_id=n.id,
                notification_key=n.key,
                recipient=n.recipient,
                kind=n.kind,
                title=n.title,
                body=n.body,
                articles=json.loads(n.articles),
                subject=n.subject,
                due_date=n.due_date,
                document_id=n.document_id,
                attachment_request=n.attachment_request,
                email=(c.email if c else ""),
                display_name=(c.display_name if c else ""),
            )
        )
    return out


def complete_delivery(session: Session, /, *, delivery_id: int, wall_ts: float) -> bool:
    """Mark delivered; idempotent (a second completion of the same delivery changes nothing)."""
    n = _changed(
        session,
        sa.update(Delivery)
        .where(
            Delivery.id == delivery_id, Delivery.state.in_([DeliveryState.SENDING.value, DeliveryState.PENDING.value])
        )
        .values(state=DeliveryState.DELIVERED.value, delivered_ts=wall_ts, lease_until_ts=None, last_error=""),
    )
    if n and _delivery_channel(session, delivery_id) == Channel.EMAIL.value:
        from bjsv.notify.v1 import events_pb2

        d, nt = session.execute(
            sa.select(Delivery, Notification)
            .join(Notification, Notification.id == Delivery.notification_id)
            .where(Delivery.id == delivery_id)
        ).one()
        ts = _pb_ts(wall_ts)
        record_event(
            session,
            type="notification.delivered",
            subject=f"notifications/{nt.id}",
            payload=events_pb2.NotificationDelivered(
                notification=f"notifications/{nt.id}",
                recipient=nt.recipient,
                channel=d.channel,
                idempotency_key=d.key,
                attempts=d.attempts,
                delivered_time=ts,
            ),
        )
    return bool(n)


def complete_nats_deliveries(session: Session, /, *, delivery_ids: list[int], wall_ts: float) -> int:
    """Mark a batch of NATS deliveries delivered (a resend is harmless: JetStream drops it by Nats-Msg-Id)."""
    return _changed(
        session,
        sa.update(Delivery)
        .where(
            Delivery.id.in_(delivery_ids),
            Delivery.state.in_([DeliveryState.SENDING.value, DeliveryState.PENDING.value]),
        )
        .values(state=DeliveryState.DELIVERED.value, delivered_ts=wall_ts, lease_until_ts=None, last_error=""),
    )


def _delivery_channel(session: Session, delivery_id: int) -> str:
    return session.execute(sa.select(Delivery.channel).where(Delivery.id == delivery_id)).scalar_one()


def _pb_ts(epoch: float):
    from google.protobuf.timestamp_pb2 import Timestamp

    ts = Timestamp()
    ts.FromDatetime(dt.datetime.fromtimestamp(epoch, dt.UTC))
    return ts


def fail_delivery(session: Session, /, *, delivery_id: int, outcome: FailureOutcome, wall_ts: float) -> None:
    """Record a failed attempt: back to pending after the backoff, or dead-lettered with the reason."""
    if outcome.state == DeliveryState.DEAD_LETTERED:
        n = _changed(
            session,
            sa.update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.state == DeliveryState.SENDING.value)
            .values(
                state=DeliveryState.DEAD_LETTERED.value,
                dead_lettered_ts=wall_ts,
                lease_until_ts=None,
                last_error=outcome.reason[:2000],
            ),
        )
        if n:
            from bjsv.notify.v1 import events_pb2

            d, nt = session.execute(
                sa.select(Delivery, Notification)
                .join(Notification, Notification.id == Delivery.notification_id)
                .where(Delivery.id == delivery_id)
            ).one()
            record_event(
                session,
                type="delivery.dead_lettered",
                subject=f"deadLetters/{d.id}",
                payload=events_pb2.DeliveryDeadLettered(
                    dead_letter=f"deadLetters/{d.id}",
                    notification=f"notifications/{nt.id}",
                    recipient=nt.recipient,
                    channel=d.channel,
                    reason=d.last_error,
                    attempts=d.attempts,
                ),
            )
        return
    session.execute(
        sa.update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.state == DeliveryState.SENDING.value)
        .values(
            state=outcome.state.value,
            next_attempt_ts=wall_ts + (outcome.retry_in or 0.0),
            lease_until_ts=None,
            last_error=outcome.reason[:2000],
        )
    )


def skip_delivery(session: Session, /, *, delivery_id: int, reason: str) -> None:
    session.execute(
        sa.update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(state=DeliveryState.SKIPPED.value, lease_until_ts=None, last_error=reason)
    )


def retry_dead_letter(session: Session, /, *, delivery_id: int, wall_ts: float) -> Delivery | None:
    d = session.get(Delivery, delivery_id)
    if d is None or d.state not in (DeliveryState.DEAD_LETTERED.value, DeliveryState.SKIPPED.value):
        return d
    d.state = DeliveryState.PENDING.value
    d.attempts = 0
    d.next_attempt_ts = wall_ts
    d.dead_lettered_ts = None
    session.flush()
    return d


def list_dead_letters(session: Session, /, *, channel: str, after_id: int, limit: int) -> list[tuple]:
    q = (
        sa.select(Delivery, Notification)
        .join(Notification, Notification.id == Delivery.notification_id)
        .where(Delivery.state == DeliveryState.DEAD_LETTERED.value, Delivery.id > after_id)
    )
    if channel:
        q = q.where(Delivery.channel == channel)
    return list(session.execute(q.order_by(Delivery.id).limit(limit)).tuples())


def count_deliveries(session: Session, /) -> dict[tuple[str, str], int]:
    rows = session.execute(
        sa.select(Delivery.channel, Delivery.state, sa.func.count()).group_by(Delivery.channel, Delivery.state)
    ).all()
    return {(c, s): n for c, s, n in rows}
