"""Date handling for the rules: strict ISO parsing, 周岁 ages (D6) and numeric date facts.

The engine only ever sees numbers (library-notes §1.11: string dates compare lexicographically and mixed
types match wrongly), so dates become YYYYMMDD integers and day differences become plain ints.
"""

from __future__ import annotations

import datetime as dt
import re

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class BadDate(ValueError):
    """A date string that is not a real calendar date in the form YYYY-MM-DD."""


def parse_date(text: str) -> dt.date:
    if not isinstance(text, str) or not _ISO.match(text):
        raise BadDate(text)
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise BadDate(text) from exc


def parse_optional(text: str) -> dt.date | None:
    return parse_date(text) if text else None


def to_num(day: dt.date) -> int:
    """YYYYMMDD as an int, e.g. 2022-07-28 -> 20220728 (orderable like the date)."""
    return day.year * 10000 + day.month * 100 + day.day


def birthday_in(birth: dt.date, year: int) -> dt.date:
    """The birthday in `year`; a 29 February birthday falls on 1 March in a common year (D6)."""
    if birth.month == 2 and birth.day == 29:
        try:
            return dt.date(year, 2, 29)
        except ValueError:
            return dt.date(year, 3, 1)
    return dt.date(year, birth.month, birth.day)


def age_on(birth: dt.date, on: dt.date) -> int:
    """Age in completed years (周岁) on `on` (D6): the count increases on the birthday itself."""
    years = on.year - birth.year
    if on < birthday_in(birth, on.year):
        years -= 1
    return years


def add_years(day: dt.date, years: int) -> dt.date:
    """Same calendar day `years` later; 29 February maps to 1 March in a common year (as D6)."""
    return birthday_in(day, day.year + years)
