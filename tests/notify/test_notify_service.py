"""Notify service end to end over real gRPC, a real nats-server and a real SMTP server.

Events are published exactly as the registry publishes them (EventEnvelope on bjsv.registry.<type>);
the service clock is moved with SetClock instead of sleeping.
"""

import datetime as dt
import os

import notify_support as support
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from notify_support import AGENCY, INSTITUTION, publish, wait_for

from bjsv.events.v1 import envelope_pb2
from bjsv.notify.v1 import events_pb2, notify_pb2
from common.clock import SHANGHAI
from tests import auth_support

pytestmark = pytest.mark.asyncio(loop_scope="session")

K = notify_pb2


def at(y, m, d, h=9, mi=0) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(dt.datetime(y, m, d, h, mi, tzinfo=SHANGHAI).astimezone(dt.UTC))
    return t


async def set_clock(env, y, m, d, h=9, mi=0):
    await env.stub.SetClock(K.SetClockRequest(fixed_time=at(y, m, d, h, mi)))


async def inbox(env, recipient, **kw):
    return await env.stub.ListNotifications(K.ListNotificationsRequest(recipient=recipient, page_size=500, **kw))


async def inbox_count(env, recipient, n):
    async def check():
        r = await inbox(env, recipient)
        return r if len(r.notifications) >= n else None

    return await wait_for(check, what=f"{n} notifications for {recipient}")


async def test_dispatch_created_tells_supervisors_and_institution_and_reminds_before_due_art23(notify_env):
    env = notify_env
    await set_clock(env, 2025, 9, 30, 18)
    await env.stub.SetContact(
        K.SetContactRequest(contact=K.Contact(recipient="supervisors/100", email="sup100@example.cn"))
    )
    sub = await env.nc.subscribe("bjsv.notify.inbox.supervisors.100")
    await publish(env.js, support.dispatch_created(1, end=dt.date(2025, 9, 30)))
    r = await inbox_count(env, "supervisors/100", 1)
    first = r.notifications[0]
    assert first.kind == K.NOTIFICATION_KIND_DISPATCH_CREATED
    assert "2025年10月14日" in first.body and "第二十三条" in first.body  # the due date the registry set (D5)
    inst = await inbox_count(env, INSTITUTION, 1)
    assert any("《北京市技能人才评价外督员情况反馈表》" in n.body for n in inst.notifications)
    timers = await env.stub.ListTimers(K.ListTimersRequest(subject="dispatches/1", state=K.TIMER_STATE_PENDING))
    reminders = [t for t in timers.timers if t.kind == K.NOTIFICATION_KIND_DEADLINE_REMINDER]
    # record reminder to both members + feedback reminders (one per supervisor) to the institution
    assert len(reminders) == 4
    assert {t.fire_time.ToDatetime(tzinfo=dt.UTC).astimezone(SHANGHAI) for t in reminders} == {
        dt.datetime(2025, 10, 11, 9, tzinfo=SHANGHAI)
    }  # the make-up Saturday after National Day

    await set_clock(env, 2025, 10, 11, 9, 0)
    await env.stub.RunDueTimers(K.RunDueTimersRequest())  # (the scheduler loop may have fired them already)
    r = await inbox_count(env, "supervisors/100", 2)
    reminder = next(n for n in r.notifications if n.kind == K.NOTIFICATION_KIND_DEADLINE_REMINDER)
    for text in (
        "2025年第三批电工四级认定",
        "《北京市职业技能等级认定督导记录表》（附件3）",
        "2025年10月14日",
        "第二十三条",
        "距截止还有2个工作日",
    ):
        assert text in reminder.body
    # e-mail (contact set) and the per-recipient NATS subject
    mails = await wait_for(lambda: _async(len(env.smtp.by_recipient("sup100@example.cn")) >= 2), what="2 mails")
    assert mails
    msgs = [m for m in env.smtp.by_recipient("sup100@example.cn")]
    assert {str(m["X-Bjsv-Idempotency-Key"]).strip() for m in msgs} == {n.idempotency_key for n in r.notifications}
    got = []
    while len(got) < 2:
        m = await sub.next_msg(timeout=5)
        e = envelope_pb2.EventEnvelope.FromString(m.data)
        im = events_pb2.InboxMessage()
        e.payload.Unpack(im)
        got.append(im)
    assert {g.recipient for g in got} == {"supervisors/100"}
    await sub.unsubscribe()


async def _async(value):
    return value


