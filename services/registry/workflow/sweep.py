"""The workflow's deadline sweep: escalate cases whose correction deadline passed (D13 拒不改正) and close
ended half-month periods (第二十四条, D10). Run periodically (BJSV_SUPERVISION_SWEEP_INTERVAL) and on demand
(RunSweep); one sweep at a time per process, and every write is safe against another replica's sweep."""

from __future__ import annotations

import asyncio
import logging

from services.registry.workflow import cases, periods
from services.registry.workflow.context import Workflow
from services.registry.workflow.results import SweepResult

log = logging.getLogger(__name__)


class Sweep:
    def __init__(self, wf: Workflow, *, interval: float) -> None:
        self._wf = wf
        self.interval = interval
        self._lock = asyncio.Lock()

    async def run(self) -> SweepResult:
        async with self._lock:
            await self._wf.clock.refresh()
            escalated = await cases.escalate_overdue_corrections(self._wf)
            closed = await periods.close_ended_periods(self._wf)
        return SweepResult(escalated, closed, self._wf.today())

    async def loop(self) -> None:
        """Background task of the registry process (cancelled on shutdown)."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                result = await self.run()
                if result.escalated_cases or result.closed_reports:
                    log.info("supervision sweep: escalated=%s closed=%s", result.escalated_cases, result.closed_reports)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("supervision sweep failed")
