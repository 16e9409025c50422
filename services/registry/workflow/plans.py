"""Use cases of certification plans (评价计划, 第十九条): create, update (etag), read, list.

Each write is one transaction holding the plan row and its outbox event (plan.created / plan.updated)."""

from __future__ import annotations

from bjsv.registry.v1 import supervision_events_pb2 as ev
from common.auth import scope
from common.auth.scope import Owner
from common.errors import FailedPrecondition, NotFound, PreconditionViolation
from common.events import record_event
from services.registry import access
from services.registry.domain import id_number
from services.registry.domain.problems import ProblemsError
from services.registry.domain.workflow import plans as plan_rules
from services.registry.domain.workflow.model import PlanIn
from services.registry.storage import workflow_models as wm
from services.registry.storage import workflow_repository as repo
from services.registry.usecases.errors import as_error
from services.registry.workflow import events, owners
from services.registry.workflow.context import Workflow, caller_org
from services.registry.workflow.convert import to_proto_plan


def unmask_people(data: PlanIn, stored: wm.CertPlan) -> None:
    """A read-modify-write client sends back the masked ID numbers it was shown: keep the stored number for
    the same person (session, list, name, masked form); anything else masked is left to fail validation."""
    known: dict[tuple[str, str, str, str], str] = {}
    for s in stored.sessions:
        for kind in ("examiners", "staff"):
            for x in s[kind]:
                if x["id_number"]:
                    known[(s["session_id"], kind, x["display_name"], id_number.mask(x["id_number"]))] = x["id_number"]
    for session_in in data.sessions:
        for kind, people in (("examiners", session_in.examiners), ("staff", session_in.staff)):
            for x in people:
                if "*" in x.id_number:
                    x.id_number = known.get((session_in.session_id, kind, x.display_name, x.id_number), x.id_number)


def _validate(wf: Workflow, data: PlanIn) -> None:
    try:
        plan_rules.validate_plan(data, policy=wf.policy)
    except ProblemsError as e:
        raise as_error(e) from None


def _require_writable(data: PlanIn, name: str) -> None:
    """A plan is written for a district the caller manages, or by its own institution (第十八条)."""
    scope.require(Owner(district=f"agencies/{data.district}", institution=data.institution), name)


async def create(wf: Workflow, data: PlanIn, crid: str | None) -> wm.CertPlan:
    if crid and (existing := await wf.db.read(repo.plan_by_request, crid)) is not None:
        scope.require(owners.of_plan(existing), f"plans/{existing.id}")
        return existing
    _validate(wf, data)
    inst = await wf.db.read(repo.institution, data.institution)
    if inst is None:
        raise NotFound(data.institution)
    _require_writable(data, data.institution)
    now, actor = wf.clock.now(), caller_org()

    def tx(session) -> wm.CertPlan:
        if crid and (again := repo.plan_by_request(session, crid)) is not None:
            return again
        row = repo.insert_plan(session, data, institution=inst, client_request_id=crid, actor=actor, now=now)
        record_event(
            session,
            type=events.PLAN_CREATED,
            subject=f"plans/{row.id}",
            payload=ev.PlanCreated(plan=to_proto_plan(row)),
        )
        return row

    return await wf.db.write(tx)


async def update(wf: Workflow, plan_id: int, name: str, data: PlanIn, etag: str) -> wm.CertPlan:
    current = await wf.db.read(repo.plan, plan_id)
    if current is None:
        raise NotFound(name)
    scope.require(owners.of_plan(current), name)
    data.institution = current.institution  # the institution of a plan never changes
    _require_writable(data, name)
    unmask_people(data, current)
    _validate(wf, data)
    now = wf.clock.now()

    def tx(session) -> wm.CertPlan:
        row = repo.plan(session, plan_id, for_update=True)
        if row is None:
            raise NotFound(name)
        scope.require(owners.of_plan(row), name)
        if etag and etag != str(row.version):
            raise FailedPrecondition(
                "ETAG_MISMATCH",
                [PreconditionViolation("bjsv.plan.etag", name, "评价计划已被他人修改，请重新读取后再提交")],
            )
        repo.update_plan(session, row, data, now=now)
        record_event(
            session,
            type=events.PLAN_UPDATED,
            subject=f"plans/{row.id}",
            payload=ev.PlanUpdated(plan=to_proto_plan(row)),
        )
        return row

    return await wf.db.write(tx)


def _scoped(session, plan_id: int, name: str) -> wm.CertPlan:
    row = repo.plan(session, plan_id)
    if row is None:
        raise NotFound(name)
    owners.plan(session, row, name)
    return row


async def get(wf: Workflow, plan_id: int, name: str) -> wm.CertPlan:
    return await wf.db.read(_scoped, plan_id, name)


async def list_plans(
    wf: Workflow, *, institution: str, district: str, offset: int, limit: int
) -> tuple[list[wm.CertPlan], int]:
    """Narrowed to the caller's scope: a district agency its district, an institution its own plans, a
    supervisor the plans they are dispatched to; asking for another district or institution is refused."""
    district, number = access.narrow(district, institution.removeprefix("institutions/"))
    institution = f"institutions/{number}" if number else ""
    supervisor = scope.list_scope().supervisor
    return await wf.db.read(
        repo.list_plans,
        institution=institution,
        district=district,
        supervisor_id=int(supervisor.removeprefix("supervisors/")) if supervisor else None,
        offset=offset,
        limit=limit,
    )
