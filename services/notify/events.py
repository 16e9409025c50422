"""Events the notify service consumes (source "registry") and how each becomes a Reaction.

One durable pull consumer ``notify-registry`` on the registry stream; every handler is idempotent:
``mark_processed`` runs in the same transaction as the inbox writes and timers (repository.apply_reaction),
and every notification/timer key is a business key, so even a re-published event with a new id is harmless.

Published by notify (outbox, subject bjsv.notify.<type>): ``notification.delivered`` (e-mail accepted),
``delivery.dead_lettered``, ``operator.alerted``; and per recipient ``bjsv.notify.inbox.<collection>.<id>``
(type ``inbox.message``, see channels.NatsInboxSender).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from google.protobuf.timestamp_pb2 import Timestamp

from bjsv.documents.v1 import documents_pb2
from bjsv.events.v1 import envelope_pb2
from bjsv.registry.v1 import events_pb2 as reg_events
from bjsv.registry.v1 import registry_pb2, supervision_events_pb2, supervision_pb2
from common.bus import Subscription
from common.clock import SHANGHAI
from common.events import unpack
from services.notify.domain import messages, reactions
from services.notify.domain.model import CITY_CENTRE, AppointmentTerm, Reaction
from services.notify.domain.reactions import DispatchInfo, Party
from services.notify.engine import Notifier

log = logging.getLogger(__name__)

CONSUMER = "notify-registry"

# Outbox event types this service publishes.
PUBLISHED_TYPES = ("notification.delivered", "delivery.dead_lettered", "operator.alerted")


# -- proto → domain ---------------------------------------------------------------------------------------


def ts_date(ts: Timestamp) -> dt.date | None:
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime(tzinfo=dt.UTC).astimezone(SHANGHAI).date()


def iso_date(text: str) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def ts_epoch(ts: Timestamp) -> float | None:
    if not ts.seconds and not ts.nanos:
        return None
    return ts.seconds + ts.nanos / 1e9


def recipients_by_role(recipients, role: str) -> list[Party]:
    return [Party(r.party, r.display_name) for r in recipients if r.role == role and r.party]


def dispatch_info(
    d: supervision_pb2.Dispatch,
    plan: supervision_pb2.Plan | None = None,
    recipients=(),
    record_due: str = "",
    feedback_due: str = "",
) -> DispatchInfo:
    names = {r.party: r.display_name for r in recipients}
    members = tuple(
        Party(m.supervisor, m.display_name or names.get(m.supervisor, ""))
        for m in d.members
        if m.state in (supervision_pb2.MEMBER_STATE_ACTIVE, supervision_pb2.MEMBER_STATE_UNSPECIFIED)
    )
    institution = plan.institution if plan and plan.institution else d.institution
    institution_name = (plan.institution_name if plan and plan.institution_name else d.institution_name) or names.get(
        institution, ""
    )
    internal = d.scope == supervision_pb2.DISPATCH_SCOPE_INTERNAL or d.dispatching_agency.startswith("institutions/")
    return DispatchInfo(
        dispatch=d.name,
        plan_name=(plan.title if plan and plan.title else d.plan_title),
        institution=Party(institution, institution_name),
        dispatching_agency=Party(d.dispatching_agency, names.get(d.dispatching_agency, "")),
        members=members,
        supervision_start=ts_date(d.supervision_start_time),
        supervision_end=ts_date(d.supervision_end_time),
        record_due=iso_date(record_due or d.record_due_date),
        feedback_due=iso_date(feedback_due or d.feedback_due_date),
        external=not internal,
    )


def appointment_term(
    supervisor: reg_events.SupervisorSnapshot,
    org: reg_events.OrganizationSnapshot,
    term: registry_pb2.AppointmentTerm,
    renewal: bool,
    age_limit_years: int,
) -> AppointmentTerm | None:
    start, end = iso_date(term.start_date), iso_date(term.end_date)
    if start is None or end is None:
        return None
    gender = {registry_pb2.GENDER_MALE: "male", registry_pb2.GENDER_FEMALE: "female"}.get(supervisor.gender, "")
    return AppointmentTerm(
        supervisor=supervisor.name,
        supervisor_name=supervisor.full_name,
        appointing_org=org.name or supervisor.organization,
        term_start=start,
        term_end=end,
        birth_date=iso_date(supervisor.birth_date),
        gender=gender,
        renewal=renewal,
        age_limit_years=age_limit_years or None,
    )


def district_report_data(report: supervision_pb2.DistrictReport, today: dt.date) -> documents_pb2.DistrictReportData:
    """The documents service's view of a 第二十四条 half-month report (for rendering the PDF)."""
    data = documents_pb2.DistrictReportData(
        name=report.name,
        district_code=report.district,
        district_name=report.district_name,
        period_start=report.period_start,
        period_end=report.period_end,
        cases_opened=report.cases_opened,
        cases_decided=report.cases_decided,
        report_date=today.isoformat(),
    )
    for fc in report.supervisions_by_form:
        if fc.form == supervision_pb2.SUPERVISION_FORM_ON_SITE:
            data.on_site_count += fc.count
        elif fc.form == supervision_pb2.SUPERVISION_FORM_RECORDS_REVIEW:
            data.records_review_count += fc.count
    for item in report.no_counts:
        data.non_compliant_counts.add(form=item.form, item=item.item_number, count=item.count)
    return data