async def test_record_submitted_stops_the_clock_and_confirms_receipt_to_dispatching_agency_art23(notify_env):
    env = notify_env
    await set_clock(env, 2025, 9, 30, 18)
    await publish(
        env.js,
        support.dispatch_created(2, end=dt.date(2025, 9, 30), record_due="2025-10-14", feedback_due="2025-10-14"),
    )
    await inbox_count(env, "supervisors/200", 1)
    await publish(env.js, support.record_submitted(2, due="2025-10-14"))

    async def receipt():
        r = await inbox(env, AGENCY, subject="records/2")
        return r.notifications[0] if r.notifications else None

    note = await wait_for(receipt, what="receipt")
    assert note.kind == K.NOTIFICATION_KIND_SUBMISSION_RECEIVED and "已收到" in note.body
    timers = await env.stub.ListTimers(K.ListTimersRequest(subject="dispatches/2"))
    record_timers = [t for t in timers.timers if "/record/" in t.key]
    assert record_timers and all(t.state == K.TIMER_STATE_CANCELLED for t in record_timers)
    feedback_timers = [t for t in timers.timers if "/feedback/" in t.key]
    assert feedback_timers and all(t.state == K.TIMER_STATE_PENDING for t in feedback_timers)
    # the feedback (Annex 4) is still missing: on 10-15 the dispatching agency hears it is overdue
    await set_clock(env, 2025, 10, 15, 9, 0)
    await env.stub.RunDueTimers(K.RunDueTimersRequest())
    overdue = await inbox(env, AGENCY, subject="dispatches/2", kinds=[K.NOTIFICATION_KIND_DEADLINE_OVERDUE])
    assert len(overdue.notifications) == 2  # one Annex 4 per external supervisor, no Annex 3
    assert all(
        "《北京市技能人才评价外督员情况反馈表》" in n.body and "逾期1个工作日" in n.body for n in overdue.notifications
    )


async def test_redelivered_or_republished_event_never_notifies_twice(notify_env):
    env = notify_env
    await set_clock(env, 2025, 9, 30, 18)
    ev = support.dispatch_created(3, end=dt.date(2025, 9, 30))
    await publish(env.js, ev)
    await inbox_count(env, "supervisors/300", 1)
    again = envelope_pb2.EventEnvelope()
    again.CopyFrom(ev)
    again.event_id = "republished-with-a-new-id"
    await publish(env.js, again)
    await publish(env.js, support.badge_filed(3))  # a later event, to know the earlier ones were consumed
    await inbox_count(env, INSTITUTION, 1)

    async def filed():
        r = await inbox(env, INSTITUTION, kinds=[K.NOTIFICATION_KIND_BADGE_FILED])
        return r.notifications

    await wait_for(filed, what="badge filed")
    r = await inbox(env, "supervisors/300")
    assert len(r.notifications) == 1, [(n.kind, n.title) for n in r.notifications]
    timers = await env.stub.ListTimers(K.ListTimersRequest(subject="dispatches/3"))
    assert len({t.key for t in timers.timers}) == len(timers.timers)


async def test_spring_festival_2026_deadline_due_2026_02_27_d5(notify_env):
    env = notify_env
    await set_clock(env, 2026, 2, 13, 18)
    await publish(env.js, support.dispatch_created(4, end=dt.date(2026, 2, 13)))
    r = await inbox_count(env, "supervisors/400", 1)
    assert "2026年2月27日" in r.notifications[0].body
    timers = await env.stub.ListTimers(K.ListTimersRequest(subject="dispatches/4", state=K.TIMER_STATE_PENDING))
    due = {t.due_date for t in timers.timers}
    assert due == {"2026-02-27"}


async def test_notices_in_uncovered_2027_raise_an_operator_alert_not_a_weekday_guess_d5(notify_env):
    env = notify_env
    await set_clock(env, 2026, 12, 21, 18)
    # due 2026-12-28 (the registry's D5 date); overdue notices every 5 working days run into 2027
    await publish(env.js, support.dispatch_created(5, end=dt.date(2026, 12, 21), record_due="2026-12-28"))
    await inbox_count(env, "supervisors/500", 1)

    async def alert():
        r = await env.stub.ListOperatorAlerts(K.ListOperatorAlertsRequest(code="CALENDAR_NOT_COVERED"))
        return [a for a in r.alerts if a.subject == "dispatches/5"]

    alerts = await wait_for(alert, what="calendar alert")
    assert alerts[0].year == 2027 and "2027年法定工作日历尚未配置" in alerts[0].message

    async def fire_years() -> set[int]:
        timers = await env.stub.ListTimers(K.ListTimersRequest(subject="dispatches/5", state=K.TIMER_STATE_PENDING))
        return {t.fire_time.ToDatetime(tzinfo=dt.UTC).astimezone(SHANGHAI).year for t in timers.timers}

    assert await fire_years() == {2026}  # the 2026 notices stand; nothing guessed in 2027
    preview = await env.stub.Preview(K.PreviewRequest(at_time=at(2027, 1, 31)))
    assert any(a.year == 2027 for a in preview.alerts)

    # the operator adds 2027 to the configured calendar file: the notices of the blocked deadline are scheduled
    cal, before = env.calendar_file, env.calendar_file.read_text()
    cal.write_text("2027:\n  holidays: [2027-01-01]\n  workdays: []\n")
    later = cal.stat().st_mtime + 5  # a later modification time, whatever the file system's resolution
    os.utime(cal, (later, later))
    try:
        await env.stub.RunDueTimers(K.RunDueTimersRequest())
        assert await fire_years() == {2026, 2027}
    finally:  # the module's later tests see the calendar the service started with
        cal.write_text(before)
        os.utime(cal, (later + 5, later + 5))


