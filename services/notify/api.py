"""gRPC servicer of bjsv.notify.v1.NotifyService: thin, proto ⇄ domain/storage (to_proto_* live here)."""

from __future__ import annotations

import datetime as dt
import json
from typing import cast

from google.protobuf.timestamp_pb2 import Timestamp

from bjsv.notify.v1 import notify_pb2, notify_pb2_grpc
from common import api
from common.auth import personal, scope
from common.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, PreconditionViolation
from services.notify.domain.clock import ClockMode
from services.notify.domain.model import Kind
from services.notify.engine import Notifier
from services.notify.storage import deliveries as delivery_repo
from services.notify.storage import models
from services.notify.storage import repository as repo

# -- converters ------------------------------------------------------------------------------------------


def ts(epoch: float | None) -> Timestamp | None:
    if epoch is None:
        return None
    t = Timestamp()
    t.FromDatetime(dt.datetime.fromtimestamp(epoch, dt.UTC))
    return t


# EnumTypeWrapper.Value() is typed as returning int; the generated constructors want the enum type (an int).
def to_proto_kind(kind: str) -> notify_pb2.NotificationKind:
    return cast(notify_pb2.NotificationKind, notify_pb2.NotificationKind.Value(f"NOTIFICATION_KIND_{kind.upper()}"))


def from_proto_kind(value: int) -> str:
    try:
        name = notify_pb2.NotificationKind.Name(value)
        return Kind(name.removeprefix("NOTIFICATION_KIND_").lower()).value
    except ValueError:
        raise InvalidArgument("UNKNOWN_KIND", [FieldViolation("kinds", f"未知的通知类型：{value}")]) from None


def to_proto_channel(channel: str) -> notify_pb2.Channel:
    return cast(notify_pb2.Channel, notify_pb2.Channel.Value(f"CHANNEL_{channel.upper()}"))


def from_proto_channel(value: int) -> str:
    return notify_pb2.Channel.Name(value).removeprefix("CHANNEL_").lower()


def to_proto_delivery(d: models.Delivery) -> notify_pb2.Delivery:
    return notify_pb2.Delivery(
        channel=to_proto_channel(d.channel),
        state=cast(notify_pb2.DeliveryState, notify_pb2.DeliveryState.Value(f"DELIVERY_STATE_{d.state.upper()}")),
        attempts=d.attempts,
        last_error=d.last_error,
        delivered_time=ts(d.delivered_ts),
    )


def to_proto_notification(n: models.Notification, deliveries: list[models.Delivery]) -> notify_pb2.Notification:
    inbox = notify_pb2.Delivery(
        channel=notify_pb2.CHANNEL_INBOX,
        state=notify_pb2.DELIVERY_STATE_DELIVERED,
        attempts=1,
        delivered_time=ts(n.created_ts),
    )
    return notify_pb2.Notification(
        name=f"notifications/{n.id}",
        recipient=n.recipient,
        kind=to_proto_kind(n.kind),
        title=n.title,
        body=n.body,
        articles=json.loads(n.articles),
        subject=n.subject,
        due_date=n.due_date,
        idempotency_key=n.key,
        create_time=ts(n.created_ts),
        read_time=ts(n.read_ts),
        document_id=n.document_id,
        source_event_id=n.source_event_id,
        deliveries=[inbox, *(to_proto_delivery(d) for d in deliveries)],
    )


def to_proto_alert(a: models.OperatorAlert) -> notify_pb2.OperatorAlert:
    return notify_pb2.OperatorAlert(
        name=f"operatorAlerts/{a.id}",
        code=a.code,
        message=a.message,
        subject=a.subject,
        year=a.year,
        create_time=ts(a.created_ts),
    )


def to_proto_timer(t: models.Timer) -> notify_pb2.Timer:
    return notify_pb2.Timer(
        name=f"timers/{t.id}",
        key=t.key,
        kind=to_proto_kind(t.kind),
        recipient=t.recipient,
        subject=t.subject,
        fire_time=ts(t.fire_ts),
        state=cast(notify_pb2.TimerState, notify_pb2.TimerState.Value(f"TIMER_STATE_{t.state.upper()}")),
        due_date=t.due_date,
    )


def to_proto_contact(c: models.Contact) -> notify_pb2.Contact:
    return notify_pb2.Contact(recipient=c.recipient, email=c.email, display_name=c.display_name)


def _masked(c: notify_pb2.Contact) -> notify_pb2.Contact:
    """E-mail addresses are personal information: in full only for their own organisation (个人信息保护法)."""
    if not scope.sees_personal(scope.Owner.of(c.recipient)):
        c.email = personal.mask_email(c.email)
    return c


