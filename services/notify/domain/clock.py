"""The notify service clock: real Asia/Shanghai time, fixed at an instant, or offset from real time.

Deadline tests and the operator dry-run move this clock instead of sleeping. Replicas share the
setting through the database (the scheduler refreshes it every tick); env BJSV_NOTIFY_CLOCK sets the
initial mode: "real", "fixed:2026-10-01T09:00:00+08:00" or "offset:86400" (seconds).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from common.clock import SHANGHAI, Clock


@dataclass(frozen=True)
class ClockMode:
    mode: str = "real"  # real | fixed | offset
    fixed_ts: float | None = None
    offset_seconds: float = 0.0

    @classmethod
    def parse(cls, text: str | None) -> ClockMode:
        text = (text or "").strip()
        if not text or text == "real":
            return cls()
        kind, _, value = text.partition(":")
        if kind == "fixed":
            at = dt.datetime.fromisoformat(value)
            if at.tzinfo is None:
                at = at.replace(tzinfo=SHANGHAI)
            return cls("fixed", at.timestamp(), 0.0)
        if kind == "offset":
            return cls("offset", None, float(value))
        raise ValueError(f"clock setting {text!r}: expected real, fixed:<ISO instant> or offset:<seconds>")


class SettableClock(Clock):
    """A Clock whose mode can change at run time (admin RPC, env, shared DB row)."""

    def __init__(self, mode: ClockMode | None = None, wall: Callable[[], float] = time.time) -> None:
        self._mode = mode or ClockMode()
        self._wall = wall

    @property
    def mode(self) -> ClockMode:
        return self._mode

    def set_mode(self, mode: ClockMode) -> None:
        self._mode = mode

    def timestamp(self) -> float:
        m = self._mode
        if m.mode == "fixed" and m.fixed_ts is not None:
            return m.fixed_ts
        return self._wall() + (m.offset_seconds if m.mode == "offset" else 0.0)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.timestamp(), SHANGHAI)