async def test_appointment_term_end_and_age_limit_notices_go_to_appointing_org_art13_art9(notify_env):
    env = notify_env
    await set_clock(env, 2025, 1, 1, 10)
    from bjsv.registry.v1 import registry_pb2

    await publish(
        env.js,
        support.appointment_started(
            9001,
            born="1961-03-10",
            gender=registry_pb2.GENDER_MALE,
            start="2025-01-01",
            end="2027-12-31",
            org="agencies/05",
        ),
    )
    r = await inbox_count(env, "agencies/05", 1)
    assert r.notifications[0].kind == K.NOTIFICATION_KIND_AGE_LIMIT_IN_TERM
    assert "2027年3月10日" in r.notifications[0].body and "第九条" in r.notifications[0].body
    timers = await env.stub.ListTimers(K.ListTimersRequest(subject="supervisors/9001"))
    expiry = sorted(
        t.fire_time.ToDatetime(tzinfo=dt.UTC).astimezone(SHANGHAI).date()
        for t in timers.timers
        if t.kind == K.NOTIFICATION_KIND_APPOINTMENT_EXPIRING
    )
    assert expiry == [dt.date(2027, 10, 2), dt.date(2027, 12, 1), dt.date(2027, 12, 24)]


async def test_inbox_filters_pagination_and_mark_read(notify_env):
    env = notify_env
    inst = "institutions/1100019999"
    for i in range(5):
        await publish(env.js, support.badge_filed(100 + i, institution=inst))
    await inbox_count(env, inst, 5)
    page1 = await env.stub.ListNotifications(K.ListNotificationsRequest(recipient=inst, page_size=2))
    assert len(page1.notifications) == 2 and page1.total_size == 5 and page1.next_page_token
    page2 = await env.stub.ListNotifications(
        K.ListNotificationsRequest(recipient=inst, page_size=2, page_token=page1.next_page_token)
    )
    assert {n.name for n in page1.notifications}.isdisjoint({n.name for n in page2.notifications})
    as_inst = auth_support.bearer(inst, "institution")  # only the recipient marks its inbox read
    marked = await env.stub.MarkRead(
        K.MarkReadRequest(recipient=inst, names=[page1.notifications[0].name]), metadata=as_inst
    )
    assert marked.marked_count == 1
    unread = await env.stub.ListNotifications(K.ListNotificationsRequest(recipient=inst, unread_only=True))
    assert unread.total_size == 4 and unread.unread_count == 4
    again = await env.stub.MarkRead(K.MarkReadRequest(recipient=inst, all_unread=True), metadata=as_inst)
    assert again.marked_count == 4
    body = page1.notifications[0].body
    assert "报市鉴定管理中心备案" in body and "第十二条" in body


async def test_missing_recipient_is_invalid_argument(notify_env):
    import grpc

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify_env.stub.ListNotifications(K.ListNotificationsRequest())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_cli_notify_preview_shows_what_would_be_sent_and_sends_nothing(notify_env):
    import asyncio
    import json

    from typer.testing import CliRunner

    from supervisionctl.notify_cmds import app

    env = notify_env
    await set_clock(env, 2025, 9, 30, 18)
    await publish(env.js, support.dispatch_created(6, end=dt.date(2025, 9, 30)))
    await inbox_count(env, "supervisors/600", 1)
    run_env = {"BJSV_NOTIFY_TARGET": f"127.0.0.1:{env.port}"}
    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["preview", "--at", "2025-10-12", "--recipient", "supervisors/600", "--json"],
        env=run_env,
    )
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)["items"]
    assert [i["kind"] for i in items] == ["NOTIFICATION_KIND_DEADLINE_REMINDER"]
    assert "2025年10月14日" in items[0]["body"] and "第二十三条" in items[0]["body"]
    table = await asyncio.to_thread(CliRunner().invoke, app, ["preview", "--at", "2025-10-14"], env=run_env)
    assert table.exit_code == 0 and "今日截止" in table.output
    assert (await inbox(env, "supervisors/600")).total_size == 1  # nothing was sent
    bad = await asyncio.to_thread(CliRunner().invoke, app, ["preview", "--at", "tomorrow"], env=run_env)
    assert bad.exit_code == 2


async def test_operator_is_alerted_60_days_before_deadlines_reach_an_uncovered_year_d5(notify_env):
    env = notify_env
    await set_clock(env, 2026, 11, 15, 9)
    await env.stub.RunDueTimers(K.RunDueTimersRequest())
    r = await env.stub.ListOperatorAlerts(K.ListOperatorAlertsRequest(code="CALENDAR_NOT_COVERED"))
    horizon = [a for a in r.alerts if a.subject == "calendars/2027"]
    assert len(horizon) == 1 and horizon[0].year == 2027
    await env.stub.RunDueTimers(K.RunDueTimersRequest())  # raised once, not on every tick
    r = await env.stub.ListOperatorAlerts(K.ListOperatorAlertsRequest(code="CALENDAR_NOT_COVERED"))
    assert len([a for a in r.alerts if a.subject == "calendars/2027"]) == 1
