"""The workflow's clock: real Asia/Shanghai time, or an instant fixed by an operator (SetSupervisionClock)
when the test clock is enabled (BJSV_SUPERVISION_TEST_CLOCK; tests and dry runs only).

One clock for the workflow and notify, stored so replicas agree:
* the fixed instant is a row (table `workflow_clock`) of the registry database, and every request re-reads
  it (`refresh()`), so all replicas of the registry process answer with the same "now";
* setting it writes, in the same transaction, a `clock.set` event (outbox); notify consumes it and stores
  the same setting as its own clock row (shared by notify's replicas). Deadline tests set one clock.
With the test clock disabled the row is never read, nothing is published and the clock is the real one.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from bjsv.registry.v1 import supervision_pb2 as pb
from common.clock import SHANGHAI, Clock
from common.db import Database
from common.events import record_event
from services.registry.storage import workflow_repository as repo
from services.registry.workflow import events
from services.registry.workflow.convert import timestamp


def _store(session: Session, fixed: dt.datetime | None, now: dt.datetime) -> None:
    repo.set_clock(session, fixed_at=fixed, now=now)
    setting = pb.GetSupervisionClockResponse(now=timestamp(fixed or now), mode="fixed" if fixed else "real")
    record_event(session, type=events.CLOCK_SET, subject="clock", payload=setting)


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
        """Fix the clock at `at` (None: back to real time) for every replica, and for notify."""
        fixed = at.astimezone(SHANGHAI) if at is not None else None
        await self._db.write(_store, fixed, self._base.now())
        self._fixed = fixed
