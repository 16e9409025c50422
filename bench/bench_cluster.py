"""Load and faults on the cluster profile (issue #16): a mixed workload at a fixed rate while, one after
another, the JetStream meta leader and the registry stream's leader are SIGKILLed, one replica of every
service is SIGKILLed, the private PostgreSQL restarts and one NATS node is frozen (SIGSTOP).

    .venv/bin/python bench/bench_cluster.py [--rate 1.0] [--hold 6] [--settle 8] [--freeze 20] [--faults NAME …]

Each unit of work is one supervision cycle through the balanced targets: register, appoint and badge a
supervisor, verify the badge, file a plan, dispatch two supervisors, submit the record and the Annex 4
feedback, read the inbox. Workflow writes carry client_request_id, so a call whose outcome is unknown is
retried safely; a registry write without one whose retry finds it already done is counted as ambiguous and
its unit stops (never a duplicate: ID numbers and appointments are unique). Afterwards every acknowledged
write is read back, every event's effect is counted in each consumer (a dispatch notice per member, a
rendered document per badge, record and feedback) and every badge code is checked for duplicates.
Alongside, a reader calls replica 2 of registry and notify directly every 0.25 s (1 s deadline): no fault
kills it, so its longest failing window is what "reads of an unaffected replica" means; the balanced
reads of the cycles are reported apart. Each fault lists how its calls failed (method, status, details).
Writes bench/results/cluster.json. Everything runs on loopback in a temporary folder and stops by itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import itertools
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "deploy")]

from bjsv.documents.v1 import documents_pb2 as dpb  # noqa: E402
from bjsv.documents.v1 import documents_pb2_grpc  # noqa: E402
from bjsv.notify.v1 import notify_pb2 as npb  # noqa: E402
from bjsv.notify.v1 import notify_pb2_grpc  # noqa: E402
from bjsv.registry.v1 import registry_pb2 as rpb  # noqa: E402
from bjsv.registry.v1 import registry_pb2_grpc, supervision_pb2_grpc  # noqa: E402
from bjsv.registry.v1 import supervision_pb2 as spb  # noqa: E402
from common.clients import sync_channel  # noqa: E402
from common.clock import SHANGHAI  # noqa: E402
from services.registry.domain import id_number  # noqa: E402
from supervisionctl.cluster import Cluster, Layout, unused_port  # noqa: E402

CITY = ("agencies/A", "city-centre")
# Units rotate over the districts: a district's external badge serials are 01–99 a year (附件1).
DISTRICTS = ("01", "02", "05", "06", "07", "08", "09", "11", "12", "13", "14", "15", "16", "17", "28", "29", "30")
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL}
CALL_TIMEOUT = 5.0
PAST_DAYS = 360  # sessions on distinct past days; a supervisor sits in two dispatches (its unit's, the next's)
GIVE_UP = 60.0  # a call is retried this long before its unit is abandoned (counted, never silent)
ATTESTED = [
    rpb.Attestation(item=item, satisfied=True, attested_by="市鉴定管理中心", attested_date="2025-01-05")
    for item in (rpb.ATTESTATION_ITEM_PARTY_LINE, rpb.ATTESTATION_ITEM_POLICY_KNOWLEDGE, rpb.ATTESTATION_ITEM_INTEGRITY,
                 rpb.ATTESTATION_ITEM_ABILITY, rpb.ATTESTATION_ITEM_HEALTH)
]  # fmt: skip


class Ambiguous(Exception):
    """A write without request id whose outcome is unknown and whose retry found it already applied."""


@dataclass
class Log:
    """Every call attempt (time, ok, latency) and every acknowledged write, shared by the workers."""

    attempts: list[tuple[float, bool, float]] = field(default_factory=list)
    reads: list[tuple[float, bool, float]] = field(default_factory=list)  # the read calls among them
    # reads pinned to the replicas no fault kills (…-2), straight to their port: what "reads of an unaffected
    # replica" means; the balanced reads above also pay for calls caught on the killed replica
    unaffected: list[tuple[float, bool, float]] = field(default_factory=list)
    failures: list[tuple[float, str, str, str]] = field(default_factory=list)  # (time, where, code, details)
    writes: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in WRITE_KINDS})
    codes: list[str] = field(default_factory=list)
    dispatch_members: dict[str, list[str]] = field(default_factory=dict)
    ambiguous: int = 0
    abandoned: int = 0
    units: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attempt(self, start: float, ok: bool, read: bool) -> None:
        entry = (start, ok, time.monotonic() - start)
        with self.lock:
            self.attempts.append(entry)
            if read:
                self.reads.append(entry)

    def failed(self, start: float, where: str, e: grpc.RpcError) -> None:
        with self.lock:
            self.failures.append((start, where, e.code().name, (e.details() or "")[:120]))

    def wrote(self, kind: str, name: str) -> None:
        with self.lock:
            self.writes[kind].append(name)


WRITE_KINDS = ("institution", "supervisor", "appointment", "badge", "plan", "dispatch", "record", "feedback")


class Workload:
    def __init__(self, cluster: Cluster, log: Log, today: dt.date) -> None:
        settings = cluster.config.settings()
        lay = cluster.layout
        self.channels = {s: sync_channel(lay.target(s), settings=settings) for s in ("registry", "documents", "notify")}
        self.registry = registry_pb2_grpc.RegistryServiceStub(self.channels["registry"])
        self.sv = supervision_pb2_grpc.SupervisionServiceStub(self.channels["registry"])
        self.docs = documents_pb2_grpc.DocumentsServiceStub(self.channels["documents"])
        self.notify = notify_pb2_grpc.NotifyServiceStub(self.channels["notify"])
        self.cluster, self.log, self.today = cluster, log, today
        self.tokens: dict[tuple[str, str], str] = {}
        self.ids = itertools.count(1)
        self.photo = _photo()
        self.previous: dict[str, tuple[str, str]] = {}  # district → (supervisor, name) of its last unit: a pair
        self.pair_lock = threading.Lock()

    def md(self, who: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        if who not in self.tokens:
            self.tokens[who] = self.cluster.stack.token(*who)
        return (("authorization", f"Bearer {self.tokens[who]}"),)

    def call(self, fn: Callable, request, who: tuple[str, str] = CITY, *, write_once: bool = False, read: bool = False):
        """One RPC with retries while the cluster heals. `write_once`: a write without request id; after an
        unknown outcome, ALREADY_EXISTS / FAILED_PRECONDITION on the retry means it landed (ambiguous)."""
        deadline, unknown = time.monotonic() + GIVE_UP, False
        while True:
            start = time.monotonic()
            try:
                resp = fn(request, metadata=self.md(who), timeout=CALL_TIMEOUT)
            except grpc.RpcError as e:
                code = e.code()
                if code in RETRYABLE:  # the service was unavailable; a refusal is an answer, not an outage
                    self.log.attempt(start, False, read)
                    self.log.failed(start, getattr(fn, "_method", b"").decode().rsplit("/", 1)[-1], e)
                if (
                    write_once
                    and unknown
                    and code in (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION)
                ):
                    raise Ambiguous(e.details()) from None
                if code not in RETRYABLE or time.monotonic() > deadline:
                    raise
                unknown = unknown or code != grpc.StatusCode.UNAVAILABLE or "Socket closed" in (e.details() or "")
                time.sleep(0.2)
                continue
            self.log.attempt(start, True, read)
            return resp

    def read_unaffected(self, stop: threading.Event, period: float = 0.25) -> None:
        """Every `period` s, read straight from replica 2 of registry and notify (no fault kills it): a badge
        verification and an inbox, each bounded by 1 s so a stalled replica counts as failing."""
        lay, settings = self.cluster.layout, self.cluster.config.settings()
        port = {r.service: r.port for r in lay.replicas if r.name.endswith("-2")}
        registry = registry_pb2_grpc.RegistryServiceStub(
            sync_channel(f"{lay.host}:{port['registry']}", settings=settings)
        )
        notify = notify_pb2_grpc.NotifyServiceStub(sync_channel(f"{lay.host}:{port['notify']}", settings=settings))
        while not stop.wait(period):
            with self.log.lock:
                code = self.log.codes[0] if self.log.codes else None
            reads = [(notify.ListNotifications, npb.ListNotificationsRequest(recipient="supervisors/1"), "notify-2")]
            if code:
                reads.append((registry.VerifyBadge, rpb.VerifyBadgeRequest(code=code), "registry-2"))
            for fn, request, where in reads:
                start = time.monotonic()
                try:
                    fn(request, metadata=self.md(CITY), timeout=1.0)
                except grpc.RpcError as e:
                    self.log.failed(start, where, e)
                    ok = e.code() not in RETRYABLE
                else:
                    ok = True
                with self.log.lock:
                    self.log.unaffected.append((start, ok, time.monotonic() - start))

    def unit(self) -> None:
        k = next(self.ids)
        try:
            self._cycle(k)
        except Ambiguous:
            with self.log.lock:
                self.log.ambiguous += 1
        except grpc.RpcError as e:
            with self.log.lock:
                self.log.abandoned += 1
            print(f"unit {k} abandoned: {e.code().name} {e.details()}", file=sys.stderr)
        finally:
            with self.log.lock:
                self.log.units += 1

    def _cycle(self, k: int) -> None:
        number, district = f"11009{k:05d}", DISTRICTS[k % len(DISTRICTS)]
        agency = (f"agencies/{district}", "district-agency")
        self.call(self.registry.CreateInstitution, rpb.CreateInstitutionRequest(institution=rpb.Institution(
            number=number, type=rpb.INSTITUTION_TYPE_EMPLOYER, display_name=f"北京集群压测第{k}评价机构",
            district_code=district, contact="010-00000000")), write_once=True)  # fmt: skip
        inst = f"institutions/{number}"
        self.log.wrote("institution", inst)
        sup, name = self._supervisor(k, agency)
        with self.pair_lock:
            partner, self.previous[district] = self.previous.get(district), (sup, name)
        if partner is None:
            return  # a district's first unit only provides a partner for its second
        # Past sessions: a records review follows the session (第十九条) and is signed no later than today.
        day = self.today - dt.timedelta(days=PAST_DAYS - k % PAST_DAYS)
        review = day + dt.timedelta(days=1)
        request = spb.CreatePlanRequest(plan=_plan(inst, day, k, district), client_request_id=f"plan-{k}")
        plan = self.call(self.sv.CreatePlan, request, agency).plan
        self.log.wrote("plan", plan.name)
        dispatch = self.call(self.sv.CreateDispatch, spb.CreateDispatchRequest(
            dispatch=spb.Dispatch(plan=plan.name, dispatching_agency=agency[0],
                                  form=spb.SUPERVISION_FORM_RECORDS_REVIEW, supervision_start_time=_at(review, 9),
                                  supervision_end_time=_at(review, 17)),
            selection=spb.TEAM_SELECTION_MANUAL, supervisors=[sup, partner[0]], client_request_id=f"dispatch-{k}"),
            agency).dispatch  # fmt: skip
        self.log.wrote("dispatch", dispatch.name)
        with self.log.lock:
            self.log.dispatch_members[dispatch.name] = [m.supervisor for m in dispatch.members]
        for member in (sup, partner[0]):  # 第十六条: each supervisor declares, as themself, before acting
            declaration = spb.ConflictDeclaration(dispatch=dispatch.name, supervisor=member)
            self.call(self.sv.DeclareConflicts, spb.DeclareConflictsRequest(declaration=declaration),
                      (member, "supervisor"))  # fmt: skip
        record = self.call(self.sv.SubmitRecord, spb.SubmitRecordRequest(record=spb.SupervisionRecord(
            dispatch=dispatch.name, submitted_by=sup, answers=_answers(16), problems="无",
            supervisor_signatures=[name, partner[1]], institution_head_signature="李主任",
            sign_date=review.isoformat()), client_request_id=f"record-{k}"), agency).record  # fmt: skip
        self.log.wrote("record", record.name)
        feedback = self.call(self.sv.SubmitFeedback, spb.SubmitFeedbackRequest(feedback=spb.SupervisorFeedback(
            dispatch=dispatch.name, supervisor=sup, entry_time=_at(review, 8, 50), exit_time=_at(review, 17, 10),
            badge_worn=spb.ANSWER_VALUE_YES, duties_performed=spb.ANSWER_VALUE_YES,
            integrity_kept=spb.ANSWER_VALUE_YES, comments="认真履职", signed_by="李主任"),
            client_request_id=f"feedback-{k}"), (inst, "institution")).feedback  # fmt: skip
        self.log.wrote("feedback", feedback.name)
        self.call(self.notify.ListNotifications, npb.ListNotificationsRequest(recipient=sup), CITY, read=True)

    def _supervisor(self, k: int, agency: tuple[str, str]) -> tuple[str, str]:
        number = id_number.compose(str(110101 + k // 400), dt.date(1975, 5, 5), 1 + 2 * (k % 400))
        display = "集群督导" + "".join("零一二三四五六七八九"[int(c)] for c in str(k))
        sup = self.call(self.registry.RegisterSupervisor, rpb.RegisterSupervisorRequest(supervisor=rpb.Supervisor(
            full_name=display, gender=rpb.GENDER_MALE, birth_date="1975-05-05", id_number=number,
            type=rpb.SUPERVISOR_TYPE_EXTERNAL, level=rpb.SUPERVISOR_LEVEL_DISTRICT, district_code=agency[0][9:],
            phone="13800000000", photo=self.photo, attestations=ATTESTED,
            training=rpb.TrainingAssessment(passed=True, assessed_by="市鉴定管理中心", assessed_date="2025-05-01"),
        )), agency, write_once=True).supervisor  # fmt: skip
        self.log.wrote("supervisor", sup.name)
        appt = self.call(self.registry.AppointSupervisor, rpb.AppointSupervisorRequest(
            supervisor=sup.name, start_date="2025-06-01", appointed_by="主任 王某"), agency,
            write_once=True).appointment  # fmt: skip
        self.log.wrote("appointment", appt.name)
        badge = self.call(self.registry.IssueBadge, rpb.IssueBadgeRequest(appointment=appt.name), write_once=True).badge
        self.log.wrote("badge", f"badges/{badge.code}")
        with self.log.lock:
            self.log.codes.append(badge.code)
        self.call(self.registry.VerifyBadge, rpb.VerifyBadgeRequest(code=badge.code), read=True)
        return sup.name, display


def _photo() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (295, 413), (90, 120, 200)).save(buf, "JPEG")
    return buf.getvalue()


def _at(day: dt.date, hour: int, minute: int = 0) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI))
    return ts


def _answers(n: int) -> list[spb.ChecklistAnswer]:
    return [spb.ChecklistAnswer(item_number=i, answer=spb.ANSWER_VALUE_YES) for i in range(1, n + 1)]


def _plan(inst: str, day: dt.date, k: int, district: str) -> spb.Plan:
    def person(name: str, seq: int, role: str = "考评员") -> spb.SessionPerson:
        number = id_number.compose(str(120101 + k // 150), dt.date(1980, 1, 1), seq)
        return spb.SessionPerson(display_name=name, role=role, id_number=number)

    return spb.Plan(
        institution=inst, title=f"集群压测第{k}期电工（四级）职业技能等级认定", district=district, candidate_count=60,
        occupation="电工（四级/中级工）", certification_modes=[spb.CERTIFICATION_MODE_THEORY_EXAM],
        sessions=[spb.PlanSession(session_id="S1", start_time=_at(day, 9), end_time=_at(day, 11, 30), venue="第一考场",
                                  examiners=[person("钱考评", 1 + 6 * (k % 150))],
                                  staff=[person("孙考务", 3 + 6 * (k % 150), "考务人员")])],
    )  # fmt: skip


# -- faults --------------------------------------------------------------------------------------------


@dataclass
class Fault:
    name: str
    inject: Callable[[Cluster], Callable[[], None]]  # does the damage; returns how to recover


def _kill_node(pick: Callable[[Cluster], str | None]) -> Callable[[Cluster], Callable[[], None]]:
    def inject(c: Cluster) -> Callable[[], None]:
        name = pick(c) or c.layout.nodes[0].name
        print(f"  SIGKILL {name}", file=sys.stderr)
        c.kill(name)
        return lambda: (c.start_node(name), c.wait_jetstream())

    return inject


def _kill_replicas(c: Cluster) -> Callable[[], None]:
    names = [r.name for r in c.layout.replicas if r.name.endswith("-1")]
    for name in names:
        c.kill(name)
    print(f"  SIGKILL {', '.join(names)}", file=sys.stderr)

    def recover() -> None:
        for name in names:
            c.start_replica(name)
        c.wait_serving(names=tuple(names))

    return recover


def _restart_postgres(c: Cluster) -> Callable[[], None]:
    c.restart_postgres()  # only the private one this bench created, never the machine's shared PostgreSQL
    return lambda: None


def _freeze(seconds: float) -> Callable[[Cluster], Callable[[], None]]:
    def inject(c: Cluster) -> Callable[[], None]:
        name = c.stream_leader("BJSV_REGISTRY") or c.layout.nodes[-1].name
        pid = c.nodes[name].proc.pid
        os.kill(pid, signal.SIGSTOP)
        print(f"  SIGSTOP {name} for {seconds:.0f} s", file=sys.stderr)
        time.sleep(seconds)
        os.kill(pid, signal.SIGCONT)
        return c.wait_jetstream

    return inject


def faults(freeze: float) -> list[Fault]:
    return [
        Fault("kill_meta_leader", _kill_node(Cluster.meta_leader)),
        Fault("kill_registry_stream_leader", _kill_node(lambda c: c.stream_leader("BJSV_REGISTRY"))),
        Fault("kill_one_replica_each", _kill_replicas),
        Fault("restart_postgresql", _restart_postgres),
        Fault("freeze_nats_node", _freeze(freeze)),
    ]


# -- measures ------------------------------------------------------------------------------------------


def p99_ms(attempts: list[tuple[float, bool, float]], start: float, end: float) -> float | None:
    lat = sorted(d for t, ok, d in attempts if ok and start <= t < end)
    return round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3, 1) if lat else None


def max_unavailable(attempts: list[tuple[float, bool, float]], start: float, end: float) -> float:
    """The longest span from a failed call to the next successful one (calls failing meanwhile)."""
    longest, failing_since = 0.0, None
    for t, ok, d in sorted(attempts):
        if not start <= t < end:
            continue
        if not ok and failing_since is None:
            failing_since = t
        elif ok and failing_since is not None:
            longest, failing_since = max(longest, t + d - failing_since), None
    if failing_since is not None:
        longest = max(longest, end - failing_since)
    return round(longest, 2)


def failure_kinds(log: Log, start: float, end: float) -> dict[str, int]:
    """How the calls in a window failed: "<where> <code>: <details>" → count (what to fix, not just how long)."""
    kinds = Counter(f"{where} {code}: {details}" for t, where, code, details in log.failures if start <= t < end)
    return dict(kinds.most_common(8))


# -- checks --------------------------------------------------------------------------------------------


def persisted(w: Workload) -> tuple[int, list[str]]:
    """Read every acknowledged write back through the balanced targets."""
    getters = {
        "institution": (w.registry.GetInstitution, rpb.GetInstitutionRequest),
        "supervisor": (w.registry.GetSupervisor, rpb.GetSupervisorRequest),
        "appointment": (w.registry.GetAppointment, rpb.GetAppointmentRequest),
        "badge": (w.registry.GetBadge, rpb.GetBadgeRequest),
        "plan": (w.sv.GetPlan, spb.GetPlanRequest),
        "dispatch": (w.sv.GetDispatch, spb.GetDispatchRequest),
        "record": (w.sv.GetRecord, spb.GetRecordRequest),
        "feedback": (w.sv.GetFeedback, spb.GetFeedbackRequest),
    }
    found, missing = 0, []
    for kind, names in w.log.writes.items():
        fn, request = getters[kind]
        for name in names:
            try:
                w.call(fn, request(name=name), CITY)
                found += 1
            except grpc.RpcError:
                missing.append(name)
    return found, missing


def all_badge_codes(w: Workload) -> list[str]:
    codes, token = [], ""
    while True:
        resp = w.call(w.registry.ListBadges, rpb.ListBadgesRequest(page_size=500, page_token=token))
        codes += [b.code for b in resp.badges]
        token = resp.next_page_token
        if not token:
            return codes


def documents_by_subject(w: Workload) -> Counter:
    seen, token = Counter(), ""
    while True:
        resp = w.call(w.docs.ListDocuments, dpb.ListDocumentsRequest(page_size=500, page_token=token))
        seen.update((d.kind, d.subject) for d in resp.documents)
        token = resp.next_page_token
        if not token:
            return seen


def effects(w: Workload, *, settle: float = 60.0) -> dict[str, int]:
    """Each event's effect exactly once: a badge PDF per badge, a rendered Annex 3 per record and Annex 4 per
    feedback (documents), a dispatch notice in each member's inbox (notify). Waits for the consumers."""
    deadline = time.monotonic() + settle
    while True:
        docs = documents_by_subject(w)
        expected = [(dpb.DOCUMENT_KIND_BADGE, b) for b in w.log.writes["badge"]]
        expected += [(dpb.DOCUMENT_KIND_RECORDS_REVIEW_RECORD, r) for r in w.log.writes["record"]]
        expected += [(dpb.DOCUMENT_KIND_FEEDBACK, f) for f in w.log.writes["feedback"]]
        inbox = Counter()
        for dispatch, members in w.log.dispatch_members.items():
            for sup in members:
                resp = w.call(w.notify.ListNotifications, npb.ListNotificationsRequest(recipient=sup, subject=dispatch))
                inbox[(sup, dispatch)] = len(resp.notifications)
        missing = [f"{dpb.DocumentKind.Name(k)} {s}" for k, s in expected if docs[(k, s)] == 0]
        missing += [f"inbox {sup} {dispatch}" for (sup, dispatch), n in inbox.items() if n == 0]
        if not missing or time.monotonic() > deadline:
            duplicates = sum(docs[e] > 1 for e in expected) + sum(n > 1 for n in inbox.values())
            return {
                "expected": len(expected) + len(inbox),
                "lost_events": len(missing),
                "lost_sample": missing[:10],
                "duplicate_effects": duplicates,
            }
        time.sleep(2)


