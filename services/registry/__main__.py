"""Composition root of the registry process: `python -m services.registry`.

The process serves RegistryService and (issue #7) the workflow's SupervisionService on one port and one
database. To add a servicer, append one factory to `SERVICERS` — it gets the shared `Wiring`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bjsv.registry.v1 import registry_pb2_grpc
from common.bus import Bus
from common.clock import Clock
from common.db import Database
from common.policy import PolicyParameters
from common.server import Service, Servicer, run
from services.registry import supervision_api
from services.registry.api import RegistryServicer
from services.registry.config import RegistrySettings
from services.registry.domain.policy import RegistryPolicy
from services.registry.eligibility import RulesEligibility
from services.registry.storage import models

SERVICE = "registry"
log = logging.getLogger(__name__)


@dataclass
class Wiring:
    """Adapters shared by every servicer of the registry process."""

    settings: RegistrySettings
    db: Database
    bus: Bus
    clock: Clock
    policy: RegistryPolicy
    rules: RulesEligibility
    parameters: PolicyParameters  # rule-set parameters in force (第十三条 term, D5 deadline), from the rules service
    registry: RegistryServicer | None = None


def registry_servicer(w: Wiring) -> Servicer:
    w.registry = RegistryServicer(w.db, clock=w.clock, rules=w.rules, parameters=w.parameters, policy=w.policy)
    return Servicer(registry_pb2_grpc.add_RegistryServiceServicer_to_server, w.registry,
                    "bjsv.registry.v1.RegistryService")  # fmt: skip


#: One line per gRPC service of this process (the workflow adds its SupervisionService here).
SERVICERS: list[Callable[[Wiring], Servicer]] = [
    registry_servicer,
    supervision_api.supervision_servicer,
]


def load_models() -> None:
    """Import every model module so the one metadata has all tables (the workflow's too)."""
    import services.registry.storage.workflow_models  # noqa: F401 - registers tables on models.Base


def build(settings: RegistrySettings | None = None) -> Service:
    settings = settings or RegistrySettings()
    load_models()
    db = Database(settings, service=SERVICE, metadata=models.Base.metadata,
                  migrations=Path(__file__).parent / "storage" / "migrations")  # fmt: skip
    rules = RulesEligibility(settings.target("rules"), timeout=settings.registry_rules_timeout)
    parameters = PolicyParameters(settings.target("rules"), timeout=settings.registry_rules_timeout)
    wiring = Wiring(settings=settings, db=db, bus=Bus(settings, service=SERVICE), clock=Clock(),
                    policy=settings.policy(), rules=rules, parameters=parameters)  # fmt: skip

    async def stop() -> None:
        await wiring.rules.close()
        await wiring.parameters.close()
        if wiring.registry is not None:
            await wiring.registry.verifier.close()

    async def expiry_sweep() -> None:
        """聘期届满自动解聘 (第十三条): a periodic sweep publishes appointment.expired."""
        interval = settings.registry_expiry_sweep_interval
        if interval <= 0:
            return
        while True:
            try:
                expired = await wiring.registry.sweep(wiring.clock.today())
                if expired:
                    log.info("expiry sweep: %d appointment(s) expired", len(expired))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("expiry sweep failed; retrying at the next interval")
            await asyncio.sleep(interval)

    servicers = [factory(wiring) for factory in SERVICERS]
    return Service(name=SERVICE, settings=settings, servicers=servicers, database=db, bus=wiring.bus,
                   tasks=[expiry_sweep, *supervision_api.sweep_tasks(servicers)], on_stop=[stop])  # fmt: skip


if __name__ == "__main__":
    run(build)
