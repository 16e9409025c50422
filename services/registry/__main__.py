"""Composition root of the registry process: `python -m services.registry`.

The process serves RegistryService and (issue #7) the workflow's SupervisionService on one port and one
database. Settings are read once here and passed in; every adapter that opens a channel is closed on stop.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bjsv.registry.v1 import registry_pb2_grpc
from common.bus import Bus
from common.clock import Clock
from common.db import Database, StartupError
from common.policy import PolicyParameters
from common.server import Service, Servicer, run
from common.workdays import CalendarFileError
from services.registry.api import RegistryServicer
from services.registry.config import RegistrySettings
from services.registry.eligibility import RulesEligibility
from services.registry.storage import models
from services.registry.workflow import build_workflow

SERVICE = "registry"
log = logging.getLogger(__name__)


def load_models() -> None:
    """Import every model module so the one metadata has all tables (the workflow's too)."""
    import services.registry.storage.workflow_models  # noqa: F401 - registers tables on models.Base


def expiry_sweep(registry: RegistryServicer, clock: Clock, interval: float):
    async def loop() -> None:
        """聘期届满自动解聘 (第十三条): a periodic sweep publishes appointment.expired."""
        while True:
            try:
                expired = await registry.sweep(clock.today())
                if expired:
                    log.info("expiry sweep: %d appointment(s) expired", len(expired))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("expiry sweep failed; retrying at the next interval")
            await asyncio.sleep(interval)

    return loop


def build(settings: RegistrySettings | None = None) -> Service:
    settings = settings or RegistrySettings()
    load_models()
    db = Database(
        settings,
        service=SERVICE,
        metadata=models.Base.metadata,
        migrations=Path(__file__).parent / "storage" / "migrations",
    )
    clock, policy = Clock(), settings.policy()
    rules = RulesEligibility(settings.target("rules"), timeout=settings.registry_rules_timeout)
    parameters = PolicyParameters(settings.target("rules"), timeout=settings.registry_rules_timeout)
    registry = RegistryServicer(db, clock=clock, rules=rules, parameters=parameters, policy=policy)
    try:
        workflow = build_workflow(settings, db, clock=clock, parameters=parameters)
    except CalendarFileError as e:  # a broken operator calendar file is a startup error, not a runtime surprise
        raise StartupError(f"{e}. Fix: correct the file named by BJSV_CALENDAR_FILE or unset it.") from None

    async def stop() -> None:
        await rules.close()
        await parameters.close()
        await registry.verifier.close()
        await workflow.stop()

    tasks = workflow.tasks()
    if settings.registry_expiry_sweep_interval > 0:
        tasks.append(expiry_sweep(registry, clock, settings.registry_expiry_sweep_interval))
    servicers = [
        Servicer(registry_pb2_grpc.add_RegistryServiceServicer_to_server, registry, "bjsv.registry.v1.RegistryService"),
        workflow.servicer,
    ]
    return Service(
        name=SERVICE,
        settings=settings,
        servicers=servicers,
        database=db,
        bus=Bus(settings, service=SERVICE),
        tasks=tasks,
        on_stop=[stop],
    )


if __name__ == "__main__":
    run(build)
