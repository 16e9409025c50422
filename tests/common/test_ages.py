"""D6 (第九条（五）): 周岁 ages and anniversaries, 29 February → 1 March in a common year."""

from __future__ import annotations

import datetime as dt

from common.ages import age_on, anniversary

D = dt.date


def test_age_increases_on_the_birthday_itself_d6_art9():
    assert age_on(D(1958, 6, 3), D(2024, 6, 2)) == 65
    assert age_on(D(1958, 6, 3), D(2024, 6, 3)) == 66


def test_leap_day_birthday_is_1_march_in_a_common_year_d6():
    born = D(1960, 2, 29)
    assert anniversary(born, 66) == D(2026, 3, 1)
    assert anniversary(born, 64) == D(2024, 2, 29)
    assert age_on(born, D(2026, 2, 28)) == 65
    assert age_on(born, D(2026, 3, 1)) == 66
    assert age_on(born, D(2024, 2, 28)) == 63 and age_on(born, D(2024, 2, 29)) == 64


def test_a_term_from_29_february_ends_with_the_anniversary_rule_art13():
    assert anniversary(D(2024, 2, 29), 3) == D(2027, 3, 1)
    assert anniversary(D(2023, 3, 1), 1) == D(2024, 3, 1)
