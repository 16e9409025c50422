"""Test support for the notify service: a recording SMTP server (aiosmtpd on loopback), registry event
builders (the payloads the registry publishes), a notify subprocess runner for restart tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from email import message_from_bytes, policy
from pathlib import Path

import grpc
from aiosmtpd.controller import Controller
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bjsv.events.v1 import envelope_pb2
from bjsv.notify.v1 import notify_pb2_grpc
from bjsv.registry.v1 import events_pb2 as reg_events
from bjsv.registry.v1 import registry_pb2, supervision_events_pb2, supervision_pb2
from common import clients
from common.clock import SHANGHAI
from common.server import serve
from services.notify.__main__ import build
from services.notify.config import NotifySettings
from services.registry.domain.workflow.deadlines import due_date
from supervisionctl.natsd import free_port

ROOT = Path(__file__).resolve().parents[2]


# -- SMTP ------------------------------------------------------------------------------------------------


class SmtpSink:
    """A real SMTP server on 127.0.0.1 that records every accepted message.

    ``stall()`` makes sessions hang at RCPT (the client is then "in the middle of sending"); a message
    only counts once DATA completed with 250, exactly like a real MTA.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list = []
        self.lock = threading.Lock()
        self._go = threading.Event()
        self._go.set()
        self.stalled_sessions = 0
        self.controller: Controller | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not self._go.is_set():
            with self.lock:
                self.stalled_sessions += 1
            await asyncio.to_thread(self._go.wait)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(msg)
        return "250 Message accepted for delivery"

    def start(self) -> SmtpSink:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self._go.set()
            self.controller.stop()
            self.controller = None

    def stall(self) -> None:
        self._go.clear()

    def release(self) -> None:
        self._go.set()

    def keys(self) -> list[str]:
        with self.lock:
            return [str(m["X-Bjsv-Idempotency-Key"]).strip() for m in self.messages]

    def by_recipient(self, address: str) -> list:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]


# -- registry events -------------------------------------------------------------------------------------