def require_recipient(value: str, field: str = "recipient") -> str:
    if not value or "/" not in value:
        raise InvalidArgument(
            "RECIPIENT_REQUIRED", [FieldViolation(field, "收件机构必填，如 agencies/08、institutions/1100012001")]
        )
    return value


# -- servicer --------------------------------------------------------------------------------------------


class NotifyServicer(notify_pb2_grpc.NotifyServiceServicer):
    def __init__(self, notifier: Notifier) -> None:
        self.n = notifier
        self.db = notifier.db

    async def _notifications(self, rows: list[models.Notification]) -> list[notify_pb2.Notification]:
        deliveries = await self.db.read(repo.deliveries_of, [r.id for r in rows])
        return [to_proto_notification(r, deliveries.get(r.id, [])) for r in rows]

    async def ListNotifications(self, request, context):
        recipient = require_recipient(request.recipient)
        scope.require(scope.Owner.of(recipient), recipient)  # one's own inbox (第二十三条)
        limit = api.page_size(request.page_size)
        before = api.decode_page_token(request.page_token, listing="notify.ListNotifications", kind=int)
        kinds = [from_proto_kind(k) for k in request.kinds if k]
        rows, total, unread = await self.db.read(
            repo.list_notifications,
            recipient=recipient,
            unread_only=request.unread_only,
            kinds=kinds,
            subject=request.subject,
            before_id=before,
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return notify_pb2.ListNotificationsResponse(
            notifications=await self._notifications(rows),
            total_size=total,
            unread_count=unread,
            next_page_token=api.encode_page_token(rows[-1].id, listing="notify.ListNotifications") if more else "",
        )

    async def MarkRead(self, request, context):
        recipient = require_recipient(request.recipient)
        scope.require(scope.Owner.of(recipient), recipient)
        if not request.names and not request.all_unread:
            raise InvalidArgument("NOTHING_TO_MARK", [FieldViolation("names", "请指定通知或 all_unread")])
        ids = [api.parse_id(n, "notifications", field="names") for n in request.names]
        count = await self.db.write(
            repo.mark_read, recipient=recipient, ids=ids, all_unread=request.all_unread, now_ts=self.n.clock.timestamp()
        )
        return notify_pb2.MarkReadResponse(marked_count=count)

    async def Preview(self, request, context):
        if not request.HasField("at_time"):
            raise InvalidArgument("AT_TIME_REQUIRED", [FieldViolation("at_time", "预览时间必填")])
        await self.n.refresh_clock()
        until = request.at_time.seconds + request.at_time.nanos / 1e9
        timers = await self.db.read(
            repo.list_timers,
            subject="",
            state="pending",
            after=None,
            limit=10000,
            until_ts=until,
            recipient=request.recipient,
        )
        channels = [notify_pb2.CHANNEL_INBOX, *(to_proto_channel(c.value) for c in self.n.channels)]
        items = []
        for t in timers:
            draft = repo.draft_from_json(t.draft)
            items.append(
                notify_pb2.PreviewItem(
                    fire_time=ts(t.fire_ts),
                    recipient=t.recipient,
                    kind=to_proto_kind(t.kind),
                    title=draft.title,
                    body=draft.body,
                    idempotency_key=t.key,
                    channels=[
                        c
                        for c in channels
                        if c == notify_pb2.CHANNEL_INBOX or from_proto_channel(c) in {ch.value for ch in draft.channels}
                    ],
                )
            )
        alerts = await self.db.read(repo.list_alerts, code="", before_id=None, limit=100)
        return notify_pb2.PreviewResponse(
            from_time=ts(self.n.clock.timestamp()), items=items, alerts=[to_proto_alert(a) for a in alerts]
        )

    async def SetContact(self, request, context):
        c = request.contact
        recipient = require_recipient(c.recipient, "contact.recipient")
        scope.require(scope.Owner.of(recipient), recipient)  # each organisation keeps its own address
        email = c.email.strip()
        if email and ("@" not in email or " " in email or len(email) > 254):
            raise InvalidArgument("INVALID_EMAIL", [FieldViolation("contact.email", f"电子邮件地址无效：{email!r}")])
        row = await self.db.write(
            repo.set_contact,
            recipient=recipient,
            email=email,
            display_name=c.display_name.strip(),
            now_ts=self.n.clock.timestamp(),
        )
        return notify_pb2.SetContactResponse(contact=to_proto_contact(row))

    async def ListContacts(self, request, context):
        limit = api.page_size(request.page_size, default=100)
        after = api.decode_page_token(request.page_token, listing="notify.ListContacts", kind=str) or ""
        rows = await self.db.read(repo.list_contacts, after=after, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return notify_pb2.ListContactsResponse(
            contacts=[_masked(to_proto_contact(c)) for c in rows],
            next_page_token=api.encode_page_token(rows[-1].recipient, listing="notify.ListContacts") if more else "",
        )

    async def ListDeadLetters(self, request, context):
        limit = api.page_size(request.page_size, default=100)
        after = api.decode_page_token(request.page_token, listing="notify.ListDeadLetters", kind=int) or 0
        channel = from_proto_channel(request.channel) if request.channel else ""
        rows = await self.db.read(delivery_repo.list_dead_letters, channel=channel, after_id=after, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        out = [
            notify_pb2.DeadLetter(
                name=f"deadLetters/{d.id}",
                notification=f"notifications/{n.id}",
                recipient=n.recipient,
                channel=to_proto_channel(d.channel),
                attempts=d.attempts,
                reason=d.last_error,
                dead_letter_time=ts(d.dead_lettered_ts),
                idempotency_key=d.key,
            )
            for d, n in rows
        ]
        return notify_pb2.ListDeadLettersResponse(
            dead_letters=out,
            next_page_token=api.encode_page_token(rows[-1][0].id, listing="notify.ListDeadLetters") if more else "",
        )

    async def RetryDeadLetter(self, request, context):
        delivery_id = api.parse_id(request.name, "deadLetters")
        d = await self.db.write(delivery_repo.retry_dead_letter, delivery_id=delivery_id, wall_ts=self.n.wall())
        if d is None:
            raise NotFound(request.name)
        if d.state != "pending":
            raise FailedPrecondition(
                "NOT_DEAD_LETTERED",
                [
                    PreconditionViolation(
                        "bjsv.notify.dead-letter.state", request.name, f"该投递当前状态为 {d.state}，不是死信，无需重试"
                    )
                ],
            )
        self.n.wake_delivery()
        return notify_pb2.RetryDeadLetterResponse(delivery=to_proto_delivery(d))

    async def ListTimers(self, request, context):
        limit = api.page_size(request.page_size, default=100)
        after = api.decode_page_token(request.page_token, listing="notify.ListTimers", kind=list)
        state = notify_pb2.TimerState.Name(request.state).removeprefix("TIMER_STATE_").lower() if request.state else ""
        rows = await self.db.read(
            repo.list_timers,
            subject=request.subject,
            state=state,
            after=tuple(after) if after else None,
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return notify_pb2.ListTimersResponse(
            timers=[to_proto_timer(t) for t in rows],
            next_page_token=api.encode_page_token([rows[-1].fire_ts, rows[-1].id], listing="notify.ListTimers")
            if more
            else "",
        )

    async def ListOperatorAlerts(self, request, context):
        limit = api.page_size(request.page_size, default=100)
        before = api.decode_page_token(request.page_token, listing="notify.ListOperatorAlerts", kind=int)
        rows = await self.db.read(repo.list_alerts, code=request.code, before_id=before, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return notify_pb2.ListOperatorAlertsResponse(
            alerts=[to_proto_alert(a) for a in rows],
            next_page_token=api.encode_page_token(rows[-1].id, listing="notify.ListOperatorAlerts") if more else "",
        )

    def _clock_response(self, cls):
        return cls(now=ts(self.n.clock.timestamp()), mode=self.n.clock.mode.mode)

    async def GetClock(self, request, context):
        await self.n.refresh_clock()
        return self._clock_response(notify_pb2.GetClockResponse)

    async def SetClock(self, request, context):
        if request.reset:
            mode = ClockMode()
        elif request.HasField("fixed_time"):
            mode = ClockMode("fixed", request.fixed_time.seconds + request.fixed_time.nanos / 1e9, 0.0)
        elif request.offset_seconds:
            mode = ClockMode("offset", None, float(request.offset_seconds))
        else:
            raise InvalidArgument(
                "CLOCK_SETTING_REQUIRED", [FieldViolation("fixed_time", "请指定 fixed_time、offset_seconds 或 reset")]
            )
        await self.n.set_clock(mode)
        return self._clock_response(notify_pb2.SetClockResponse)

    async def RunDueTimers(self, request, context):
        await self.n.refresh_clock()
        await self.n.retry_blocked()  # a calendar configured since may unblock deadlines (D5)
        await self.n.check_calendar_horizon()
        ids = await self.n.fire_due()
        rows = await self.db.read(repo.get_notifications, ids)
        return notify_pb2.RunDueTimersResponse(fired_count=len(ids), notifications=await self._notifications(rows))
