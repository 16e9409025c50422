"""Events the documents service consumes and publishes.

Publishes (via the outbox, in the storing transaction): `document.rendered` (documents/v1/events.proto).
Consumes from the registry (stream BJSV_REGISTRY), each with its own durable consumer:
  badge.issued                      → badge PDF (附件2); image bytes fetched with GetBadge(view=FULL)
  record.submitted/record.corrected → Annex 3 record PDF (第二十三条)
  feedback.submitted                → Annex 4 feedback PDF
  period.closed                     → district half-month report PDF (第二十四条, D10)
Each document is stored with its owner (issue #12), the same as the registry's for the resource it renders
(services/registry/access.py, workflow/owners.py): a badge belongs to the organisation holding the
appointment and to its holder; an Annex 3 record to the dispatching agency and the submitting supervisor; an
Annex 4 feedback to the dispatching agency and the institution supervised; a report to its district's agency.
Handlers are idempotent: the document is stored and the event marked processed in one transaction, and
a byte-identical re-render of the same subject is not stored twice.
"""

from __future__ import annotations

import datetime as dt
import logging

import grpc

from bjsv.events.v1 import envelope_pb2
from bjsv.registry.v1 import events_pb2 as reg_events
from bjsv.registry.v1 import registry_pb2, registry_pb2_grpc, supervision_events_pb2, supervision_pb2
from common import clients
from common.auth.scope import Owner
from common.bus import Subscription
from common.clock import SHANGHAI
from common.events import unpack
from services.documents.domain.annex3 import ChecklistKind
from services.documents.domain.model import (
    Badge,
    ChecklistAnswer,
    DistrictReport,
    Feedback,
    ItemCount,
    SupervisionRecord,
    SupervisorCategory,
)
from services.documents.rendering import DocumentRenderer

log = logging.getLogger(__name__)

DURABLE_BADGE = "documents-badge-issued"
DURABLE_RECORD = "documents-record-submitted"
DURABLE_FEEDBACK = "documents-feedback-submitted"
DURABLE_PERIOD = "documents-period-closed"
# Renders run one at a time per consumer and take a while: a small fetch spreads the events over the
# replicas and bounds what a replica that dies holds until ack_wait hands it on (bench_cluster once lost
# 20 record documents held by a SIGKILLed replica with a 64-event fetch and ack_wait 120 s).
FETCH = 4

_FORM = {
    supervision_pb2.SUPERVISION_FORM_ON_SITE: ChecklistKind.ON_SITE,
    supervision_pb2.SUPERVISION_FORM_RECORDS_REVIEW: ChecklistKind.RECORDS_REVIEW,
}


def _answer(value: int) -> bool | None:
    answers: dict[int, bool] = {supervision_pb2.ANSWER_VALUE_YES: True, supervision_pb2.ANSWER_VALUE_NO: False}
    return answers.get(value)


def _date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def from_registry_badge(b: registry_pb2.Badge) -> Badge:
    category = {
        registry_pb2.SUPERVISOR_TYPE_EXTERNAL: SupervisorCategory.EXTERNAL,
        registry_pb2.SUPERVISOR_TYPE_INTERNAL: SupervisorCategory.INTERNAL,
    }.get(b.type)
    valid_from, valid_until = b.valid_from[:7], b.valid_until[:7]
    if (not valid_from or not valid_until) and "-" in b.validity_text:  # "2022.06-2025.06"
        start, end = b.validity_text.split("-", 1)
        valid_from, valid_until = start.replace(".", "-"), end.replace(".", "-")
    return Badge(
        code=b.code,
        holder_name=b.holder_name,
        valid_from=valid_from,
        valid_until=valid_until,
        issuer=b.issuer,
        issuer_name=b.issuer_name,
        category=category,
        level=registry_pb2.SupervisorLevel.Name(b.level) if b.level else "",
        photo=b.photo,
        issuer_seal=b.issuer_seal,
        issuer_logo=b.issuer_logo,
        validity=b.validity_text,
    )


def from_registry_record(r: supervision_pb2.SupervisionRecord) -> SupervisionRecord:
    kind = _FORM.get(r.form)
    if kind is None:
        raise ValueError(f"{r.name}: record without a form")
    answers = tuple(
        ChecklistAnswer(a.item_number, a.answer == supervision_pb2.ANSWER_VALUE_YES, a.remark)
        for a in r.answers
        if a.answer != supervision_pb2.ANSWER_VALUE_UNSPECIFIED
    )
    return SupervisionRecord(
        name=r.name,
        kind=kind,
        institution_name=r.institution_name,
        plan_name=r.plan_title,
        assessment_method=r.certification_mode_text,
        answers=answers,
        problems=r.problems,
        supervisor_names=tuple(r.supervisor_signatures),
        signed_date=_date(r.sign_date),
        institution_head_name=r.institution_head_signature,
    )


def from_registry_feedback(f: supervision_pb2.SupervisorFeedback) -> Feedback:
    return Feedback(
        name=f.name,
        reporting_unit=f.institution_name,
        supervisor_name=f.supervisor_name,
        entry_time=f.entry_time.ToDatetime(tzinfo=dt.UTC) if f.HasField("entry_time") else None,
        exit_time=f.exit_time.ToDatetime(tzinfo=dt.UTC) if f.HasField("exit_time") else None,
        badge_worn=_answer(f.badge_worn),
        duties_performed=_answer(f.duties_performed),
        integrity_kept=_answer(f.integrity_kept),
        comments=f.comments,
        signed_by=f.signed_by,
        signed_date=f.submit_time.ToDatetime(tzinfo=dt.UTC).astimezone(SHANGHAI).date()
        if f.HasField("submit_time")
        else None,
    )


