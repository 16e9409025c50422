"""Half-month reporting periods (第二十四条 每半个月报送, D10): the 1st to the rule set's
`period.first_half_last_day` (15 in bj-2022) and the day after to the month's last day. The use cases read
that day from the rule set in force (common.policy) and pass it in as `split`."""

from __future__ import annotations

import calendar
import datetime as dt
import re

from services.registry.domain.workflow.model import Period

_KEY = re.compile(r"^(\d{4})-(\d{2})-([12])$")


def period_of(day: dt.date, split: int) -> Period:
    if day.day <= split:
        return Period(day.replace(day=1), day.replace(day=split))
    last = calendar.monthrange(day.year, day.month)[1]
    return Period(day.replace(day=split + 1), day.replace(day=last))


def next_period(period: Period, split: int) -> Period:
    return period_of(period.end + dt.timedelta(days=1), split)


def has_ended(period: Period, today: dt.date) -> bool:
    """A period can be closed from the day after its last day."""
    return today > period.end


def parse_key(key: str, split: int) -> Period:
    """ "2026-03-1" → 2026-03-01..2026-03-15 (split 15); raises ValueError on a malformed key."""
    m = _KEY.match(key or "")
    if not m:
        raise ValueError(f"bad period key {key!r}")
    year, month, half = int(m[1]), int(m[2]), int(m[3])
    return period_of(dt.date(year, month, 1 if half == 1 else split + 1), split)


def ended_periods(after: Period | None, today: dt.date, *, first: Period, split: int) -> list[Period]:
    """Periods that have ended by `today`, starting after `after` (or at `first` when nothing was closed)."""
    p = next_period(after, split) if after else first
    out = []
    while has_ended(p, today):
        out.append(p)
        p = next_period(p, split)
    return out
