"""Date handling for the rules: strict ISO parsing and numeric date facts (周岁 ages, D6: common.ages).

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
