"""D6: ages in completed years (周岁) and anniversaries of a date — the one copy every service uses.

第九条（五） limits supervisors by age; D6 reads it as 周岁 (completed years), the count increasing on the
birthday itself, and a 29 February birthday falling on 1 March in a common year. The same anniversary rule
gives the end of a 3-year term (第十三条) that starts on 29 February.
"""

from __future__ import annotations

import datetime as dt


def anniversary(day: dt.date, years: int) -> dt.date:
    """The same month and day `years` later (earlier when negative); 29 February → 1 March in a common year (D6).

    With a birth date this is the day the person turns `years` (周岁)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # only 29 February has no counterpart in a common year
        return dt.date(day.year + years, 3, 1)


def age_on(birth: dt.date, on: dt.date) -> int:
    """Age in completed years (周岁) on `on` (D6): the count increases on the birthday itself."""
    years = on.year - birth.year
    return years - 1 if on < anniversary(birth, years) else years
