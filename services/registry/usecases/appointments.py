"""Appointments: 聘任 (第十条), 续聘 and 聘期届满自动解聘 (第十三条), 暂停督导工作 / 恢复 / 取消资格 (第二十七条).

The domain (services/registry/domain/appointments.py) decides every transition; these functions load the
rows, persist the answer and record the event in the same transaction. The session-level functions are
also what the workflow calls when a 第二十七条 sanction commits with its case decision.
"""

from __future__ import annotations

import builtins  # methods named `list` shadow the builtin in class-level annotations
import datetime as dt
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from bjsv.registry.v1 import events_pb2
from common import context
from common.api import Page
from common.policy import PolicyParameters
from services.registry import events as ev
from services.registry.domain import appointments as machine
from services.registry.domain import terms
from services.registry.domain import training as training_rules
from services.registry.domain.policy import DEFAULT_POLICY, RegistryPolicy
from services.registry.domain.supervisors import Status, Training
from services.registry.eligibility import RulesEligibility, SupervisorFacts, facts_of
from services.registry.storage import models as m
from services.registry.storage import repository as repo
from services.registry.usecases.badges import revoke_badge_row
from services.registry.usecases.context import Listing, RegistryContext, listing
from services.registry.usecases.errors import found, translated
from services.registry.usecases.supervisors import get_supervisor

T = TypeVar("T")
EXPIRY_BATCH = 500


def get_appointment(session: Session, *, appointment_id: int, lock: bool = False) -> m.Appointment:
    return found(repo.appointment(session, appointment_id=appointment_id, lock=lock), f"appointments/{appointment_id}")


def state_of(appt: m.Appointment) -> machine.AppointmentState:
    return machine.AppointmentState(f"appointments/{appt.id}", Status(appt.status), appt.term_number,
                                    appt.term_start, appt.term_end)  # fmt: skip


def _term_message(t: m.AppointmentTerm):
    return ev.term_message(t, terms.validity_text(t.start_date, t.end_date))


def _parties(session: Session, appt: m.Appointment, sup: m.Supervisor) -> dict:
    """The part every appointment event carries."""
    return dict(appointment=f"appointments/{appt.id}", supervisor=ev.supervisor_snapshot(session, sup),
                appointing_organization=ev.organization_snapshot(session, appt.organization))  # fmt: skip


@translated
def check_training(
    session: Session, sup: m.Supervisor, *, start: dt.date, today: dt.date, max_backdate_days: int | None
) -> Training | None:
    """D22 (第十条): the term starts on or after a passed training, and not too far back; returns that
    training (the fact the rules service gets)."""
    trainings = [repo.as_training(r) for r in repo.training_rows(session, supervisor_ids=[sup.id])]
    training_rules.check_term_start(f"supervisors/{sup.id}", trainings, start=start, today=today,
                                    max_backdate_days=max_backdate_days)  # fmt: skip
    # max_backdate_days is appointment.max_backdate_days from the rule set (D22); None only for the operator's
    # bulk seed, which takes over terms as they were recorded elsewhere.
    return training_rules.passed_on(trainings, start)


@translated
def check_can_appoint(session: Session, *, supervisor_id: int) -> m.Supervisor:
    sup = get_supervisor(session, supervisor_id=supervisor_id)
    machine.check_can_appoint(f"supervisors/{sup.id}", Status(sup.status))
    return sup


@translated
def check_can_renew(session: Session, *, appointment_id: int) -> tuple[m.Appointment, m.Supervisor]:
    appt = get_appointment(session, appointment_id=appointment_id)
    machine.check_can_renew(state_of(appt))
    return appt, get_supervisor(session, supervisor_id=appt.supervisor_id)


@translated
def appoint(
    session: Session, *, supervisor_id: int, start: dt.date, decision_id: str, term_years: int,
    age_limit_years: int = 0, appointed_by: str = "", today: dt.date, now: dt.datetime,
    policy: RegistryPolicy = DEFAULT_POLICY, max_backdate_days: int | None = None,
) -> m.Appointment:  # fmt: skip
    """聘任 (第十条) for `term_years` (第十三条) with the rules service's decision id; `age_limit_years`
    (第九条（五）, D6, from the rule set) travels with the event for the age notices."""
    sup = get_supervisor(session, supervisor_id=supervisor_id)
    check_training(session, sup, start=start, today=today, max_backdate_days=max_backdate_days)
    term = machine.appoint(f"supervisors/{sup.id}", Status(sup.status), start=start, today=today,
                           term_years=term_years, max_future_days=policy.max_future_start_days)  # fmt: skip
    organization = ev.supervisor_organization(session, sup)[0]
    appt, t = repo.insert_appointment(
        session,
        sup=sup,
        organization=organization,
        term=term,
        decision_id=decision_id,
        appointed_by=appointed_by,
        actor=context.current_caller().org,
        now=now,
    )
    ev.publish(session, ev.APPOINTMENT_STARTED, f"appointments/{appt.id}", events_pb2.AppointmentStarted(
        **_parties(session, appt, sup), term=_term_message(t), appointed_by=appointed_by,
        age_limit_years=age_limit_years,
    ))  # fmt: skip
    return appt


@translated
def renew(
    session: Session, *, appointment_id: int, start: dt.date, decision_id: str, term_years: int,
    age_limit_years: int = 0, renewed_by: str = "", today: dt.date, now: dt.datetime,
    policy: RegistryPolicy = DEFAULT_POLICY, max_backdate_days: int | None = None,
) -> m.Appointment:  # fmt: skip
    """续聘 (第十三条): a new term from `start`; the badge validity follows the new term (D4)."""
    appt = get_appointment(session, appointment_id=appointment_id, lock=True)
    sup = get_supervisor(session, supervisor_id=appt.supervisor_id)
    check_training(session, sup, start=start, today=today, max_backdate_days=max_backdate_days)
    term, change = machine.renew(state_of(appt), start=start, today=today, term_years=term_years,
                                 max_future_days=policy.max_future_start_days)  # fmt: skip
    previous = repo.current_term(session, appt)
    t = repo.insert_term(session, appt=appt, term=term, decision_id=decision_id, recorded_by=renewed_by, now=now)
    if change is not None:
        repo.save_change(session, appt=appt, sup=sup, change=change, decided_by=renewed_by,
                         actor=context.current_caller().org, now=now)  # fmt: skip
    repo.set_current_term(session, appt=appt, sup=sup, term=term, decision_id=decision_id, now=now)
    ev.publish(session, ev.APPOINTMENT_RENEWED, f"appointments/{appt.id}", events_pb2.AppointmentRenewed(
        **_parties(session, appt, sup), term=_term_message(t), previous_term=_term_message(previous),
        renewed_by=renewed_by, age_limit_years=age_limit_years,
    ))  # fmt: skip
    return appt


def _decide(
    session: Session, appointment_id: int, decide: Callable[[machine.AppointmentState], machine.Change], *,
    decided_by: str, case_reference: str, now: dt.datetime,
) -> tuple[m.Appointment, m.Supervisor, m.AppointmentTerm]:  # fmt: skip
    appt = get_appointment(session, appointment_id=appointment_id, lock=True)
    change = decide(state_of(appt))
    sup = get_supervisor(session, supervisor_id=appt.supervisor_id)
    repo.save_change(session, appt=appt, sup=sup, change=change, decided_by=decided_by, case_reference=case_reference,
                     actor=context.current_caller().org, now=now)  # fmt: skip
    return appt, sup, repo.current_term(session, appt)


@translated
def suspend(
    session: Session, *, appointment_id: int, reason: str, article: str, decided_by: str = "",
    case_reference: str = "", now: dt.datetime,
) -> m.Appointment:  # fmt: skip
    """暂停督导工作 (第二十七条)."""
    appt, sup, t = _decide(session, appointment_id, lambda st: machine.suspend(st, reason=reason, article=article),
                           decided_by=decided_by, case_reference=case_reference, now=now)  # fmt: skip
    ev.publish(session, ev.APPOINTMENT_SUSPENDED, f"appointments/{appt.id}", events_pb2.AppointmentSuspended(
        **_parties(session, appt, sup), reason=reason, article=article, decided_by=decided_by,
        case_reference=case_reference, term=_term_message(t),
    ))  # fmt: skip
    return appt