def from_registry_report(r: supervision_pb2.DistrictReport) -> DistrictReport:
    by_form = {_FORM.get(c.form): c.count for c in r.supervisions_by_form}
    counts = tuple(ItemCount(_FORM[c.form], c.item_number, c.count) for c in r.no_counts if c.form in _FORM and c.count)
    closed = r.close_time.ToDatetime(tzinfo=dt.UTC).astimezone(SHANGHAI).date() if r.HasField("close_time") else None
    return DistrictReport(
        name=r.name,
        district_code=r.district,
        district_name=r.district_name,
        period_start=dt.date.fromisoformat(r.period_start),
        period_end=dt.date.fromisoformat(r.period_end),
        on_site_count=by_form.get(ChecklistKind.ON_SITE, 0),
        records_review_count=by_form.get(ChecklistKind.RECORDS_REVIEW, 0),
        non_compliant_counts=counts,
        cases_opened=r.cases_opened,
        cases_decided=r.cases_decided,
        report_date=closed,
        late_record_count=r.late_records,
        late_feedback_count=r.late_feedback,
        feedback_count=r.feedback_count,
        dispatches_created=r.dispatches_created,
    )


def badge_owner(event: reg_events.BadgeIssued, badge: registry_pb2.Badge) -> Owner:
    """第十条、第十二条: the appointing organisation (unknown for events older than the field: no one's own)."""
    return Owner.of(event.appointing_organization, badge.supervisor or event.supervisor.name)


def record_owner(r: supervision_pb2.SupervisionRecord) -> Owner:
    """第二十三条: the dispatching agency (an institution supervising internally) and the submitter."""
    return Owner.of(r.dispatching_agency, *([r.submitted_by] if r.submitted_by else []))


def feedback_owner(f: supervision_pb2.SupervisorFeedback) -> Owner:
    """附件4: filled in by the institution supervised, for the dispatching agency."""
    return Owner(district=f.dispatching_agency, institution=f.institution)


def report_owner(r: supervision_pb2.DistrictReport) -> Owner:
    """第二十四条: the agency of the district (agencies/A for the city level)."""
    return Owner.of(f"agencies/{r.district}") if r.district else Owner()


class DocumentEvents:
    """Handlers of the registry events the documents service renders from."""

    def __init__(self, renderer: DocumentRenderer, *, registry_target: str, timeout: float = 10.0) -> None:
        self.renderer = renderer
        self.registry_target = registry_target
        self.timeout = timeout
        self._channel: grpc.aio.Channel | None = None

    def subscriptions(self) -> list[Subscription]:
        return [
            Subscription(
                durable=DURABLE_BADGE,
                source="registry",
                types=["badge.issued"],
                handler=self.on_badge_issued,
                batch=FETCH,
            ),
            Subscription(
                durable=DURABLE_RECORD,
                source="registry",
                types=["record.submitted", "record.corrected"],
                handler=self.on_record,
                batch=FETCH,
            ),
            Subscription(
                durable=DURABLE_FEEDBACK,
                source="registry",
                types=["feedback.submitted"],
                handler=self.on_feedback,
                batch=FETCH,
            ),
            Subscription(
                durable=DURABLE_PERIOD,
                source="registry",
                types=["period.closed"],
                handler=self.on_period_closed,
                batch=FETCH,
            ),
        ]

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(grace=None)

    async def fetch_badge(self, name: str) -> registry_pb2.Badge:
        if self._channel is None:
            self._channel = clients.channel(self.registry_target)
        stub = registry_pb2_grpc.RegistryServiceStub(self._channel)
        resp = await clients.invoke(
            stub.GetBadge(registry_pb2.GetBadgeRequest(name=name, view=registry_pb2.VIEW_FULL), timeout=self.timeout),
            dependency="registry",
        )
        return resp.badge

    async def on_badge_issued(self, env: envelope_pb2.EventEnvelope) -> None:
        event = unpack(env, reg_events.BadgeIssued)
        badge = await self.fetch_badge(event.badge or f"badges/{event.code}")
        rendered, _ = await self.renderer.badge(
            from_registry_badge(badge), owner=badge_owner(event, badge), processed=(DURABLE_BADGE, env.event_id)
        )
        log.info("badge rendered from %s: %s", env.event_id, rendered.info.name if rendered.info else "duplicate")

    async def on_record(self, env: envelope_pb2.EventEnvelope) -> None:
        event: supervision_events_pb2.RecordSubmitted | supervision_events_pb2.RecordCorrected
        if env.type == "record.submitted":
            event = unpack(env, supervision_events_pb2.RecordSubmitted)
        else:
            event = unpack(env, supervision_events_pb2.RecordCorrected)
        await self.renderer.record(
            from_registry_record(event.record),
            owner=record_owner(event.record),
            processed=(DURABLE_RECORD, env.event_id),
        )

    async def on_feedback(self, env: envelope_pb2.EventEnvelope) -> None:
        event = unpack(env, supervision_events_pb2.FeedbackSubmitted)
        await self.renderer.feedback(
            from_registry_feedback(event.feedback),
            owner=feedback_owner(event.feedback),
            processed=(DURABLE_FEEDBACK, env.event_id),
        )

    async def on_period_closed(self, env: envelope_pb2.EventEnvelope) -> None:
        event = unpack(env, supervision_events_pb2.PeriodClosed)
        await self.renderer.report(
            from_registry_report(event.report),
            owner=report_owner(event.report),
            processed=(DURABLE_PERIOD, env.event_id),
        )
