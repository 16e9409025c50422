"""Repository functions of the notify service: plain sync functions taking the session first.

They run inside ``Database.write/read`` (one transaction each). Idempotency rests on unique keys:
inserts use ``INSERT … ON CONFLICT DO NOTHING`` so a second replica, a redelivered event or a restart
never creates a second notification, delivery, timer or alert. Claims of due timers and deliveries use
``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the write transaction (BEGIN IMMEDIATE) already
serialises writers across processes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from common.events import PROCESSED, mark_processed, platform_tables, record_event
from services.notify.domain.delivery import DeliveryState
from services.notify.domain.model import (
    AlertDraft,
    Channel,
    Form,
    FormDeadline,
    Kind,
    NotificationDraft,
    Reaction,
    TimerSpec,
)
from services.notify.storage.models import (
    Base,
    BlockedDeadline,
    ClockSetting,
    Contact,
    Delivery,
    Notification,
    OperatorAlert,
    Timer,
)

# -- serialisation of domain values ---------------------------------------------------------------------


def draft_to_json(d: NotificationDraft) -> str:
    return json.dumps(
        {
            "key": d.key,
            "recipient": d.recipient,
            "kind": d.kind.value,
            "title": d.title,
            "body": d.body,
            "articles": list(d.articles),
            "subject": d.subject,
            "due_date": d.due_date.isoformat() if d.due_date else "",
            "document_id": d.document_id,
            "channels": [c.value for c in d.channels],
        },
        ensure_ascii=False,
    )


def draft_from_json(text: str) -> NotificationDraft:
    v = json.loads(text)
    return NotificationDraft(
        key=v["key"],
        recipient=v["recipient"],
        kind=Kind(v["kind"]),
        title=v["title"],
        body=v["body"],
        articles=tuple(v["articles"]),
        subject=v["subject"],
        due_date=dt.date.fromisoformat(v["due_date"]) if v["due_date"] else None,
        document_id=v.get("document_id", ""),
        channels=tuple(Channel(c) for c in v.get("channels", [])),
    )


def deadline_to_json(d: FormDeadline) -> str:
    return json.dumps(
        {
            "dispatch": d.dispatch,
            "form": d.form.value,
            "owners": list(d.owners),
            "owner_name": d.owner_name,
            "dispatching_agency": d.dispatching_agency,
            "plan_name": d.plan_name,
            "supervision_end": d.supervision_end.isoformat() if d.supervision_end else "",
            "due_date": d.due_date.isoformat() if d.due_date else "",
            "about": d.about,
            "about_name": d.about_name,
        },
        ensure_ascii=False,
    )


def deadline_from_json(text: str) -> FormDeadline:
    v = json.loads(text)

    def day(s: str) -> dt.date | None:
        return dt.date.fromisoformat(s) if s else None

    return FormDeadline(
        dispatch=v["dispatch"],
        form=Form(v["form"]),
        owners=tuple(v["owners"]),
        owner_name=v["owner_name"],
        dispatching_agency=v["dispatching_agency"],
        plan_name=v["plan_name"],
        supervision_end=day(v["supervision_end"]),
        due_date=day(v["due_date"]),
        about=v["about"],
        about_name=v["about_name"],
    )


# -- helpers ---------------------------------------------------------------------------------------------


def _insert_ignore(session: Session, model: Any, values: dict[str, Any], *, returning: bool = True) -> int | None:
    """INSERT … ON CONFLICT (key) DO NOTHING; the new id, or None when the key already existed."""
    table = model.__table__
    dialect = session.get_bind().dialect.name
    ins = (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)).values(**values)
    ignore = ins.on_conflict_do_nothing(index_elements=["key"])
    if returning:
        row = session.execute(ignore.returning(table.c.id)).first()
        return row[0] if row else None
    session.execute(ignore)
    return None


def _changed(session: Session, statement: sa.Executable) -> int:
    """Rows an UPDATE changed: execute() is typed as returning a Result, DML returns a CursorResult."""
    return cast(sa.CursorResult[Any], session.execute(statement)).rowcount


def _bulk_insert_ignore(session: Session, table: sa.Table, rows: list[dict[str, Any]], *returning: Any) -> list:
    """executemany INSERT … ON CONFLICT (key) DO NOTHING RETURNING … (compiled once, batched by the driver)."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    ins = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    statement = ins.on_conflict_do_nothing(index_elements=["key"]).returning(*returning)
    return list(session.execute(statement, rows))


