"""PRC statutory working-day calendar for deadlines (D5: 第二十三条 five working days; reminders).

Why this module exists: deadlines count *working days* on the State Council calendar including the
make-up working days (调休) on weekends, and the `chinese-calendar` package only knows the years it was
released with (1.11.0: 2004–2026). So:

* ``WorkdayCalendar.add_workdays(d, n)`` steps one calendar day at a time and counts days where ``is_workday`` holds,
  **strictly after** ``d`` (negative ``n``: strictly before). ``chinese_calendar.find_workday`` is not
  used: it counts a non-working start day as day 0 and answers one working day late (library notes §5).
* An operator calendar file (YAML or JSON; setting ``calendar_file``, env ``BJSV_CALENDAR_FILE``, read by a
  :class:`CalendarFile` built from the path a service passes in) adds newly announced years or replaces a
  year of the library. A year listed in the file is defined *completely* by it:
  Monday–Friday are working days except ``holidays``; Saturday/Sunday are rest days except ``workdays``
  (make-up days)::

      2027:
        holidays: [2027-01-01, "2027-02-06..2027-02-13"]
        workdays: [2027-02-14]

  (a top-level ``years:`` mapping around the same content is accepted too).
* A date in a year neither source covers raises :class:`CalendarNotCovered` — never a silent
  Monday–Friday guess (D5). Callers turn it into an explicit error or an operator alert.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chinese_calendar

ENV_CALENDAR_FILE = "BJSV_CALENDAR_FILE"

__all__ = [
    "ENV_CALENDAR_FILE",
    "CalendarFile",
    "CalendarFileError",
    "CalendarNotCovered",
    "WorkdayCalendar",
    "YearCalendar",
]


class CalendarNotCovered(LookupError):
    """No working-day data for ``year``: configure it in the operator calendar file (BJSV_CALENDAR_FILE)."""

    reason = "CALENDAR_NOT_COVERED"

    def __init__(self, year: int) -> None:
        self.year = year
        super().__init__(
            f"no statutory working-day calendar for year {year}; add it to the operator calendar file "
            f"(env {ENV_CALENDAR_FILE}) or upgrade chinese-calendar"
        )

    @property
    def message_zh(self) -> str:
        y = self.year
        return f"{y}年法定工作日历尚未配置，无法按工作日计算期限（请运维人员配置{y}年日历文件）"


class CalendarFileError(ValueError):
    """The operator calendar file is unreadable or inconsistent."""


@dataclass(frozen=True)
class YearCalendar:
    """One year defined by the operator: holidays on weekdays, make-up working days on weekends."""

    year: int
    holidays: frozenset[dt.date] = field(default_factory=frozenset)
    workdays: frozenset[dt.date] = field(default_factory=frozenset)

    def is_workday(self, d: dt.date) -> bool:
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        return d.weekday() < 5


def _parse_days(year: int, values: Iterable[Any], what: str) -> frozenset[dt.date]:
    days: set[dt.date] = set()
    for value in values or ():
        if isinstance(value, dt.datetime):
            value = value.date()
        if isinstance(value, dt.date):
            first = last = value
        elif isinstance(value, str):
            text = value.strip()
            try:
                if ".." in text:
                    a, b = text.split("..", 1)
                    first, last = dt.date.fromisoformat(a.strip()), dt.date.fromisoformat(b.strip())
                else:
                    first = last = dt.date.fromisoformat(text)
            except ValueError as exc:
                raise CalendarFileError(f"year {year}: bad {what} entry {value!r}: {exc}") from None
        else:
            raise CalendarFileError(f"year {year}: bad {what} entry {value!r}")
        if last < first:
            raise CalendarFileError(f"year {year}: {what} range {value!r} ends before it starts")
        day = first
        while day <= last:
            if day.year != year:
                raise CalendarFileError(f"year {year}: {what} date {day} belongs to another year")
            days.add(day)
            day += dt.timedelta(days=1)
    return frozenset(days)


def parse_calendar_data(data: Mapping[Any, Any]) -> dict[int, YearCalendar]:
    """Parse the operator file's content (already loaded from YAML/JSON) into year calendars."""
    if not isinstance(data, Mapping):
        raise CalendarFileError("calendar file must be a mapping year -> {holidays, workdays}")
    if "years" in data and isinstance(data["years"], Mapping):
        data = data["years"]
    years: dict[int, YearCalendar] = {}
    for key, spec in data.items():
        try:
            year = int(key)
        except (TypeError, ValueError):
            raise CalendarFileError(f"calendar file key {key!r} is not a year") from None
        spec = spec or {}
        if not isinstance(spec, Mapping):
            raise CalendarFileError(f"year {year}: expected a mapping with holidays/workdays")
        unknown = set(spec) - {"holidays", "workdays", "note", "source"}
        if unknown:
            raise CalendarFileError(f"year {year}: unknown keys {sorted(unknown)}")
        holidays = _parse_days(year, spec.get("holidays", ()), "holidays")
        workdays = _parse_days(year, spec.get("workdays", ()), "workdays")
        both = holidays & workdays
        if both:
            raise CalendarFileError(f"year {year}: {sorted(both)[0]} is both a holiday and a working day")
        years[year] = YearCalendar(year, holidays, workdays)
    return years


