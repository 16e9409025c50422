"""Time as an injected dependency: domain code never calls datetime.now() (deadline tests fast-forward)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    """The real clock, in Asia/Shanghai (the regulation's working days and deadlines are Beijing dates)."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(SHANGHAI)

    def today(self) -> dt.date:
        return self.now().date()


class FixedClock(Clock):
    """A clock that stands still until moved — for tests and operator dry-runs."""

    def __init__(self, at: dt.datetime) -> None:
        self._at = at if at.tzinfo else at.replace(tzinfo=SHANGHAI)

    def now(self) -> dt.datetime:
        return self._at

    def set(self, at: dt.datetime) -> None:
        self._at = at if at.tzinfo else at.replace(tzinfo=SHANGHAI)

    def advance(self, delta: dt.timedelta) -> None:
        self._at += delta