def _lock(q: sa.Select, session: Session) -> sa.Select:
    if session.get_bind().dialect.name == "postgresql":
        return q.with_for_update(skip_locked=True)
    return q


# -- writes: events, notifications, timers ---------------------------------------------------------------


def _notification_row(
    draft: NotificationDraft,
    source_event_id: str,
    event_wall_ts: float | None,
    attachment_request: bytes | None,
    *,
    now_ts: float,
    wall_ts: float,
) -> dict[str, Any]:
    """The inbox row of ``draft`` (one form for the single and the bulk insert)."""
    return dict(
        key=draft.key,
        recipient=draft.recipient,
        kind=draft.kind.value,
        title=draft.title,
        body=draft.body,
        articles=json.dumps(list(draft.articles), ensure_ascii=False),
        subject=draft.subject,
        due_date=draft.due_date.isoformat() if draft.due_date else "",
        document_id=draft.document_id,
        attachment_request=attachment_request,
        source_event_id=source_event_id,
        created_ts=now_ts,
        inserted_wall_ts=wall_ts,
        event_wall_ts=event_wall_ts,
        read_ts=None,
    )


def add_notification(
    session: Session,
    draft: NotificationDraft,
    *,
    now_ts: float,
    wall_ts: float,
    channels: Sequence[Channel],
    source_event_id: str = "",
    event_wall_ts: float | None = None,
    attachment_request: bytes | None = None,
) -> int | None:
    """Put ``draft`` into its recipient's inbox and queue its outbound deliveries; None if it exists."""
    nid = _insert_ignore(
        session,
        Notification,
        _notification_row(draft, source_event_id, event_wall_ts, attachment_request, now_ts=now_ts, wall_ts=wall_ts),
    )
    if nid is None:
        return None
    wanted = [c for c in draft.channels if c in channels]
    for channel in wanted:
        session.execute(
            sa.insert(Delivery).values(
                notification_id=nid,
                channel=channel.value,
                key=f"{draft.key}#{channel.value}",
                state=DeliveryState.PENDING.value,
                attempts=0,
                next_attempt_ts=wall_ts,
                lease_until_ts=None,
                claimed_by="",
                last_error="",
            )
        )
    return nid


def upsert_timer(session: Session, spec: TimerSpec, *, now_ts: float, source_event_id: str = "") -> None:
    """Schedule ``spec``; a cancelled timer with the same key is revived, a fired one is left alone."""
    values = dict(
        key=spec.key,
        group_key=spec.group,
        kind=spec.draft.kind.value,
        recipient=spec.draft.recipient,
        subject=spec.draft.subject,
        due_date=spec.draft.due_date.isoformat() if spec.draft.due_date else "",
        fire_ts=spec.fire_at.timestamp(),
        state="pending",
        draft=draft_to_json(spec.draft),
        source_event_id=source_event_id,
        created_ts=now_ts,
        done_ts=None,
    )
    if _insert_ignore(session, Timer, values) is None:
        session.execute(
            sa.update(Timer)
            .where(Timer.key == spec.key, Timer.state == "cancelled")
            .values(
                state="pending", fire_ts=values["fire_ts"], draft=values["draft"], group_key=spec.group, done_ts=None
            )
        )


