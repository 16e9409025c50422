"""The notify runtime: applies reactions, fires durable timers, delivers on the outbound channels.

No in-process-only state matters for correctness: timers, deliveries and the clock setting live in the
database, so two replicas (or a restarted one) share the work. A timer becomes a notification in the same
transaction that marks it fired; a delivery is claimed with a lease before it is sent and marked
delivered right after the channel accepted it, so a killed sender's delivery is retried once the lease
expires — and the idempotency keys (unique constraints, Nats-Msg-Id, Message-ID) keep every
notification single.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge

from common import metrics
from common.db import Database
from common.workdays import CalendarNotCovered, WorkdayCalendar
from services.notify.channels import DocumentFetcher, EmailSender, NatsInboxSender
from services.notify.domain.clock import ClockMode, SettableClock
from services.notify.domain.delivery import RetryPolicy, SendError, after_failure
from services.notify.domain.model import AlertDraft, Channel, Reaction
from services.notify.domain.reactions import schedule_deadline
from services.notify.domain.schedule import SchedulePolicy
from services.notify.storage import deliveries as delivery_repo
from services.notify.storage import repository as repo

log = logging.getLogger(__name__)
TIMERS_FIRED = Counter("bjsv_notify_timers_fired", "timers (第二十三条 deadlines, reminders) fired")
# Sampled apart from the scheduler, so that a stuck or failing scheduler shows as a growing number (issue 13).
TIMERS_DUE = Gauge("bjsv_notify_timers_due", "pending timers whose time (service clock) has come")


@dataclass
class EngineOptions:
    channels: tuple[Channel, ...] = (Channel.NATS, Channel.EMAIL)
    lease: float = 60.0
    concurrency: int = 8
    tick_interval: float = 1.0
    blocked_retry_every: float = 60.0
    calendar_horizon_days: int = 60


class Notifier:
    def __init__(
        self,
        *,
        db: Database,
        clock: SettableClock,
        policy: SchedulePolicy,
        retry: RetryPolicy,
        email: EmailSender | None,
        nats: NatsInboxSender | None,
        documents: DocumentFetcher | None,
        options: EngineOptions,
        calendar: Callable[[], WorkdayCalendar],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.clock = clock
        self.policy = policy
        self.retry = retry
        self.email = email
        self.nats = nats
        self.documents = documents
        self.options = options
        self.channels = tuple(
            c for c in options.channels if c != Channel.EMAIL or (email is not None and email.enabled)
        )
        self._calendar = calendar
        self.wall = wall
        self.worker_id = f"notify-{uuid.uuid4().hex[:12]}"
        self._delivery_wake = asyncio.Event()
        self._scheduler_wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_blocked_retry = 0.0
        self._clock_version = 0.0
        self.sent = 0

    # -- plumbing ----------------------------------------------------------------------------------------

    def calendar(self) -> WorkdayCalendar:
        return self._calendar()

    def bind_loop(self) -> None:
        self._loop = asyncio.get_running_loop()

    def wake_delivery(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._delivery_wake.set)

    def wake_scheduler(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._scheduler_wake.set)

    # -- clock -------------------------------------------------------------------------------------------

    async def refresh_clock(self) -> None:
        """Adopt the shared clock setting (another replica may have changed it).

        The row's version (updated_ts) guards against a read that started before our own SetClock
        landing after it and turning the clock back.
        """
        row = await self.db.read(repo.get_clock)
        if row is not None and row.updated_ts > self._clock_version:
            self._clock_version = row.updated_ts
            self.clock.set_mode(ClockMode(row.mode, row.fixed_ts, row.offset_seconds))

    def _now_from_row(self, row) -> float:
        """The service clock's now per the shared clock row (read inside the firing transaction)."""
        mode = ClockMode(row.mode, row.fixed_ts, row.offset_seconds) if row is not None else self.clock.mode
        return SettableClock(mode, wall=self.wall).timestamp()

    async def set_clock(self, mode: ClockMode) -> None:
        version = max(self.wall(), self._clock_version + 1e-6)
        await self.db.write(
            repo.set_clock, mode=mode.mode, fixed_ts=mode.fixed_ts, offset_seconds=mode.offset_seconds, wall_ts=version
        )
        self._clock_version = version
        self.clock.set_mode(mode)
        self.wake_scheduler()

    # -- events ------------------------------------------------------------------------------------------

    async def apply(
        self, reaction: Reaction, *, consumer: str = "", event_id: str = "", event_wall_ts: float | None = None
    ) -> list[int] | None:
        created = await self.db.write(
            repo.apply_reaction,
            reaction=reaction,
            now_ts=self.clock.timestamp(),
            wall_ts=self.wall(),
            channels=self.channels,
            consumer=consumer,
            event_id=event_id,
            event_wall_ts=event_wall_ts,
        )
        if created:
            self.wake_delivery()
        if reaction.timers:
            self.wake_scheduler()
        return created

    async def apply_batch(self, items: list[tuple[str, Reaction | None, float | None]], *, consumer: str) -> list[int]:
        """Apply a batch of events' reactions in one transaction (throughput: one commit per batch)."""
        created = await self.db.write(
            repo.apply_reactions,
            items=items,
            consumer=consumer,
            now_ts=self.clock.timestamp(),
            wall_ts=self.wall(),
            channels=self.channels,
        )
        if created:
            self.wake_delivery()
        if any(r is not None and r.timers for _, r, _ in items):
            self.wake_scheduler()
        return created

    # -- timers ------------------------------------------------------------------------------------------

    async def fire_due(self, limit: int = 200) -> list[int]:
        """Fire every timer due at the service clock's now; returns the created notification ids."""
        created: list[int] = []
        while True:
            batch = await self.db.write(
                repo.fire_due_timers,
                now_ts=self._now_from_row,
                wall_ts=self.wall(),
                channels=self.channels,
                limit=limit,
            )
            created += batch
            if len(batch) < limit:
                break
        if created:
            TIMERS_FIRED.inc(len(created))
            self.wake_delivery()
        return created

    async def retry_blocked(self) -> int:
        """Reschedule deadlines that waited for a calendar (D5) once one covers their year."""
        blocked = await self.db.read(repo.unresolved_blocked)
        if not blocked:
            return 0
        calendar = self.calendar()
        today = self.clock.today()
        done = 0
        for blocked_id, deadline in blocked:
            reaction = schedule_deadline(deadline, calendar, self.policy, today)
            if reaction.blocked:
                continue
            if await self.db.write(
                repo.resolve_blocked,
                blocked_id=blocked_id,
                reaction=reaction,
                now_ts=self.clock.timestamp(),
                wall_ts=self.wall(),
                channels=self.channels,
            ):
                done += 1
        return done

    async def check_calendar_horizon(self) -> bool:
        """Alert the operator ahead of time when the coming months reach a year no calendar covers (D5)."""
        horizon = self.clock.today() + dt.timedelta(days=self.options.calendar_horizon_days)
        calendar = self.calendar()
        missing = [y for y in range(self.clock.today().year, horizon.year + 1) if not calendar.covers(y)]
        if not missing:
            return False
        alerts = [
            AlertDraft(
                key=f"CALENDAR_NOT_COVERED/{y}/horizon",
                code="CALENDAR_NOT_COVERED",
                message=f"{CalendarNotCovered(y).message_zh}；{self.options.calendar_horizon_days}天内的"
                f"第二十三条期限将落入该年度",
                subject=f"calendars/{y}",
                year=y,
            )
            for y in missing
        ]
        await self.apply(Reaction(alerts=alerts))
        return True

    async def run_scheduler(self) -> None:
        self.bind_loop()
        while True:
            try:
                await self.refresh_clock()
                await self.fire_due()
                if self.wall() - self._last_blocked_retry >= self.options.blocked_retry_every:
                    self._last_blocked_retry = self.wall()
                    await self.retry_blocked()
                    await self.check_calendar_horizon()
            except asyncio.CancelledError:
                raise
            except Exception:  # e.g. DB busy; the next tick retries, timers stay pending
                log.exception("scheduler tick failed")
            await wait_or_timeout(self._scheduler_wake, self.options.tick_interval)
            self._scheduler_wake.clear()

    async def sample_timers_due(self) -> None:
        """Keep the timers-due gauge current (a background task under the service's supervisor)."""
        while True:
            TIMERS_DUE.set(await self.db.read(repo.count_due_timers, now_ts=self.clock.timestamp()))
            await asyncio.sleep(metrics.SAMPLE_EVERY)

    # -- deliveries --------------------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Claim and send one batch of due deliveries; returns how many were claimed."""
        items = await self.db.write(
            delivery_repo.claim_deliveries,
            wall_ts=self.wall(),
            lease=self.options.lease,
            worker=self.worker_id,
            limit=max(self.options.concurrency * 4, 256),
        )
        if not items:
            return 0
        sems = {
            Channel.NATS.value: asyncio.Semaphore(64),
            Channel.EMAIL.value: asyncio.Semaphore(self.options.concurrency),
        }
        nats_done: list[int] = []

        async def one(item: dict[str, Any]) -> None:
            async with sems.get(item["channel"], sems[Channel.EMAIL.value]):
                if await self._deliver(item):
                    nats_done.append(item["delivery_id"])

        await asyncio.gather(*(one(i) for i in items))
        if nats_done:
            # NATS completions in one commit; e-mail completions are written one by one right after the
            # server accepted, because an SMTP resend cannot be deduplicated by the channel itself.
            await self._write_retrying(
                delivery_repo.complete_nats_deliveries, delivery_ids=nats_done, wall_ts=self.wall()
            )
            self.sent += len(nats_done)
        return len(items)

    async def _deliver(self, item: dict[str, Any]) -> bool:
        """Send one delivery; True when it is a NATS delivery that the caller must mark delivered."""
        try:
            if item["channel"] == Channel.NATS.value:
                if self.nats is None:
                    raise SendError("NATS_UNAVAILABLE", "no NATS connection configured")
                await self.nats.send(item)
                return True
            if item["channel"] == Channel.EMAIL.value:
                if self.email is None or not self.email.enabled:
                    await self.db.write(
                        delivery_repo.skip_delivery,
                        delivery_id=item["delivery_id"],
                        reason="EMAIL_DISABLED: BJSV_SMTP_HOST not set",
                    )
                    return False
                if not item["email"]:
                    await self.db.write(
                        delivery_repo.skip_delivery,
                        delivery_id=item["delivery_id"],
                        reason=f"NO_CONTACT: no e-mail address for {item['recipient']}",
                    )
                    return False
                attachment = await self._attachment(item)
                await self.email.send(self.email.build(item, attachment))
            else:
                raise SendError("UNKNOWN_CHANNEL", item["channel"], permanent=True)
        except SendError as err:
            outcome = after_failure(item["attempts"], err, self.retry)
            log.warning(
                "delivery %s (%s) attempt %d failed: %s -> %s",
                item["key"],
                item["channel"],
                item["attempts"],
                err,
                outcome.state,
            )
            await self._write_retrying(
                delivery_repo.fail_delivery, delivery_id=item["delivery_id"], outcome=outcome, wall_ts=self.wall()
            )
            if outcome.retry_in is not None and self._loop is not None:
                self._loop.call_later(outcome.retry_in, self._delivery_wake.set)
            return False
        await self._write_retrying(
            delivery_repo.complete_delivery, delivery_id=item["delivery_id"], wall_ts=self.wall()
        )
        self.sent += 1
        return False

    async def _write_retrying(self, fn, /, **kwargs) -> Any:
        """The channel already accepted: record that even if the DB is briefly busy (narrows the resend window)."""
        for attempt in range(5):
            try:
                return await self.db.write(fn, **kwargs)
            except asyncio.CancelledError:
                raise
            except Exception:  # retried; the lease protects against a parallel resend
                if attempt == 4:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
        return None

    async def _attachment(self, item: dict[str, Any]) -> tuple[str, bytes] | None:
        if not item["document_id"] and not item["attachment_request"]:
            return None
        if self.documents is None:
            raise SendError("DOCUMENT_UNAVAILABLE", "documents service not configured")
        if item["document_id"]:
            return await self.documents.get(item["document_id"])
        # give the documents service's own period.closed consumer two attempts before rendering ourselves
        _name, file_name, content = await self.documents.district_report(
            item["attachment_request"], may_render=item["attempts"] >= 3 or item["attempts"] >= self.retry.max_attempts
        )
        return file_name, content

    async def run_delivery(self) -> None:
        self.bind_loop()
        while True:
            try:
                while await self.deliver_due():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:  # DB trouble: leases expire and the next round retries
                log.exception("delivery round failed")
            await wait_or_timeout(self._delivery_wake, self.options.tick_interval)
            self._delivery_wake.clear()


async def wait_or_timeout(event: asyncio.Event, seconds: float) -> None:
    """Wait for ``event`` at most ``seconds``.

    Not ``asyncio.wait_for``: on CPython 3.11 it can swallow a cancellation that arrives as the event
    fires (cpython#86296), and a loop built on it then never stops on shutdown. ``asyncio.timeout``
    counts cancellations correctly.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass
