"""Badges: issue with a code per 附件1 (第十一条 externals by the city centre, 第十二条 internals by their
institution and filed with the city centre), revoke (D2: a code is never reused), list, filings."""

from __future__ import annotations

import builtins  # methods named `list` shadow the builtin in class-level annotations
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from bjsv.registry.v1 import events_pb2, registry_pb2
from common.api import Page
from common.errors import AlreadyExists, NotFound, ResourceExhausted
from common.policy import PolicyParameters
from services.registry import events as ev
from services.registry.domain import appointments as machine
from services.registry.domain import badge_codes as bc
from services.registry.domain import badges as rules
from services.registry.domain import terms
from services.registry.domain.districts import CITY_CODE
from services.registry.domain.policy import DEFAULT_POLICY, RegistryPolicy
from services.registry.domain.supervisors import Status
from services.registry.storage import models as m
from services.registry.storage import repository as repo
from services.registry.usecases.context import Listing, RegistryContext, listing
from services.registry.usecases.errors import found, translated
from services.registry.usecases.supervisors import get_supervisor

T = TypeVar("T")
CITY_CENTRE = f"agencies/{CITY_CODE}"


@dataclass(frozen=True)
class IssuePlan:
    """Everything IssueBadge can read before it takes the allocation lock (see `issue_badge`)."""

    appointment_id: int
    term_number: int
    supervisor_id: int
    supervisor_type: str
    photo_mime_type: str
    institution_id: int | None
    scope: bc.Scope
    issuer: str
    issuer_snapshot: events_pb2.OrganizationSnapshot
    supervisor_snapshot: events_pb2.SupervisorSnapshot
    issuer_seal_sha256: str
    issuer_logo_sha256: str
    valid_from: dt.date
    valid_until: dt.date
    validity_text: str


def _issuable(session: Session, appointment_id: int, issue_date: dt.date, *, lock: bool = False) -> m.Appointment:
    appt = found(repo.appointment(session, appointment_id=appointment_id, lock=lock), f"appointments/{appointment_id}")
    rules.check_issuable(f"appointments/{appt.id}", Status(appt.status), appt.term_end, issue_date)
    return appt


def _scope_for(session: Session, sup: m.Supervisor, year: int, policy: RegistryPolicy) -> tuple[bc.Scope, str]:
    """Allocation scope and issuer: externals are coded and issued by the city centre (第十一条), internals
    by their institution (第十二条)."""
    if sup.type == "external":
        return bc.external_scope(sup.district_code if sup.level == "district" else CITY_CODE, year, policy), CITY_CENTRE
    inst_id = sup.institution_id  # set for every internal supervisor (第十二条)
    inst = repo.institution_by_id(session, institution_id=inst_id) if inst_id is not None else None
    inst = found(inst, f"institutions/#{inst_id}")
    return bc.internal_scope(inst.type_letter, inst.number, year, policy), ev.institution_name(inst)


@translated
def prepare_issue(
    session: Session, *, appointment_id: int, issue_date: dt.date, explicit_serial: int = 0,
    replace_existing: bool = False, policy: RegistryPolicy = DEFAULT_POLICY, limits: bc.SerialLimits = bc.LAYOUT,
) -> IssuePlan:  # fmt: skip
    """The read-only half of IssueBadge: checks and event snapshots (may run in a read transaction)."""
    appt = _issuable(session, appointment_id, issue_date)
    sup = get_supervisor(session, supervisor_id=appt.supervisor_id)
    rules.check_explicit_serial(sup.type, explicit_serial)
    rules.refuse_if_issued([b.code for b in repo.valid_badges_of_term(session, appt)], replace_existing)
    scope, issuer = _scope_for(session, sup, issue_date.year, policy)
    if explicit_serial:
        bc.check_serial_in_range(scope, explicit_serial, limits)
    if (org := repo.issuer_row(session, issuer)) is None:
        raise NotFound(issuer)
    return IssuePlan(
        appointment_id=appt.id, term_number=appt.term_number, supervisor_id=sup.id, supervisor_type=sup.type,
        photo_mime_type=sup.photo_mime, institution_id=sup.institution_id, scope=scope, issuer=issuer,
        issuer_snapshot=ev.organization_snapshot(session, issuer),
        supervisor_snapshot=ev.supervisor_snapshot(session, sup), issuer_seal_sha256=org.seal_sha256,
        issuer_logo_sha256=org.logo_sha256, valid_from=appt.term_start, valid_until=appt.term_end,
        validity_text=terms.validity_text(appt.term_start, appt.term_end),
    )  # fmt: skip


def allocate_code(
    session: Session, *, scope: bc.Scope, explicit_serial: int = 0, limits: bc.SerialLimits = bc.LAYOUT
) -> tuple[str, int]:
    """Allocate a code in `scope` inside the caller's transaction (which then inserts the badge): sequential
    and gap-free (repository.next_serial); explicit serials (internal only, D1) do not move the counter and
    the sequence skips them later. A code is never reused (附件1)."""
    if explicit_serial:
        code = scope.format(explicit_serial)
        if repo.code_taken(session, code=code):
            raise AlreadyExists(
                "SERIAL_TAKEN", f"证卡编号{code}已被使用，证卡编码不得重复使用（附件1）",
                field_name="explicit_serial", resource_name=f"badges/{code}",
            )  # fmt: skip
        return code, explicit_serial
    serial_max = scope.serial_max(limits)
    while True:
        serial = repo.next_serial(session, prefix=scope.prefix)
        if serial > serial_max:
            raise ResourceExhausted(
                "BADGE_SERIALS_EXHAUSTED",
                f"证卡序列码已用尽：{scope.prefix}的序列码{scope.range_text(limits)}已全部赋码，编码不得重复使用（附件1）",
                subject=f"badge-codes/{scope.prefix}",
                metadata={"prefix": scope.prefix, "year": str(scope.year), "max_serial": str(serial_max),
                          "category": scope.category.value},
            )  # fmt: skip
        code = scope.format(serial)
        # only internal scopes can hold explicit serials (D1) that the sequence has to step over
        if not scope.category.internal or not repo.code_taken(session, code=code):
            return code, serial


@translated
def issue_badge(
    session: Session, *, appointment_id: int, issue_date: dt.date, explicit_serial: int = 0,
    replace_existing: bool = False, now: dt.datetime, policy: RegistryPolicy = DEFAULT_POLICY,
    limits: bc.SerialLimits = bc.LAYOUT, plan: IssuePlan | None = None,
) -> m.Badge:  # fmt: skip
    """Issue a badge for an active appointment (第十一条/第十二条); internal badges are filed with the city
    centre in the same transaction (第十二条).

    `plan` (from `prepare_issue` in an earlier read transaction) keeps the reads out of this write
    transaction: on SQLite the whole database is locked from BEGIN IMMEDIATE to COMMIT, on PostgreSQL the
    scope's counter row from the bump to COMMIT. What the plan assumed is re-checked here under the lock
    (the appointment row is locked so two issues for one term cannot both pass the "already issued" check)."""
    appt = _issuable(session, appointment_id, issue_date, lock=True)
    kw: dict[str, Any] = dict(appointment_id=appointment_id, issue_date=issue_date, explicit_serial=explicit_serial,
              replace_existing=replace_existing, policy=policy, limits=limits)  # fmt: skip
    if plan is None or plan.term_number != appt.term_number or plan.appointment_id != appt.id:
        plan = prepare_issue(session, **kw)
    existing = repo.valid_badges_of_term(session, appt)
    rules.refuse_if_issued([b.code for b in existing], replace_existing)
    for old in existing:
        revoke_badge_row(session, old, reason="补发/换发证卡", decided_by="", now=now)
    code, serial = allocate_code(session, scope=plan.scope, explicit_serial=explicit_serial, limits=limits)
    badge = repo.insert_badge(session, m.Badge(
        code=code, prefix=plan.scope.prefix, serial=serial, explicit_serial=bool(explicit_serial),
        category=plan.scope.category.value, year=issue_date.year, supervisor_id=plan.supervisor_id,
        appointment_id=appt.id, term_number=appt.term_number, issuer=plan.issuer,
        district_code=plan.scope.district_code, institution_id=plan.institution_id, valid_from=plan.valid_from,
        valid_until=plan.valid_until, validity_text=plan.validity_text, issue_date=issue_date,
        replaces_code=existing[-1].code if existing else "", created_at=now,
    ))  # fmt: skip
    _publish_issued(session, badge, plan, policy)
    if plan.scope.category.internal:
        filing = repo.insert_filing(
            session,
            m.BadgeFiling(
                badge_code=code,
                institution_id=plan.institution_id,
                filed_with=CITY_CENTRE,
                year=issue_date.year,
                filed_at=now,
            ),
        )
        ev.publish(session, ev.BADGE_FILED, f"badges/{code}", events_pb2.BadgeFiled(
            filing=f"filings/{filing.id}", badge=f"badges/{code}", code=code, institution=plan.issuer_snapshot,
            supervisor=plan.supervisor_snapshot, validity_text=badge.validity_text, filed_with=CITY_CENTRE,
        ))  # fmt: skip
    return badge


_CATEGORY_TO_PB = {
    bc.Category.EXTERNAL_CITY: registry_pb2.BADGE_CATEGORY_EXTERNAL_CITY,
    bc.Category.EXTERNAL_DISTRICT: registry_pb2.BADGE_CATEGORY_EXTERNAL_DISTRICT,
    bc.Category.INTERNAL_EMPLOYER: registry_pb2.BADGE_CATEGORY_INTERNAL_EMPLOYER,
    bc.Category.INTERNAL_SOCIAL: registry_pb2.BADGE_CATEGORY_INTERNAL_SOCIAL_ORGANIZATION,
}


def code_parts_message(parts: bc.CodeParts) -> registry_pb2.BadgeCodeParts:
    """The parsed code as the badge.issued event and the API carry it."""
    return registry_pb2.BadgeCodeParts(
        code=parts.code, category=_CATEGORY_TO_PB[parts.category], category_letter=parts.letter,
        issuer_region=parts.region, institution_digits=parts.institution_digits, district_code=parts.district_code,
        district_name=parts.district_name, year_digits=parts.year_digits, year=parts.year,
        serial_digits=parts.serial_digits, serial=parts.serial,
    )  # fmt: skip


def _publish_issued(session: Session, b: m.Badge, plan: IssuePlan, policy: RegistryPolicy) -> None:
    ev.publish(session, ev.BADGE_ISSUED, f"badges/{b.code}", events_pb2.BadgeIssued(
        badge=f"badges/{b.code}", code=b.code, parts=code_parts_message(bc.parse(b.code, policy)),
        supervisor=plan.supervisor_snapshot, appointment=f"appointments/{b.appointment_id}",
        term_number=b.term_number, issuer=plan.issuer_snapshot, validity_text=b.validity_text,
        valid_from=b.valid_from.isoformat(), valid_until=b.valid_until.isoformat(),
        issue_date=b.issue_date.isoformat(), title=rules.title(plan.supervisor_type),
        issuer_seal_sha256=plan.issuer_seal_sha256, issuer_logo_sha256=plan.issuer_logo_sha256,
        replaces_code=b.replaces_code,
        appointing_organization=session.get_one(m.Appointment, b.appointment_id).organization,
    ))  # fmt: skip


def revoke_badge_row(session: Session, b: m.Badge, *, reason: str, decided_by: str, now: dt.datetime) -> None:
    """Revoke one badge (its code stays taken, D2) and record badge.revoked."""
    repo.mark_revoked(b, reason=reason, now=now)
    sup = get_supervisor(session, supervisor_id=b.supervisor_id)
    ev.publish(session, ev.BADGE_REVOKED, f"badges/{b.code}", events_pb2.BadgeRevoked(
        badge=f"badges/{b.code}", code=b.code, supervisor=ev.supervisor_snapshot(session, sup),
        issuer=ev.organization_snapshot(session, b.issuer), reason=reason, decided_by=decided_by,
    ))  # fmt: skip


def get_badge(session: Session, *, code: str) -> m.Badge:
    return found(repo.badge(session, code=code), f"badges/{code}")


@translated
def revoke_badge(session: Session, *, code: str, reason: str, decided_by: str = "", now: dt.datetime) -> m.Badge:
    machine.require_reason(reason)
    b = get_badge(session, code=code)
    rules.check_revocable(code, b.revoked)
    revoke_badge_row(session, b, reason=reason, decided_by=decided_by, now=now)
    return b


#: D1, read from the rule set in force on the issue date (common.policy).
SERIAL_PARAMETERS = (
    "badge.city_serial_max",
    "badge.district_serial_max",
    "badge.internal_serial_max",
    "badge.internal_explicit_serial_allowed",
)


class Badges:
    def __init__(self, ctx: RegistryContext, *, parameters: PolicyParameters) -> None:
        self.ctx = ctx
        self.parameters = parameters

    async def _limits(self, issue_date: dt.date) -> bc.SerialLimits:
        return bc.SerialLimits.from_parameters(
            {name: await self.parameters.get(name, issue_date) for name in SERIAL_PARAMETERS}
        )

    async def issue(
        self, appointment_id: int, *, issue_date: dt.date | None, explicit_serial: int, replace_existing: bool
    ) -> tuple[IssuePlan, m.Badge]:
        """Reads first (checks, event snapshots) in a read transaction; the write transaction — which holds
        the allocation lock — re-checks, allocates and inserts. The caller answers from the plan and the row
        (no third transaction)."""
        now, issue_date = self.ctx.now(), issue_date or self.ctx.today()
        kw: dict[str, Any] = dict(
            appointment_id=appointment_id,
            issue_date=issue_date,
            explicit_serial=explicit_serial,
            replace_existing=replace_existing,
            policy=self.ctx.policy,
            limits=await self._limits(issue_date),
        )
        plan = await self.ctx.read(lambda s: prepare_issue(s, **kw))
        return plan, await self.ctx.write(lambda s: issue_badge(s, now=now, plan=plan, **kw))

    async def get(self, code: str, render: Callable[[Session, m.Badge], T]) -> T:
        return await self.ctx.read(lambda s: render(s, get_badge(s, code=code)))

    async def list(self, page: Page, render: Callable[[Session, m.Badge], T], **filters) -> Listing[T]:
        today = self.ctx.today()
        return await self.ctx.read(lambda s: listing(
            s, repo.list_badges(s, page=page, today=today, **filters), page, key="code", render=render
        ))  # fmt: skip

    async def revoke(self, code: str, reason: str, decided_by: str, render: Callable[[Session, m.Badge], T]) -> T:
        now = self.ctx.now()
        return await self.ctx.write(
            lambda s: render(s, revoke_badge(s, code=code, reason=reason, decided_by=decided_by, now=now))
        )

    async def filings(self, page: Page, render: Callable[[Session, m.BadgeFiling], T], **filters) -> Listing[T]:
        return await self.ctx.read(
            lambda s: listing(s, repo.list_filings(s, page=page, **filters), page, key="id", render=render)
        )

    async def check_issued(self, parts: bc.CodeParts) -> tuple[builtins.list[bc.Problem], bool]:
        """ValidateBadgeCode's database half: the institution the code names exists with the code's type
        letter (附件1), and whether the code was issued."""

        def run(s: Session) -> tuple[list[bc.Problem], bool]:
            problems = []
            if parts.category.internal:
                letter = repo.institution_type_by_digits(s, code_digits=parts.institution_digits)
                problems += bc.check_against_institution(parts, letter)
            return problems, repo.badge(s, code=parts.code) is not None

        return await self.ctx.read(run)