def upsert_timers(session: Session, specs: Sequence[tuple[TimerSpec, str]], *, now_ts: float) -> None:
    """Bulk upsert_timer of (spec, source event id): new keys inserted, cancelled ones with the same key
    revived, fired ones left alone."""
    if not specs:
        return
    rows = {
        s.key: dict(
            key=s.key,
            group_key=s.group,
            kind=s.draft.kind.value,
            recipient=s.draft.recipient,
            subject=s.draft.subject,
            due_date=s.draft.due_date.isoformat() if s.draft.due_date else "",
            fire_ts=s.fire_at.timestamp(),
            state="pending",
            draft=draft_to_json(s.draft),
            source_event_id=event_id,
            created_ts=now_ts,
            done_ts=None,
        )
        for s, event_id in specs
    }
    table = cast(sa.Table, Timer.__table__)
    inserted = {key for (key,) in _bulk_insert_ignore(session, table, list(rows.values()), table.c.key)}
    revive = [
        dict(k=key, f=rows[key]["fire_ts"], d=rows[key]["draft"], g=rows[key]["group_key"])
        for key in set(rows) - inserted
    ]
    if revive:
        session.execute(
            table.update()
            .where(table.c.key == sa.bindparam("k"), table.c.state == "cancelled")
            .values(
                state="pending",
                fire_ts=sa.bindparam("f"),
                draft=sa.bindparam("d"),
                group_key=sa.bindparam("g"),
                done_ts=None,
            ),
            revive,
        )


def add_alert(session: Session, alert: AlertDraft, *, now_ts: float) -> int | None:
    aid = _insert_ignore(
        session,
        OperatorAlert,
        dict(
            key=alert.key,
            code=alert.code,
            message=alert.message,
            subject=alert.subject,
            year=alert.year,
            created_ts=now_ts,
        ),
    )
    if aid is not None:
        from bjsv.notify.v1 import events_pb2

        record_event(
            session,
            type="operator.alerted",
            subject=f"operatorAlerts/{aid}",
            payload=events_pb2.OperatorAlerted(
                alert=f"operatorAlerts/{aid}",
                code=alert.code,
                message=alert.message,
                subject=alert.subject,
                year=alert.year,
            ),
        )
    return aid


def apply_reaction(
    session: Session,
    /,
    *,
    reaction: Reaction,
    now_ts: float,
    wall_ts: float,
    channels: Sequence[Channel],
    consumer: str = "",
    event_id: str = "",
    event_wall_ts: float | None = None,
) -> list[int] | None:
    """Apply everything one event causes in this transaction; None when the event was already handled."""
    if consumer and not mark_processed(session, consumer=consumer, event_id=event_id):
        return None
    if reaction.cancel_groups:
        session.execute(
            sa.update(Timer)
            .where(Timer.group_key.in_(reaction.cancel_groups), Timer.state == "pending")
            .values(state="cancelled", done_ts=now_ts)
        )
    for prefix in reaction.cancel_group_prefixes:
        session.execute(
            sa.update(Timer)
            .where(Timer.group_key.startswith(prefix, autoescape=True), Timer.state == "pending")
            .values(state="cancelled", done_ts=now_ts)
        )
    upsert_timers(session, [(t, event_id) for t in reaction.timers], now_ts=now_ts)
    created = []
    for draft in reaction.notifications:
        nid = add_notification(
            session,
            draft,
            now_ts=now_ts,
            wall_ts=wall_ts,
            channels=channels,
            source_event_id=event_id,
            event_wall_ts=event_wall_ts,
            attachment_request=reaction.attachment_requests.get(draft.key),
        )
        if nid is not None:
            created.append(nid)
    for alert in reaction.alerts:
        add_alert(session, alert, now_ts=now_ts)
    for deadline in reaction.blocked:
        _insert_ignore(
            session,
            BlockedDeadline,
            dict(key=f"{deadline.group}", deadline=deadline_to_json(deadline), created_ts=now_ts, resolved_ts=None),
            returning=False,
        )
    return created


