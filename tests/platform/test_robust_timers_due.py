"""notify's "timers due" gauge (issue 13 item 7): pending timers whose time has come are counted on /metrics
by a sampler apart from the scheduler, so a scheduler that does not fire them shows as a non-zero number.

The scheduler's tick is set to an hour, so the due timer written into notify's database waits there until
RunDueTimers fires it (第二十三条 reminders are such timers)."""

from __future__ import annotations

import sqlite3
import time
import urllib.request

import pytest

from bjsv.notify.v1 import notify_pb2, notify_pb2_grpc
from services.notify.domain.model import Kind, NotificationDraft
from services.notify.storage.repository import draft_to_json
from supervisionctl.stack import Stack
from tests import auth_support
from tests.conftest import stack_config


def timers_due(stack: Stack) -> float | None:
    url = f"http://127.0.0.1:{stack.config.metrics_ports['notify']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("bjsv_notify_timers_due "):
                return float(line.split()[1])
    return None


def wait_for(stack: Stack, value: float, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while (seen := timers_due(stack)) != value:
        assert time.monotonic() < deadline, f"bjsv_notify_timers_due is {seen}, expected {value}"
        time.sleep(0.3)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_due_timer_the_scheduler_has_not_fired_shows_in_the_timers_due_gauge(tmp_path):
    stack = Stack(stack_config(tmp_path, BJSV_NOTIFY_TICK_INTERVAL="3600"), services=("notify",))
    stack.start(timeout=60)
    try:
        wait_for(stack, 0.0)
        draft = NotificationDraft(
            key="test-reminder-1", recipient="agencies/08", kind=next(iter(Kind)), title="提醒", body="请按时提交",
            articles=("第二十三条",), subject="dispatches/1", channels=(),
        )  # fmt: skip
        now = time.time()
        with sqlite3.connect(tmp_path / "notify.db") as db:
            db.execute(
                "INSERT INTO timer (key, group_key, kind, recipient, subject, due_date, fire_ts, state, draft,"
                " source_event_id, created_ts) VALUES (?, ?, ?, ?, ?, '', ?, 'pending', ?, '', ?)",
                ("test-reminder-1", "test", draft.kind.value, draft.recipient, draft.subject, now - 60,
                 draft_to_json(draft), now),
            )  # fmt: skip
        wait_for(stack, 1.0)
        with auth_support.channel(stack.config.target("notify")) as ch:
            fired = notify_pb2_grpc.NotifyServiceStub(ch).RunDueTimers(notify_pb2.RunDueTimersRequest())
        assert fired.fired_count == 1
        wait_for(stack, 0.0)
    finally:
        stack.stop()
