"""Composition root of the rules service: `python -m services.rules`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from common.bus import Bus
from common.clock import Clock
from common.db import Database
from common.server import Service, Servicer, run
from common.workdays import CalendarFile
from services.rules.api import RulesServicer, add_to_server, on_loaded_hook
from services.rules.config import RulesSettings
from services.rules.runtime import RulesRuntime
from services.rules.storage import models

SERVICE = "rules"


def build(settings: RulesSettings | None = None) -> Service:
    settings = settings or RulesSettings()
    clock = Clock()
    db = Database(
        settings,
        service=SERVICE,
        metadata=models.Base.metadata,
        migrations=Path(__file__).parent / "storage" / "migrations",
    )
    bus = Bus(settings, service=SERVICE)
    runtime = RulesRuntime(
        settings.rules_dir,
        settings.rules_policy_file,
        workers=settings.rules_workers,
        clock=clock,
        on_loaded=on_loaded_hook(db),
    )
    servicer = RulesServicer(
        runtime=runtime,
        db=db,
        clock=clock,
        calendar=CalendarFile(settings.calendar_file),
        batch_max=settings.rules_batch_max,
    )
    tasks: list[Callable[[], Awaitable[None]]] = [runtime.watch_workers, servicer.log.run]
    if settings.rules_reload_interval > 0:

        async def watch_rulesets() -> None:
            await runtime.watch(settings.rules_reload_interval)

        tasks.append(watch_rulesets)
    return Service(
        name=SERVICE,
        settings=settings,
        database=db,
        bus=bus,
        servicers=[Servicer(add_to_server, servicer, "bjsv.rules.v1.RulesService")],
        on_start=[runtime.start],
        on_stop=[runtime.close],
        tasks=tasks,
    )


if __name__ == "__main__":
    run(build)