def apply_reactions(
    session: Session,
    /,
    *,
    items: Sequence[tuple[str, Reaction | None, float | None]],
    consumer: str,
    now_ts: float,
    wall_ts: float,
    channels: Sequence[Channel],
) -> list[int]:
    """A fetched batch of events in ONE transaction: (event id, reaction or None, event wall time) each.

    Bulk statements (one SELECT/INSERT per table per batch, not per event): statement construction, not
    SQLite, is what costs on a busy 2-core box.
    """
    processed = platform_tables(Base.metadata)[PROCESSED]
    ids = [event_id for event_id, _, _ in items]
    seen = set(
        session.execute(
            sa.select(processed.c.event_id).where(processed.c.consumer == consumer, processed.c.event_id.in_(ids))
        ).scalars()
    )
    fresh, batch_ids = [], set()
    for event_id, reaction, event_wall_ts in items:
        if event_id in seen or event_id in batch_ids:
            continue
        batch_ids.add(event_id)
        fresh.append((event_id, reaction or Reaction(), event_wall_ts))
    if not fresh:
        return []
    now = dt.datetime.now(dt.UTC)
    session.execute(processed.insert(), [dict(consumer=consumer, event_id=e, processed_at=now) for e, _, _ in fresh])
    drafts: list[tuple[NotificationDraft, str, float | None, bytes | None]] = []
    timers: list[tuple[TimerSpec, str]] = []  # consecutive timer upserts are merged into bulk statements
    for event_id, reaction, event_wall_ts in fresh:
        if reaction.cancel_groups or reaction.cancel_group_prefixes or reaction.alerts or reaction.blocked:
            # keep the event order: timers of earlier events first, then this event's cancellations
            upsert_timers(session, timers, now_ts=now_ts)
            timers = []
            apply_reaction(
                session,
                reaction=Reaction(
                    cancel_groups=reaction.cancel_groups,
                    cancel_group_prefixes=reaction.cancel_group_prefixes,
                    alerts=reaction.alerts,
                    blocked=reaction.blocked,
                ),
                now_ts=now_ts,
                wall_ts=wall_ts,
                channels=channels,
                event_id=event_id,
            )
        timers += [(t, event_id) for t in reaction.timers]
        drafts += [
            (d, event_id, event_wall_ts, reaction.attachment_requests.get(d.key)) for d in reaction.notifications
        ]
    upsert_timers(session, timers, now_ts=now_ts)
    return add_notifications(session, drafts, now_ts=now_ts, wall_ts=wall_ts, channels=channels)


def add_notifications(
    session: Session,
    drafts: Sequence[tuple[NotificationDraft, str, float | None, bytes | None]],
    *,
    now_ts: float,
    wall_ts: float,
    channels: Sequence[Channel],
) -> list[int]:
    """Bulk form of add_notification: one multi-row INSERT … ON CONFLICT DO NOTHING RETURNING."""
    rows, keys = [], set()
    for d, event_id, event_wall_ts, attachment in drafts:
        if d.key in keys:
            continue
        keys.add(d.key)
        rows.append(_notification_row(d, event_id, event_wall_ts, attachment, now_ts=now_ts, wall_ts=wall_ts))
    if not rows:
        return []
    table = cast(sa.Table, Notification.__table__)
    created = {key: nid for nid, key in _bulk_insert_ignore(session, table, rows, table.c.id, table.c.key)}
    by_key = {d.key: d for d, _, _, _ in drafts}
    deliveries = [
        dict(
            notification_id=nid,
            channel=c.value,
            key=f"{key}#{c.value}",
            state=DeliveryState.PENDING.value,
            attempts=0,
            next_attempt_ts=wall_ts,
            lease_until_ts=None,
            claimed_by="",
            last_error="",
        )
        for key, nid in created.items()
        for c in by_key[key].channels
        if c in channels
    ]
    if deliveries:
        session.execute(sa.insert(Delivery), deliveries)
    return sorted(created.values())