@translated
def reinstate(
    session: Session, *, appointment_id: int, reason: str, decided_by: str = "", today: dt.date, now: dt.datetime
) -> m.Appointment:  # fmt: skip
    """恢复督导工作 after a suspension (active again, or expired if the term ended meanwhile)."""
    appt, sup, t = _decide(session, appointment_id, lambda st: machine.reinstate(st, reason=reason, today=today),
                           decided_by=decided_by, case_reference="", now=now)  # fmt: skip
    ev.publish(session, ev.APPOINTMENT_REINSTATED, f"appointments/{appt.id}", events_pb2.AppointmentReinstated(
        **_parties(session, appt, sup), reason=reason, decided_by=decided_by, term=_term_message(t),
    ))  # fmt: skip
    return appt


@translated
def revoke(
    session: Session, *, appointment_id: int, reason: str, article: str, decided_by: str = "",
    case_reference: str = "", now: dt.datetime,
) -> m.Appointment:  # fmt: skip
    """取消资格 (第二十七条): the appointment ends and every badge of it is revoked (codes are kept, D2)."""
    appt, sup, t = _decide(session, appointment_id, lambda st: machine.revoke(st, reason=reason, article=article),
                           decided_by=decided_by, case_reference=case_reference, now=now)  # fmt: skip
    codes = []
    for b in repo.valid_badges_of(session, appt):
        revoke_badge_row(session, b, reason=f"取消资格：{reason}", decided_by=decided_by, now=now)
        codes.append(b.code)
    ev.publish(session, ev.APPOINTMENT_REVOKED, f"appointments/{appt.id}", events_pb2.AppointmentRevoked(
        **_parties(session, appt, sup), reason=reason, article=article, decided_by=decided_by,
        case_reference=case_reference, revoked_badge_codes=codes, term=_term_message(t),
    ))  # fmt: skip
    return appt


def expire_due(session: Session, *, as_of: dt.date, now: dt.datetime, limit: int = EXPIRY_BATCH) -> list[int]:
    """聘期届满自动解聘 (第十三条): every active/suspended appointment whose last day is before `as_of`."""
    done = []
    for appt_id in repo.due_for_expiry(session, as_of=as_of, limit=limit):
        appt = get_appointment(session, appointment_id=appt_id, lock=True)
        change = machine.expire(state_of(appt), as_of=as_of)
        if change is None:  # changed since the scan
            continue
        sup = get_supervisor(session, supervisor_id=appt.supervisor_id)
        repo.save_change(session, appt=appt, sup=sup, change=change, actor=context.current_caller().org, now=now)
        ev.publish(session, ev.APPOINTMENT_EXPIRED, f"appointments/{appt.id}", events_pb2.AppointmentExpired(
            **_parties(session, appt, sup), term=_term_message(repo.current_term(session, appt)),
            expired_date=as_of.isoformat(), badge_codes=repo.badge_codes_of_term(session, appt),
        ))  # fmt: skip
        done.append(appt.id)
    return done