# -- run -----------------------------------------------------------------------------------------------


def drive(w: Workload, rate: float, stop: threading.Event) -> None:
    """Start one unit every 1/rate s until `stop` (fixed rate: a slow unit does not slow the schedule)."""
    pool = ThreadPoolExecutor(max_workers=32)
    start, n = time.monotonic(), 0
    try:
        while not stop.is_set():
            pool.submit(w.unit)
            n += 1
            stop.wait(max(0.0, start + n / rate - time.monotonic()))
    finally:
        pool.shutdown(cancel_futures=True)  # units not started yet are dropped; running ones finish


def run(args: argparse.Namespace) -> dict:
    data = Path(tempfile.mkdtemp(prefix="bjsv-cluster-"))
    layout = Layout.allocate(data)
    layout.extra_env = {"BJSV_LOG_LEVEL": "WARNING", "BJSV_SHUTDOWN_GRACE": "2"}
    if "BJSV_IDENTITY_PORT" not in os.environ:  # our own issuer, never one another stack on this machine runs
        layout.identity_port = unused_port(layout.host, set())
    cluster = Cluster(layout)
    t0 = time.monotonic()
    cluster.start(timeout=180)
    print(f"cluster up in {time.monotonic() - t0:.1f} s ({data})", file=sys.stderr)
    log = Log()
    w = Workload(cluster, log, dt.datetime.now(SHANGHAI).date())
    stop = threading.Event()
    driver = threading.Thread(target=drive, args=(w, args.rate, stop))
    reader = threading.Thread(target=w.read_unaffected, args=(stop,))
    try:
        driver.start()
        reader.start()
        time.sleep(args.settle)
        report = {}
        for fault in faults(args.freeze):
            if args.faults and fault.name not in args.faults:
                continue
            before = time.monotonic()
            time.sleep(args.settle)
            print(f"fault {fault.name}", file=sys.stderr)
            injected = time.monotonic()
            recover = fault.inject(cluster)
            time.sleep(args.hold)
            recover()
            recovered = time.monotonic()
            time.sleep(args.settle)
            after = time.monotonic()
            report[fault.name] = {
                "max_unavailable_s": max_unavailable(log.attempts, injected, after),
                "max_unavailable_reads_s": max_unavailable(log.reads, injected, after),
                "max_unavailable_unaffected_reads_s": max_unavailable(log.unaffected, injected, after),
                "failures": failure_kinds(log, injected, after),
                "p99_ms": {
                    "before": p99_ms(log.attempts, before, injected),
                    "during": p99_ms(log.attempts, injected, recovered),
                    "after": p99_ms(log.attempts, recovered, after),
                },
            }
        stop.set()
        driver.join()
        reader.join()
        found, missing = persisted(w)
        codes = all_badge_codes(w)
        result = {
            "rate_units_per_s": args.rate,
            "units": log.units,
            "calls": len(log.attempts),
            "acknowledged": sum(len(v) for v in log.writes.values()),
            "persisted": found,
            "missing": missing[:20],
            "ambiguous_units": log.ambiguous,
            "abandoned_units": log.abandoned,
            **effects(w),
            "duplicate_codes": sum(n > 1 for n in Counter(codes).values()) + len(set(log.codes) - set(codes)),
            "faults": report,
            "max_unavailable_s": {k: v["max_unavailable_s"] for k, v in report.items()},
            "max_unavailable_unaffected_reads_s": {
                k: v["max_unavailable_unaffected_reads_s"] for k, v in report.items()
            },
        }
        return result
    finally:
        stop.set()
        for thread in (driver, reader):
            if thread.is_alive():
                thread.join()
        cluster.stop()
        shutil.rmtree((data / "postgres").resolve(), ignore_errors=True)  # as root it lives in /tmp (cluster.py)
        if getattr(args, "keep", False):
            print(f"kept {data} (logs of every node and replica)", file=sys.stderr)
        else:
            shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1.0, help="supervision cycles started per second")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds of load before and after each fault")
    parser.add_argument("--hold", type=float, default=6.0, help="seconds a killed part stays down")
    parser.add_argument("--freeze", type=float, default=20.0, help="seconds a NATS node stays frozen")
    parser.add_argument("--faults", nargs="+", choices=[f.name for f in faults(0)], help="only these faults")
    parser.add_argument("--keep", action="store_true", help="keep the data folder with every log (post-mortem)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cluster.json")
    args = parser.parse_args()
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