def load_calendar_file(path: str | os.PathLike[str]) -> dict[int, YearCalendar]:
    """Read an operator calendar file (``.json``, otherwise YAML)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise CalendarFileError(f"cannot read calendar file {p}: {exc}") from None
    import yaml  # only needed for operator files

    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise CalendarFileError(f"cannot parse calendar file {p}: {exc}") from None
    return parse_calendar_data(data or {})


def _library_covers(year: int) -> bool:
    try:
        chinese_calendar.is_workday(dt.date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


@functools.lru_cache(maxsize=4096)
def _library_is_workday(d: dt.date) -> bool:
    """chinese-calendar's answer, remembered: its data is fixed for the process, and a listing of overdue items
    counts the working days of each one day by day (the library's own check took ~45 µs a day here)."""
    return bool(chinese_calendar.is_workday(d))


class WorkdayCalendar:
    """Statutory working days: the operator's years first, then chinese-calendar, else an error."""

    def __init__(self, overrides: Mapping[int, YearCalendar] | None = None, *, use_library: bool = True):
        self._overrides = dict(overrides or {})
        self._use_library = use_library

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] | None) -> WorkdayCalendar:
        return cls(load_calendar_file(path) if path else None)

    def covers(self, year: int) -> bool:
        return year in self._overrides or (self._use_library and _library_covers(year))

    def covered_years(self) -> list[int]:
        years = set(self._overrides)
        if self._use_library:
            years.update(y for y in range(1990, 2101) if _library_covers(y))
        return sorted(years)

    def is_workday(self, d: dt.date) -> bool:
        """Whether ``d`` is a statutory working day; raises CalendarNotCovered for unknown years."""
        if isinstance(d, dt.datetime):
            d = d.date()
        year_cal = self._overrides.get(d.year)
        if year_cal is not None:
            return year_cal.is_workday(d)
        if self._use_library:
            try:
                return _library_is_workday(d)
            except NotImplementedError:
                pass
        raise CalendarNotCovered(d.year)

    def add_workdays(self, d: dt.date, n: int) -> dt.date:
        """The n-th working day strictly after ``d`` (n > 0), strictly before it (n < 0), ``d`` for 0.

        D5: 2025-09-30 + 5 → 2025-10-14 (National Day); 2026-02-13 + 5 → 2026-02-27 (Spring Festival,
        with the make-up Saturday 2026-02-14 counted).
        """
        if isinstance(d, dt.datetime):
            d = d.date()
        step = dt.timedelta(days=1 if n >= 0 else -1)
        remaining = abs(n)
        day = d
        while remaining:
            day += step
            if self.is_workday(day):
                remaining -= 1
        return day

    def workdays_between(self, start: dt.date, end: dt.date) -> int:
        """Number of working days in (start, end]; negative when end < start."""
        if end < start:
            return -self.workdays_between(end, start)
        count, day = 0, start
        while day < end:
            day += dt.timedelta(days=1)
            if self.is_workday(day):
                count += 1
        return count


class CalendarFile:
    """The calendar of an operator file given by path (settings), re-read when the file changes, so a newly
    announced year takes effect without a restart. ``None``: the library's years only.

    Each service builds one from its settings and passes it in; nothing here reads the environment."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        # An empty setting (BJSV_CALENDAR_FILE="") arrives from pydantic as Path("."): no file, like None.
        self.path = Path(path) if path and str(path) != "." else None
        self._lock = threading.Lock()
        self._loaded: tuple[float | None, WorkdayCalendar] | None = None

    def __call__(self) -> WorkdayCalendar:
        """The current calendar; raises CalendarFileError when the file is unreadable or inconsistent."""
        stamp: float | None = None
        if self.path is not None:
            try:
                stamp = self.path.stat().st_mtime
            except OSError as exc:
                raise CalendarFileError(f"cannot read calendar file {self.path}: {exc}") from None
        with self._lock:
            if self._loaded is None or self._loaded[0] != stamp:
                self._loaded = (stamp, WorkdayCalendar.from_file(self.path))
            return self._loaded[1]