class Appointments:
    """The appointment use cases as the servicer calls them: rules decision first, then one write."""

    def __init__(self, ctx: RegistryContext, *, rules: RulesEligibility, parameters: PolicyParameters) -> None:
        self.ctx = ctx
        self.rules = rules
        self.parameters = parameters

    async def _facts(
        self, start: dt.date, *, supervisor_id: int | None = None, appointment_id: int | None = None
    ) -> SupervisorFacts:
        """The registry's own preconditions (state, D22 training), then the facts the rules service decides on."""
        today = self.ctx.today()
        backdate = int(await self.parameters.get("appointment.max_backdate_days", today))  # D22, the rule set

        def run(s: Session) -> SupervisorFacts:
            if appointment_id is not None:
                appt, sup = check_can_renew(s, appointment_id=appointment_id)
            elif supervisor_id is not None:
                sup, appt = check_can_appoint(s, supervisor_id=supervisor_id), None
            else:
                raise TypeError("facts of neither a supervisor nor an appointment")
            trained = check_training(s, sup, start=start, today=today, max_backdate_days=backdate)
            inst_id = sup.institution_id
            inst = found(s.get(m.Institution, inst_id), f"institutions/#{inst_id}") if inst_id else None
            inst_name = ev.institution_name(inst) if inst is not None else ""
            return facts_of(sup, appt, repo.attestations_of(s, supervisor_id=sup.id), inst_name, trained)

        return await self.ctx.read(run)

    async def _term_years(self, start: dt.date, today: dt.date) -> int:
        """The term length in force at `start` (第十三条, from the rule set); the start date must fit it."""
        term_years = int(await self.parameters.get("appointment.term_years", start))
        translated(machine.check_start)(start, today, term_years=term_years,
                                        max_future_days=self.ctx.policy.max_future_start_days)  # fmt: skip
        return term_years

    async def _decision(self, facts: SupervisorFacts, start: dt.date, purpose: str) -> tuple[str, int]:
        """(rules decision id, 第九条（五） age limit in force at `start` for the supervisor's gender, D6)."""
        decision = await self.rules.decide(facts, as_of=start, purpose=purpose)
        key = "eligibility.max_age_male" if facts.male else "eligibility.max_age_female"
        return decision, int(await self.parameters.get(key, start))

    async def appoint(self, supervisor_id: int, start: dt.date | None, appointed_by: str,
                      render: Callable[[Session, m.Appointment], T]) -> T:  # fmt: skip
        today, now = self.ctx.today(), self.ctx.now()
        start = start or today
        years = await self._term_years(start, today)
        backdate = int(await self.parameters.get("appointment.max_backdate_days", today))  # D22, the rule set
        decision, age_limit = await self._decision(
            await self._facts(start, supervisor_id=supervisor_id), start, "appointment"
        )
        return await self.ctx.write(lambda s: render(s, appoint(
            s, supervisor_id=supervisor_id, start=start, decision_id=decision, term_years=years,
            age_limit_years=age_limit, appointed_by=appointed_by, today=today, now=now, policy=self.ctx.policy,
            max_backdate_days=backdate,
        )))  # fmt: skip

    async def renew(self, appointment_id: int, start: dt.date | None, renewed_by: str,
                    render: Callable[[Session, m.Appointment], T]) -> T:  # fmt: skip
        today, now = self.ctx.today(), self.ctx.now()
        start = start or today
        years = await self._term_years(start, today)
        backdate = int(await self.parameters.get("appointment.max_backdate_days", today))  # D22, the rule set
        decision, age_limit = await self._decision(
            await self._facts(start, appointment_id=appointment_id), start, "renewal"
        )
        return await self.ctx.write(lambda s: render(s, renew(
            s, appointment_id=appointment_id, start=start, decision_id=decision, term_years=years,
            age_limit_years=age_limit, renewed_by=renewed_by, today=today, now=now, policy=self.ctx.policy,
            max_backdate_days=backdate,
        )))  # fmt: skip

    async def suspend(self, appointment_id: int, render: Callable[[Session, m.Appointment], T], **decision) -> T:
        """decision: reason, article, decided_by, case_reference."""
        now = self.ctx.now()
        return await self.ctx.write(lambda s: render(s, suspend(s, appointment_id=appointment_id, now=now, **decision)))

    async def reinstate(self, appointment_id: int, render: Callable[[Session, m.Appointment], T], **decision) -> T:
        """decision: reason, decided_by."""
        today, now = self.ctx.today(), self.ctx.now()
        return await self.ctx.write(
            lambda s: render(s, reinstate(s, appointment_id=appointment_id, today=today, now=now, **decision))
        )

    async def revoke(self, appointment_id: int, render: Callable[[Session, m.Appointment], T], **decision) -> T:
        """decision: reason, article, decided_by, case_reference."""
        now = self.ctx.now()
        return await self.ctx.write(lambda s: render(s, revoke(s, appointment_id=appointment_id, now=now, **decision)))

    async def get(self, appointment_id: int, render: Callable[[Session, m.Appointment], T]) -> T:
        return await self.ctx.read(lambda s: render(s, get_appointment(s, appointment_id=appointment_id)))

    async def list(self, page: Page, render: Callable[[Session, m.Appointment], T], **filters) -> Listing[T]:
        return await self.ctx.read(
            lambda s: listing(s, repo.list_appointments(s, page=page, **filters), page, key="id", render=render)
        )

    async def sweep(self, as_of: dt.date) -> builtins.list[int]:
        """聘期届满自动解聘 (第十三条): expire due appointments in batches (one transaction per batch)."""
        done: list[int] = []
        while True:
            batch = await self.ctx.write(expire_due, as_of=as_of, now=self.ctx.now())
            done += batch
            if len(batch) < EXPIRY_BATCH:
                return done
