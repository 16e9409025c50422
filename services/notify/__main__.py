"""Composition root of the notify service: `python -m services.notify`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bjsv.events.v1 import envelope_pb2
from bjsv.notify.v1 import notify_pb2_grpc
from bjsv.registry.v1 import supervision_pb2
from common.bus import Bus, Subscription
from common.db import Database, StartupError
from common.events import unpack
from common.server import Service, Servicer, run
from common.workdays import CalendarFile, CalendarFileError
from services.notify.api import NotifyServicer
from services.notify.channels import DocumentFetcher, EmailSender, NatsInboxSender
from services.notify.config import NotifySettings
from services.notify.domain.clock import ClockMode, SettableClock
from services.notify.domain.delivery import RetryPolicy
from services.notify.domain.model import Channel
from services.notify.domain.schedule import SchedulePolicy
from services.notify.engine import EngineOptions, Notifier
from services.notify.events import RegistryEvents
from services.notify.storage import models

SERVICE = "notify"


def follow_workflow_clock(notifier: Notifier) -> Subscription:
    """One test clock for the workflow and notify (issue #11): SetSupervisionClock publishes registry event
    clock.set and notify stores the same setting as its own clock row (shared by its replicas). The workflow
    publishes it only when its test clock is enabled (BJSV_SUPERVISION_TEST_CLOCK)."""

    async def follow(envelope: envelope_pb2.EventEnvelope) -> None:
        setting = unpack(envelope, supervision_pb2.GetSupervisionClockResponse)
        fixed = setting.now.seconds + setting.now.nanos / 1e9
        await notifier.set_clock(ClockMode("fixed", fixed, 0.0) if setting.mode == "fixed" else ClockMode())

    return Subscription(durable="notify-workflow-clock", source="registry", types=["clock.set"], handler=follow)


def notifier_for(settings: NotifySettings, db: Database, bus: Bus) -> Notifier:
    calendar = CalendarFile(settings.calendar_file)
    try:
        calendar()  # a broken operator calendar file is a startup error, not a runtime surprise
    except CalendarFileError as e:
        raise StartupError(f"{e}. Fix: correct the file named by BJSV_CALENDAR_FILE or unset it.") from None
    try:
        clock = SettableClock(ClockMode.parse(settings.notify_clock))
        send_time = dt.time.fromisoformat(settings.notify_send_time)
        channels = tuple(Channel(c.strip()) for c in settings.notify_channels.split(",") if c.strip())
    except ValueError as e:
        raise StartupError(f"bad notify setting: {e}") from None
    return Notifier(
        db=db,
        clock=clock,
        policy=SchedulePolicy(send_time=send_time),
        retry=RetryPolicy(
            max_attempts=settings.notify_retry_max_attempts,
            base_delay=settings.notify_retry_base_delay,
            max_delay=settings.notify_retry_max_delay,
        ),
        email=EmailSender(
            host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_from, timeout=settings.smtp_timeout
        ),
        nats=NatsInboxSender(bus),
        documents=DocumentFetcher(settings.target("documents"), settings.notify_documents_timeout),
        options=EngineOptions(
            channels=channels,
            lease=settings.notify_delivery_lease,
            concurrency=settings.notify_delivery_concurrency,
            tick_interval=settings.notify_tick_interval,
        ),
        calendar=calendar,
    )


def build(settings: NotifySettings | None = None) -> Service:
    settings = settings or NotifySettings()
    db = Database(
        settings,
        service=SERVICE,
        metadata=models.Base.metadata,
        migrations=Path(__file__).parent / "storage" / "migrations",
    )
    bus = Bus(settings, service=SERVICE)
    notifier = notifier_for(settings, db, bus)
    registry_events = RegistryEvents(notifier)

    async def start() -> None:
        notifier.bind_loop()
        if settings.notify_clock.strip() not in ("", "real"):
            await notifier.set_clock(notifier.clock.mode)  # env setting wins at start; shared with replicas via the DB
        else:
            await notifier.refresh_clock()

    async def stop() -> None:
        if notifier.documents is not None:
            await notifier.documents.close()

    return Service(
        name=SERVICE,
        settings=settings,
        servicers=[
            Servicer(
                notify_pb2_grpc.add_NotifyServiceServicer_to_server,
                NotifyServicer(notifier),
                "bjsv.notify.v1.NotifyService",
            )
        ],
        database=db,
        bus=bus,
        subscriptions=[
            registry_events.subscription(ack_wait=settings.notify_ack_wait),
            follow_workflow_clock(notifier),
        ],
        tasks=[notifier.run_scheduler, notifier.run_delivery, notifier.sample_timers_due],
        on_start=[start],
        on_stop=[stop],
    )


if __name__ == "__main__":
    run(build)
