"""The workflow's clock: real Asia/Shanghai time, or an instant fixed by an operator (SetSupervisionClock)
when the test clock is enabled (BJSV_SUPERVISION_TEST_CLOCK; tests and dry runs only).

The fixed instant is stored (table `workflow_clock` of the registry database) and every request re-reads it
(`refresh()`), so all replicas of the registry process answer with the same "now"; a setting kept in one
process's memory would let two replicas disagree on a deadline. With the test clock disabled the row is
never read and the clock is the real one.
"""

from __future__ import annotations

import datetime as dt

from common.clock import SHANGHAI, Clock
from common.db import Database
from services.registry.storage import workflow_repository as repo


class WorkflowClock(Clock):
    def __init__(self, database: Database, *, base: Clock, settable: bool) -> None:
        self._db = database
        self._base = base
        self.settable = settable
        self._fixed: dt.datetime | None = None

    def now(self) -> dt.datetime:
        return self._fixed if self._fixed is not None else self._base.now()

    @property
    def mode(self) -> str:
        return "fixed" if self._fixed is not None else "real"

    async def refresh(self) -> None:
        """Adopt the stored setting (another replica may have changed it)."""
        if self.settable:
            fixed = await self._db.read(repo.clock_fixed_at)
            self._fixed = fixed.astimezone(SHANGHAI) if fixed is not None else None

    async def fix(self, at: dt.datetime | None) -> None:
        """Fix the clock at `at` (None: back to real time) for every replica."""
        fixed = at.astimezone(SHANGHAI) if at is not None else None
        await self._db.write(repo.set_clock, fixed_at=fixed, now=self._base.now())
        self._fixed = fixed
