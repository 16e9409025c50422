"""The supervision workflow (issue #7 — 第十四条, 第十九条–第二十七条) inside the registry process: it shares the
registry's database because a 第二十七条 sanction commits in the same transaction as its case decision.

Shape (the same as every service): `servicer` (thin gRPC edge) → use cases per aggregate (`plans`,
`dispatches`, `records`, `feedback`, `cases`, `periods`, read-side `status`, the `sweep`) owning their
transaction and outbox rows → the domain (`services/registry/domain/workflow/`) and storage
(`services/registry/storage/workflow_*.py`). `convert` holds the proto <-> domain converters, `rules_port`
the typed port to the rules service, `events` the published event types and their recipients.
"""

from __future__ import annotations

from dataclasses import dataclass

from bjsv.registry.v1 import supervision_pb2_grpc
from common.clock import Clock
from common.db import Database
from common.policy import PolicyParameters
from common.server import Servicer
from services.registry.config import RegistrySettings
from services.registry.workflow.clock import WorkflowClock
from services.registry.workflow.context import Workflow
from services.registry.workflow.rules_port import RulesPort
from services.registry.workflow.servicer import SERVICE_NAME, SupervisionServicer
from services.registry.workflow.sweep import Sweep


@dataclass(frozen=True)
class WorkflowService:
    """What the composition root registers: the servicer, the periodic sweep (if enabled) and the stop hook."""

    servicer: Servicer
    sweep: Sweep
    rules: RulesPort

    def tasks(self) -> list:
        return [self.sweep.loop] if self.sweep.interval > 0 else []

    async def stop(self) -> None:
        await self.rules.close()


def build_workflow(
    settings: RegistrySettings,
    database: Database,
    *,
    clock: Clock,
    parameters: PolicyParameters,
) -> WorkflowService:
    rules = RulesPort(
        settings.target("rules"),
        database,
        timeout=settings.supervision_rules_timeout,
        recent_window_days=settings.supervision_recent_window_days,
    )
    wf = Workflow(
        db=database,
        clock=WorkflowClock(database, base=clock, settable=settings.supervision_test_clock),
        rules=rules,
        parameters=parameters,
        calendars=settings.calendar(),
        policy=settings.workflow_policy(),
    )
    wf.calendars()  # a broken operator calendar file is a startup error (CalendarFileError), not a runtime surprise
    sweep = Sweep(wf, interval=settings.supervision_sweep_interval)
    api = SupervisionServicer(wf, sweep)
    servicer = Servicer(supervision_pb2_grpc.add_SupervisionServiceServicer_to_server, api, SERVICE_NAME)
    return WorkflowService(servicer, sweep, rules)