def fire_due_timers(
    session: Session,
    /,
    *,
    now_ts: float | Callable[[ClockSetting | None], float],
    wall_ts: float,
    channels: Sequence[Channel],
    limit: int = 200,
) -> list[int]:
    """Turn due timers into notifications, exactly once: the timer is marked fired in the same transaction.

    ``now_ts`` may be a function of the shared clock row, read inside this transaction: a tick that was
    queued behind a SetClock then uses the new clock, never the one it started with.
    """
    if callable(now_ts):
        now_ts = now_ts(session.get(ClockSetting, 1))
    q = sa.select(Timer.id, Timer.draft).where(Timer.state == "pending", Timer.fire_ts <= now_ts)
    rows = session.execute(_lock(q.order_by(Timer.fire_ts, Timer.id).limit(limit), session)).all()
    created = add_notifications(
        session,
        [(draft_from_json(d), f"timers/{tid}", None, None) for tid, d in rows],
        now_ts=now_ts,
        wall_ts=wall_ts,
        channels=channels,
    )
    if rows:
        session.execute(
            sa.update(Timer)
            .where(Timer.id.in_([r[0] for r in rows]), Timer.state == "pending")
            .values(state="fired", done_ts=now_ts)
        )
    return created


def count_due_timers(session: Session, /, *, now_ts: float) -> int:
    q = sa.select(sa.func.count()).select_from(Timer).where(Timer.state == "pending", Timer.fire_ts <= now_ts)
    return session.execute(q).scalar_one()


def unresolved_blocked(session: Session, /) -> list[tuple[int, FormDeadline]]:
    rows = session.execute(
        sa.select(BlockedDeadline.id, BlockedDeadline.deadline)
        .where(BlockedDeadline.resolved_ts.is_(None))
        .order_by(BlockedDeadline.id)
    ).all()
    return [(i, deadline_from_json(t)) for i, t in rows]


def resolve_blocked(
    session: Session,
    /,
    *,
    blocked_id: int,
    reaction: Reaction,
    now_ts: float,
    wall_ts: float,
    channels: Sequence[Channel],
) -> bool:
    done = _changed(
        session,
        sa.update(BlockedDeadline)
        .where(BlockedDeadline.id == blocked_id, BlockedDeadline.resolved_ts.is_(None))
        .values(resolved_ts=now_ts),
    )
    if not done:
        return False
    apply_reaction(session, reaction=reaction, now_ts=now_ts, wall_ts=wall_ts, channels=channels)
    return True


# -- inbox -----------------------------------------------------------------------------------------------


def _inbox_filter(recipient: str, unread_only: bool, kinds: Iterable[str], subject: str) -> list:
    conds = [Notification.recipient == recipient]
    if unread_only:
        conds.append(Notification.read_ts.is_(None))
    kinds = list(kinds)
    if kinds:
        conds.append(Notification.kind.in_(kinds))
    if subject:
        conds.append(Notification.subject == subject)
    return conds


def list_notifications(
    session: Session,
    /,
    *,
    recipient: str,
    unread_only: bool,
    kinds: Iterable[str],
    subject: str,
    before_id: int | None,
    limit: int,
) -> tuple[list[Notification], int, int]:
    conds = _inbox_filter(recipient, unread_only, kinds, subject)
    q = sa.select(Notification).where(*conds)
    if before_id is not None:
        q = q.where(Notification.id < before_id)
    rows = list(session.execute(q.order_by(Notification.id.desc()).limit(limit)).scalars())
    total = session.execute(sa.select(sa.func.count()).select_from(Notification).where(*conds)).scalar_one()
    unread = session.execute(
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(Notification.recipient == recipient, Notification.read_ts.is_(None))
    ).scalar_one()
    return rows, total, unread


