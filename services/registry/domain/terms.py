"""Appointment terms (第十三条 聘期3年, 聘期届满自动解聘, 可续聘) and the badge validity text (D4)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .policy import DEFAULT_POLICY, RegistryPolicy


def add_years(d: dt.date, years: int) -> dt.date:
    """Same month/day `years` later; 29 February → 1 March in a common year (as D6 does for birthdays)."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return dt.date(d.year + years, 3, 1)


@dataclass(frozen=True)
class Term:
    number: int
    start: dt.date
    end: dt.date  # last day, inclusive

    def validity_text(self, policy: RegistryPolicy = DEFAULT_POLICY) -> str:
        return validity_text(self.start, policy)

    def covers(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


def term_from(start: dt.date, number: int = 1, policy: RegistryPolicy = DEFAULT_POLICY) -> Term:
    """A term starting on `start`: it lasts `term_years` years; the last day is start + 3 years − 1 day."""
    return Term(number, start, add_years(start, policy.term_years) - dt.timedelta(days=1))


def validity_text(start: dt.date, policy: RegistryPolicy = DEFAULT_POLICY) -> str:
    """D4: 有效期限 'YYYY.MM-YYYY.MM' — start month of the term, end = start + 3 years (附件2: 2022.06-2025.06)."""
    end = add_years(start, policy.term_years)
    return f"{start.year:04d}.{start.month:02d}-{end.year:04d}.{end.month:02d}"


def is_expired(term_end: dt.date, as_of: dt.date) -> bool:
    """聘期届满自动解聘: expired from the day after the last day of the term."""
    return as_of > term_end