def ts(at: dt.datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(at.astimezone(dt.UTC))
    return t


def envelope(
    type_: str, subject: str, payload, *, event_id: str | None = None, occurred: dt.datetime | None = None
) -> envelope_pb2.EventEnvelope:
    env = envelope_pb2.EventEnvelope(
        event_id=event_id or str(uuid.uuid4()),
        type=type_,
        source="registry",
        subject=subject,
        trace_id=uuid.uuid4().hex,
        actor="agencies/08",
    )
    if occurred is None:
        env.occurred_time.GetCurrentTime()
    else:
        env.occurred_time.CopyFrom(ts(occurred))
    env.payload.Pack(payload)
    return env


async def publish(js, env: envelope_pb2.EventEnvelope) -> None:
    await js.publish(f"bjsv.registry.{env.type}", env.SerializeToString(), headers={"Nats-Msg-Id": env.event_id})


AGENCY = "agencies/08"
INSTITUTION = "institutions/1100012001"


def dispatch_created(
    n: int,
    *,
    end: dt.date,
    members: int = 2,
    record_due: str = "",
    feedback_due: str = "",
    agency: str = AGENCY,
    institution: str = INSTITUTION,
    plan_title: str = "2025年第三批电工四级认定",
) -> envelope_pb2.EventEnvelope:
    # due dates as the registry sets them (D5: 5 working days, services.registry.domain.workflow.deadlines)
    record_due = record_due or due_date(end, workdays=5).isoformat()
    feedback_due = feedback_due or record_due
    name = f"dispatches/{n}"
    start_t = dt.datetime.combine(end, dt.time(9), tzinfo=SHANGHAI)
    end_t = dt.datetime.combine(end, dt.time(17), tzinfo=SHANGHAI)
    d = supervision_pb2.Dispatch(
        name=name,
        plan=f"plans/{n}",
        dispatching_agency=agency,
        scope=supervision_pb2.DISPATCH_SCOPE_EXTERNAL,
        form=supervision_pb2.SUPERVISION_FORM_ON_SITE,
        supervision_start_time=ts(start_t),
        supervision_end_time=ts(end_t),
        record_due_date=record_due,
        feedback_due_date=feedback_due,
        plan_title=plan_title,
        institution=institution,
        institution_name="北京某职业技能评价有限公司",
        district="08",
        state=supervision_pb2.DISPATCH_STATE_ACTIVE,
    )
    recipients = []
    for i in range(members):
        sup = f"supervisors/{n * 100 + i}"
        d.members.add(supervisor=sup, display_name=f"督导员{n}-{i}", state=supervision_pb2.MEMBER_STATE_ACTIVE)
        recipients.append(supervision_events_pb2.Recipient(party=sup, display_name=f"督导员{n}-{i}", role="supervisor"))
    recipients.append(
        supervision_events_pb2.Recipient(
            party=institution, display_name="北京某职业技能评价有限公司", role="institution"
        )
    )
    recipients.append(
        supervision_events_pb2.Recipient(
            party=agency, display_name="海淀区职业技能鉴定管理机构", role="dispatching_agency"
        )
    )
    plan = supervision_pb2.Plan(
        name=f"plans/{n}",
        institution=institution,
        institution_name="北京某职业技能评价有限公司",
        title=plan_title,
        district="08",
    )
    payload = supervision_events_pb2.DispatchCreated(
        dispatch=d, plan=plan, record_due_date=record_due, feedback_due_date=feedback_due, recipients=recipients
    )
    return envelope("dispatch.created", name, payload)


def record_submitted(
    n: int, *, due: str, late: bool = False, at: dt.datetime | None = None
) -> envelope_pb2.EventEnvelope:
    dispatch = dispatch_created(n, end=dt.date(2025, 9, 30))
    d = supervision_events_pb2.DispatchCreated()
    dispatch.payload.Unpack(d)
    rec = supervision_pb2.SupervisionRecord(
        name=f"records/{n}",
        version=1,
        dispatch=f"dispatches/{n}",
        plan=f"plans/{n}",
        plan_title=d.plan.title,
        institution=INSTITUTION,
        due_date=due,
        late=late,
        dispatching_agency=AGENCY,
        submit_time=ts(at or dt.datetime(2025, 10, 9, 15, tzinfo=SHANGHAI)),
    )
    payload = supervision_events_pb2.RecordSubmitted(
        record=rec,
        dispatch=d.dispatch,
        recipients=[supervision_events_pb2.Recipient(party=AGENCY, role="dispatching_agency")],
    )
    return envelope("record.submitted", rec.name, payload)


def badge_filed(n: int, institution: str = INSTITUTION) -> envelope_pb2.EventEnvelope:
    code = f"Y11200126{n:04d}"
    payload = reg_events.BadgeFiled(
        filing=f"filings/{n}",
        badge=f"badges/{code}",
        code=code,
        institution=reg_events.OrganizationSnapshot(name=institution, display_name="北京某职业技能评价有限公司"),
        supervisor=reg_events.SupervisorSnapshot(name=f"supervisors/{n}", full_name=f"内督员{n}"),
        filed_with="agencies/A",
    )
    return envelope("badge.filed", f"badges/{code}", payload)


def appointment_started(
    n: int, *, born: str, gender: int, start: str, end: str, org: str = AGENCY
) -> envelope_pb2.EventEnvelope:
    payload = reg_events.AppointmentStarted(
        age_limit_years=65 if gender == registry_pb2.GENDER_MALE else 60,  # as the registry sends (rule set, D6)
        appointment=f"appointments/{n}",
        supervisor=reg_events.SupervisorSnapshot(
            name=f"supervisors/{n}", full_name=f"外督员{n}", gender=gender, birth_date=born
        ),
        appointing_organization=reg_events.OrganizationSnapshot(name=org, display_name="海淀区职业技能鉴定管理机构"),
        term=registry_pb2.AppointmentTerm(term_number=1, start_date=start, end_date=end),
    )
    return envelope("appointment.started", f"appointments/{n}", payload)


# -- notify as a subprocess (restart tests) --------------------------------------------------------------


class NotifyProcess:
    """`python -m services.notify` with a tmp data dir; kill -9 and restart like an operator would not."""

    def __init__(self, *, data_dir: Path, port: int, nats_url: str, env: dict[str, str]) -> None:
        self.data_dir, self.port, self.nats_url, self.env = data_dir, port, nats_url, env
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / "notify.log"

    def start(self, timeout: float = 20.0, **extra_env: str) -> None:
        env = {
            **os.environ,
            "BJSV_DATA_DIR": str(self.data_dir),
            "BJSV_NOTIFY_PORT": str(self.port),
            "BJSV_NATS_URL": self.nats_url,
            "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
            **self.env,
            **extra_env,
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.notify"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        with clients.sync_channel(f"127.0.0.1:{self.port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"notify exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
                try:
                    if stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=0.5).status == 1:
                        return
                except grpc.RpcError:
                    time.sleep(0.1)
        raise RuntimeError(f"notify did not become healthy: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def stub(self) -> tuple[grpc.aio.Channel, notify_pb2_grpc.NotifyServiceStub]:
        ch = clients.channel(f"127.0.0.1:{self.port}")
        return ch, notify_pb2_grpc.NotifyServiceStub(ch)


async def wait_for(predicate, limit: float = 30.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + limit
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


# -- notify in-process (the same build() as `python -m services.notify`) ---------------------------------


async def start_inprocess(data_dir, nats_url: str, smtp: SmtpSink, **overrides):
    os.environ.pop("BJSV_CALENDAR_FILE", None)
    port = free_port()
    values = dict(
        data_dir=data_dir,
        notify_port=port,
        nats_url=nats_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        notify_clock="fixed:2025-09-29T10:00:00+08:00",
        notify_tick_interval=0.05,
        notify_retry_base_delay=0.05,
        notify_retry_max_attempts=3,
        notify_delivery_lease=2.0,
        documents_port=free_port(),
        shutdown_grace=0.5,
    )
    settings = NotifySettings(**{**values, **overrides})
    svc = build(settings)
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(svc, ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), 20)
    return port, stop, task


async def stop_inprocess(stop: asyncio.Event, task: asyncio.Task) -> None:
    stop.set()
    for _ in range(100):
        done, _pending = await asyncio.wait({task}, timeout=0.2)
        if done:
            break
        # Workaround, see the lead's note: common.bus.OutboxRelay.run waits with asyncio.wait_for, which on
        # CPython 3.11 can swallow the shutdown's cancellation (cpython#86296); cancel it again.
        for t in asyncio.all_tasks():
            if t.get_name() == "outbox-relay" and t.cancelling():
                t.cancel()
    await asyncio.wait_for(task, 10)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