def deliveries_of(session: Session, /, notification_ids: list[int]) -> dict[int, list[Delivery]]:
    out: dict[int, list[Delivery]] = {i: [] for i in notification_ids}
    if notification_ids:
        for d in session.execute(
            sa.select(Delivery).where(Delivery.notification_id.in_(notification_ids)).order_by(Delivery.id)
        ).scalars():
            out[d.notification_id].append(d)
    return out


def get_notifications(session: Session, /, ids: list[int]) -> list[Notification]:
    if not ids:
        return []
    return list(
        session.execute(sa.select(Notification).where(Notification.id.in_(ids)).order_by(Notification.id)).scalars()
    )


def mark_read(session: Session, /, *, recipient: str, ids: list[int], all_unread: bool, now_ts: float) -> int:
    q = sa.update(Notification).where(Notification.recipient == recipient, Notification.read_ts.is_(None))
    if not all_unread:
        q = q.where(Notification.id.in_(ids))
    return _changed(session, q.values(read_ts=now_ts))


def count_notifications(session: Session, /, *, recipient: str | None = None) -> int:
    q = sa.select(sa.func.count()).select_from(Notification)
    if recipient:
        q = q.where(Notification.recipient == recipient)
    return session.execute(q).scalar_one()


def lag_samples(session: Session, /) -> list[float]:
    rows = session.execute(
        sa.select(Notification.inserted_wall_ts - Notification.event_wall_ts).where(
            Notification.event_wall_ts.is_not(None)
        )
    ).all()
    return [r[0] for r in rows]


# -- contacts, alerts, timers, clock ---------------------------------------------------------------------


def set_contact(session: Session, /, *, recipient: str, email: str, display_name: str, now_ts: float) -> Contact:
    c = session.get(Contact, recipient)
    if c is None:
        c = Contact(recipient=recipient, email=email, display_name=display_name, updated_ts=now_ts)
        session.add(c)
    else:
        c.email, c.display_name, c.updated_ts = email, display_name or c.display_name, now_ts
    session.flush()
    return c


def list_contacts(session: Session, /, *, after: str, limit: int) -> list[Contact]:
    return list(
        session.execute(
            sa.select(Contact).where(Contact.recipient > after).order_by(Contact.recipient).limit(limit)
        ).scalars()
    )


def list_alerts(session: Session, /, *, code: str, before_id: int | None, limit: int) -> list[OperatorAlert]:
    q = sa.select(OperatorAlert)
    if code:
        q = q.where(OperatorAlert.code == code)
    if before_id is not None:
        q = q.where(OperatorAlert.id < before_id)
    return list(session.execute(q.order_by(OperatorAlert.id.desc()).limit(limit)).scalars())


def list_timers(
    session: Session,
    /,
    *,
    subject: str,
    state: str,
    after: tuple[float, int] | None,
    limit: int,
    until_ts: float | None = None,
    recipient: str = "",
) -> list[Timer]:
    q = sa.select(Timer)
    if subject:
        q = q.where(Timer.subject == subject)
    if state:
        q = q.where(Timer.state == state)
    if recipient:
        q = q.where(Timer.recipient == recipient)
    if until_ts is not None:
        q = q.where(Timer.fire_ts <= until_ts)
    if after is not None:
        q = q.where(sa.or_(Timer.fire_ts > after[0], sa.and_(Timer.fire_ts == after[0], Timer.id > after[1])))
    return list(session.execute(q.order_by(Timer.fire_ts, Timer.id).limit(limit)).scalars())


def get_clock(session: Session, /) -> ClockSetting | None:
    return session.get(ClockSetting, 1)


def set_clock(session: Session, /, *, mode: str, fixed_ts: float | None, offset_seconds: float, wall_ts: float) -> None:
    c = session.get(ClockSetting, 1)
    if c is None:
        session.add(ClockSetting(id=1, mode=mode, fixed_ts=fixed_ts, offset_seconds=offset_seconds, updated_ts=wall_ts))
    else:
        c.mode, c.fixed_ts, c.offset_seconds, c.updated_ts = mode, fixed_ts, offset_seconds, wall_ts
