"""Who a workflow resource belongs to, for the one scope helper (common.auth.scope, policy.yaml, issue #12).

A plan belongs to the agency of its district and to its institution (第十八条), and is seen by the supervisors
dispatched to it; a dispatch to its dispatching agency, the plan's institution and its team (第十四条、第二十条);
its Annex 3 record to the dispatching agency and the team (第二十三条); Annex 4 feedback to the dispatching
agency and the institution (附件4); a case, complaint or district report to the agency managing its district
(第二十二条、第二十四条、第二十六条). Each check runs where the resource is loaded, before anything is written.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from common.auth import scope
from common.auth.scope import Owner
from common.context import current_caller
from services.registry.storage import workflow_models as wm
from services.registry.storage import workflow_repository as repo
from services.registry.usecases.errors import found


def _team(members: list[wm.DispatchMember]) -> tuple[str, ...]:
    return tuple(f"supervisors/{m.supervisor_id}" for m in members)


def of_plan(p: wm.CertPlan, team: tuple[str, ...] = ()) -> Owner:
    return Owner(district=f"agencies/{p.district}", institution=p.institution, supervisors=team)


def plan(session: Session, p: wm.CertPlan, name: str) -> None:
    """The stored plan, with the supervisors of its dispatches (ListPlans shows them the plans they supervise)."""
    rows = repo.list_dispatches(session, day=None, agency="", plan_id=p.id, include_cancelled=True, due_before=None)
    plan_with(p, rows, repo.members(session, [r.id for r in rows]), name)


def plan_with(
    p: wm.CertPlan, dispatches: list[wm.Dispatch], members: dict[int, list[wm.DispatchMember]], name: str
) -> None:
    """`plan` for a caller that has already read the plan's dispatches (all of them) and their members."""
    scope.require(of_plan(p, tuple(s for r in dispatches for s in _team(members[r.id]))), name)


def of_dispatch(d: wm.Dispatch, members: list[wm.DispatchMember], p: wm.CertPlan) -> Owner:
    return Owner(district=d.dispatching_agency, institution=p.institution, supervisors=_team(members))


def dispatch(session: Session, d: wm.Dispatch, name: str) -> None:
    members = repo.members(session, [d.id])[d.id]
    scope.require(of_dispatch(d, members, found(repo.plan(session, d.plan_id), f"plans/{d.plan_id}")), name)


def record(session: Session, d: wm.Dispatch, name: str) -> None:
    """Annex 3: the dispatching agency (or the institution supervising internally, 第十二条) and the team."""
    scope.require(Owner.of(d.dispatching_agency, *_team(repo.members(session, [d.id])[d.id])), name)


def feedback(session: Session, d: wm.Dispatch, name: str) -> None:
    """Annex 4: filled in by the institution supervised, for the dispatching agency."""
    scope.require(
        Owner(
            district=d.dispatching_agency,
            institution=found(repo.plan(session, d.plan_id), f"plans/{d.plan_id}").institution,
        ),
        name,
    )


def district(code: str, name: str) -> None:
    """A case, complaint or report: the agency managing the district (agencies/A for the city level)."""
    scope.require(Owner.of(f"agencies/{code}"), name)


def acting_supervisor(named: str, field: str) -> None:
    """A supervisor acts only as themself (第二十三条 record, 第十六条 declaration, 第二十二条(十) report); an
    agency acting on their behalf names them in the request."""
    if "supervisor" in current_caller().roles:
        scope.acting_org(named, field)


def visible_dispatches(
    session: Session,
    rows: list[wm.Dispatch],
    members: dict[int, list[wm.DispatchMember]] | None = None,
    plans: dict[int, wm.CertPlan] | None = None,
) -> list[wm.Dispatch]:
    """A list narrowed to the caller's scope (a supervisor: the dispatches whose team they are on); members
    and plans are read here unless the caller already has them."""
    if members is None:
        members = repo.members(session, [r.id for r in rows])
    if plans is None:
        plans = repo.plans_by_ids(session, sorted({r.plan_id for r in rows}))
    return [r for r in rows if scope.allows(of_dispatch(r, members[r.id], plans[r.plan_id]))]
