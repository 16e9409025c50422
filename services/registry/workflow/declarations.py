"""第十六条 conflict declarations (DeclareConflicts) and the gate records and feedback pass through: a supervisor
acts on a dispatch only after declaring any relative or interest, and only when the rules service's recusal
check (D9) on every covered session finds none that applies."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bjsv.rules.v1 import rules_pb2
from common import api
from common.errors import FailedPrecondition, PreconditionViolation
from services.registry.domain.problems import ProblemsError
from services.registry.domain.workflow.declarations import validate_conflicts
from services.registry.storage import workflow_models as wm
from services.registry.storage import workflow_repository as repo
from services.registry.usecases.errors import as_error
from services.registry.workflow import dispatches, owners
from services.registry.workflow.context import Workflow

RULES_KIND = {
    "relative_candidate": rules_pb2.CONFLICT_KIND_RELATIVE_CANDIDATE,
    "relative_examiner": rules_pb2.CONFLICT_KIND_RELATIVE_EXAMINER,
    "other_interest": rules_pb2.CONFLICT_KIND_OTHER_INTEREST,
}


@dataclass(frozen=True)
class Declaration:
    dispatch: str
    supervisor: str
    conflicts: list[tuple[str, str, str]]  # (kind, counterpart, description)


def _of_member(session: Session, dispatch_id: int, d: Declaration, supervisor_id: int, *, lock: bool = False):
    row = repo.dispatch(session, dispatch_id, for_update=lock)
    if row is not None:
        owners.record(session, row, d.dispatch)
    row = dispatches.require_active(row, d.dispatch)
    members = repo.members(session, [dispatch_id])[dispatch_id]
    if not any(m.supervisor_id == supervisor_id and m.state == dispatches.ACTIVE for m in members):
        why = "回避申报应由本次委派督导组的督导员本人作出（第十六条）"
        raise FailedPrecondition(
            "NOT_A_DISPATCHED_SUPERVISOR", [PreconditionViolation("bjsv.declaration.member", d.supervisor, why)]
        )
    return row


async def declare(wf: Workflow, d: Declaration) -> wm.ConflictDeclaration:
    dispatch_id = api.parse_id(d.dispatch, "dispatches", field="declaration.dispatch")
    supervisor_id = api.parse_id(d.supervisor, "supervisors", field="declaration.supervisor")
    owners.acting_supervisor(d.supervisor, "declaration.supervisor")
    try:
        conflicts = validate_conflicts(d.conflicts, policy=wf.policy)
    except ProblemsError as e:
        raise as_error(e) from None
    row = await wf.db.read(_of_member, dispatch_id, d, supervisor_id)
    planned = await dispatches.planned_of(wf, row)
    declared = [
        rules_pb2.DeclaredConflict(kind=RULES_KIND[c.kind], counterpart=c.counterpart, description=c.description)
        for c in conflicts
    ]
    try:
        decisions = await wf.rules.check_recusal(planned.team, supervisor_id, declared, d.supervisor)
    except FailedPrecondition:
        # A conflict now declared that requires recusal voids an earlier clean declaration: the supervisor
        # may not act on this dispatch any more and has to be replaced.
        await wf.db.write(repo.delete_declaration, dispatch_id, supervisor_id)
        raise
    now = wf.clock.now()

    def tx(session: Session) -> wm.ConflictDeclaration:
        _of_member(session, dispatch_id, d, supervisor_id, lock=True)
        stored = [dataclasses.asdict(c) for c in conflicts]
        return repo.save_declaration(session, dispatch_id, supervisor_id, stored, decisions, now)

    return await wf.db.write(tx)


def require_declared(session: Session, dispatch_id: int, supervisor_id: int, subject: str, what: str) -> None:
    """第十六条: no record from, and no feedback on, a supervisor who has not declared on this dispatch."""
    if repo.declaration(session, dispatch_id, supervisor_id) is None:
        why = f"督导员应先就本次委派申报回避事项（第十六条），方可{what}"
        raise FailedPrecondition(
            "CONFLICTS_NOT_DECLARED", [PreconditionViolation("bjsv.declaration.before-acting", subject, why)]
        )
