"""Appointment terms (第十三条 聘期3年, 聘期届满自动解聘, 可续聘) and the badge validity text (D4)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from common.ages import anniversary


@dataclass(frozen=True)
class Term:
    number: int
    start: dt.date
    end: dt.date  # last day, inclusive

    def validity_text(self) -> str:
        return validity_text(self.start, self.end)

    def covers(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


def term_from(start: dt.date, term_years: int, number: int = 1) -> Term:
    """A term starting on `start` lasts `term_years` (the rule set's `appointment.term_years`, 第十三条: 3)
    years; its last day is the day before the anniversary."""
    return Term(number, start, anniversary(start, term_years) - dt.timedelta(days=1))


def validity_text(start: dt.date, end: dt.date) -> str:
    """D4: 有效期限 'YYYY.MM-YYYY.MM' — the term's start month and the month after its last day
    (附件2: 2022.06-2025.06 for the term 2022-06-xx … 2025-06-(xx-1))."""
    after = end + dt.timedelta(days=1)
    return f"{start.year:04d}.{start.month:02d}-{after.year:04d}.{after.month:02d}"


def is_expired(term_end: dt.date, as_of: dt.date) -> bool:
    """聘期届满自动解聘: expired from the day after the last day of the term."""
    return as_of > term_end