# -- handlers --------------------------------------------------------------------------------------------


class RegistryEvents:
    """Turns registry events into reactions and applies them through the Notifier."""

    def __init__(self, notifier: Notifier) -> None:
        self.n = notifier
        self.handlers: dict[str, Callable[[envelope_pb2.EventEnvelope], Reaction | None]] = {
            "dispatch.created": self.dispatch_created,
            "dispatch.cancelled": self.dispatch_cancelled,
            "dispatch.member_replaced": self.member_replaced,
            "record.submitted": self.record_submitted,
            "feedback.submitted": self.feedback_submitted,
            "case.opened": self.case_opened,
            "case.escalated": self.case_escalated,
            "case.decided": self.case_decided,
            "immediate_report.raised": self.immediate_report,
            "period.closed": self.period_closed,
            "appointment.started": self.appointment_started,
            "appointment.renewed": self.appointment_renewed,
            "appointment.expired": self.appointment_ended,
            "appointment.revoked": self.appointment_ended,
            "badge.filed": self.badge_filed,
            "complaint.received": self.complaint_received,
            "major_problem.reported": self.major_problem_reported,
        }

    def subscription(self, *, max_deliver: int = 8, ack_wait: float = 60.0, batch: int = 128) -> Subscription:
        # One transaction per fetched batch: on SQLite the commit dominates (≈70 events/s one by one vs
        # 250–550 batched on the 2-core box, bench/bench_notify.py); each event keeps its processed row.
        return Subscription(
            durable=CONSUMER,
            source="registry",
            types=list(self.handlers),
            handler=self.handle,
            batch_handler=self.handle_batch,
            max_deliver=max_deliver,
            ack_wait=ack_wait,
            batch=batch,
        )

    def reaction_for(self, env: envelope_pb2.EventEnvelope) -> Reaction | None:
        handler = self.handlers.get(env.type)
        return handler(env) if handler is not None else None

    async def handle_batch(self, envs: list[envelope_pb2.EventEnvelope]) -> None:
        """A fetched batch in one transaction; any failure sends the batch down the per-event path."""
        items = [(env.event_id, self.reaction_for(env), ts_epoch(env.occurred_time)) for env in envs]
        await self.n.apply_batch(items, consumer=CONSUMER)

    async def handle(self, env: envelope_pb2.EventEnvelope) -> None:
        """One event (the per-event path: retries, then the dead-letter subject)."""
        reaction = self.reaction_for(env)
        await self.n.apply(
            reaction or Reaction(), consumer=CONSUMER, event_id=env.event_id, event_wall_ts=ts_epoch(env.occurred_time)
        )

    # Each method below is pure (payload → Reaction) apart from reading the clock and the calendar.

    def dispatch_created(self, env) -> Reaction:
        ev = unpack(env, supervision_events_pb2.DispatchCreated)
        info = dispatch_info(ev.dispatch, ev.plan, ev.recipients, ev.record_due_date, ev.feedback_due_date)
        return reactions.on_dispatch_created(info, self.n.calendar(), self.n.policy, self.n.clock.now())

    def dispatch_cancelled(self, env) -> Reaction:
        ev = unpack(env, supervision_events_pb2.DispatchCancelled)
        return reactions.on_dispatch_cancelled(ev.dispatch.name or env.subject)

    def member_replaced(self, env) -> Reaction:
        ev = unpack(env, supervision_events_pb2.DispatchMemberReplaced)
        info = dispatch_info(ev.dispatch, None, ev.recipients)
        joiner = next((m for m in info.members if m.name == ev.replacement), Party(ev.replacement))
        return reactions.on_member_replaced(
            info, ev.replaced_supervisor, joiner, self.n.calendar(), self.n.policy, self.n.clock.now()
        )

    def record_submitted(self, env) -> Reaction:
        ev = unpack(env, supervision_events_pb2.RecordSubmitted)
        rec = ev.record
        info = dispatch_info(ev.dispatch, None, ev.recipients, record_due=rec.due_date)
        if rec.dispatching_agency and not info.dispatching_agency.name:
            info = DispatchInfo(**{**info.__dict__, "dispatching_agency": Party(rec.dispatching_agency)})
        if rec.plan_title:
            info = DispatchInfo(**{**info.__dict__, "plan_name": rec.plan_title})
        deadline = reactions.record_deadline(info)
        return reactions.on_submission(
            deadline,
            submitted=rec.name,
            late=rec.late,
            submitted_on=ts_date(rec.submit_time) or self.n.clock.today(),
            late_workdays=rec.late_working_days,
        )

    def feedback_submitted(self, env) -> Reaction:
        ev = unpack(env, supervision_events_pb2.FeedbackSubmitted)
        fb = ev.feedback
        info = dispatch_info(ev.dispatch, None, ev.recipients, feedback_due=fb.due_date)
        if fb.plan_title:
            info = DispatchInfo(**{**info.__dict__, "plan_name": fb.plan_title})
        if fb.dispatching_agency and not info.dispatching_agency.name:
            info = DispatchInfo(**{**info.__dict__, "dispatching_agency": Party(fb.dispatching_agency)})
        deadline = reactions.feedback_deadline(info, Party(fb.supervisor, fb.supervisor_name))
        return reactions.on_submission(
            deadline,
            submitted=fb.name,
            late=fb.late,
            submitted_on=ts_date(fb.submit_time) or self.n.clock.today(),
            late_workdays=fb.late_working_days,
        )

    def _case(self, case: supervision_pb2.PenaltyCase, recipients, round_: int) -> Reaction | None:
        rec = case.recommendation
        if rec.rung in (supervision_pb2.PENALTY_RUNG_UNSPECIFIED, supervision_pb2.PENALTY_RUNG_NO_ACTION):
            return None
        targets = [r.party for r in recipients if r.role in ("city_centre", "district_agency") and r.party]
        if not targets:
            targets = [CITY_CENTRE]
        return reactions.on_case_awaiting_decision(
            case=case.name,
            recipients=list(dict.fromkeys(targets)),
            target_name=case.subject_name or case.subject,
            recommendation=rec.sanction_text or supervision_pb2.PenaltyRung.Name(rec.rung),
            article=rec.article or "第二十六条",
            opened_on=ts_date(case.open_time) or self.n.clock.today(),
            round_=round_,
            calendar=self.n.calendar(),
            policy=self.n.policy,
        )

    def case_opened(self, env) -> Reaction | None:
        ev = unpack(env, supervision_events_pb2.CaseOpened)
        return self._case(ev.penalty_case, ev.recipients, 0)

    def case_escalated(self, env) -> Reaction | None:
        ev = unpack(env, supervision_events_pb2.CaseEscalated)
        return self._case(ev.penalty_case, ev.recipients, max(ev.penalty_case.escalation_count, 1))

    def case_decided(self, env) -> Reaction:
        ev = unpack(env, supervision_events_pb2.CaseDecided)
        return reactions.on_case_decided(ev.penalty_case.name or env.subject)

    def immediate_report(self, env) -> Reaction:
        ev = unpack(env, supervision_events_pb2.ImmediateReportRaised)
        case = ev.penalty_case
        agency = ev.reporting_agency or env.actor
        draft = messages.immediate_report(
            report=case.name or env.subject,
            reporting_agency=agency,
            reporting_agency_name="",
            summary=ev.summary or case.description,
            institution_name=case.subject_name,
            articles=tuple(a for a in (case.recommendation.article,) if a),
        )
        return Reaction(notifications=[draft])

    def period_closed(self, env) -> Reaction:
        ev = unpack(env, supervision_events_pb2.PeriodClosed)
        rpt = ev.report
        start, end = iso_date(rpt.period_start), iso_date(rpt.period_end)
        if start is None or end is None:
            return Reaction()
        recipients = [r.party for r in ev.recipients if r.party] or [rpt.recipient or CITY_CENTRE]
        agency = f"agencies/{rpt.district}"
        total = sum(fc.count for fc in rpt.supervisions_by_form)
        summary = (
            f"督导{total}次，逾期记录表{rpt.late_records}份、逾期反馈表{rpt.late_feedback}份，"
            f"立案{rpt.cases_opened}件、决定{rpt.cases_decided}件"
        )
        data = district_report_data(rpt, self.n.clock.today()).SerializeToString()
        r = Reaction()
        for rcpt in dict.fromkeys(recipients):
            draft = messages.period_report(
                period=rpt.name,
                agency=agency,
                agency_name=rpt.district_name,
                period_start=start,
                period_end=end,
                summary=summary,
                recipient=rcpt,
            )
            r.notifications.append(draft)
            r.attachment_requests[draft.key] = data
        return r

    def appointment_started(self, env) -> Reaction | None:
        ev = unpack(env, reg_events.AppointmentStarted)
        term = appointment_term(ev.supervisor, ev.appointing_organization, ev.term, False, ev.age_limit_years)
        return reactions.on_appointment(term, self.n.policy, self.n.clock.now()) if term else None

    def appointment_renewed(self, env) -> Reaction | None:
        ev = unpack(env, reg_events.AppointmentRenewed)
        term = appointment_term(ev.supervisor, ev.appointing_organization, ev.term, True, ev.age_limit_years)
        return reactions.on_appointment(term, self.n.policy, self.n.clock.now()) if term else None

    def appointment_ended(self, env) -> Reaction:
        ev: reg_events.AppointmentExpired | reg_events.AppointmentRevoked
        if env.type == "appointment.expired":
            ev = unpack(env, reg_events.AppointmentExpired)
        else:
            ev = unpack(env, reg_events.AppointmentRevoked)
        return reactions.on_appointment_ended(ev.supervisor.name)

    def complaint_received(self, env) -> Reaction:
        ev = unpack(env, supervision_events_pb2.ComplaintReceived)
        c = ev.complaint
        return reactions.on_complaint_received(
            complaint=c.name or env.subject, recipients=[r.party for r in ev.recipients if r.party],
            subject_name=c.subject_name or c.subject, source=c.source, content=c.content,
        )  # fmt: skip

    def major_problem_reported(self, env) -> Reaction:
        ev = unpack(env, supervision_events_pb2.MajorProblemReported)
        r = ev.report
        return reactions.on_major_problem(
            report=r.name or env.subject, recipients=[x.party for x in ev.recipients if x.party],
            reporter_name=ev.reporter_name, findings=r.findings, suggestions=r.suggestions,
        )  # fmt: skip

    def badge_filed(self, env) -> Reaction:
        ev = unpack(env, reg_events.BadgeFiled)
        draft = messages.badge_filed(
            badge=ev.badge,
            badge_code=ev.code,
            institution=ev.institution.name,
            supervisor_name=ev.supervisor.full_name,
            filed_on=ts_date(env.occurred_time) or self.n.clock.today(),
        )
        return Reaction(notifications=[draft])
