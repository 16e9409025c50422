"""居民身份证号 (GB 11643-1999): format, check digit, birth date and gender; masking for logs/VerifyBadge."""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass

from .problems import Problem, ProblemsError

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"  # index = weighted sum mod 11
STANDARD = "GB 11643"


@dataclass(frozen=True)
class IdNumberInfo:
    number: str
    birth_date: dt.date
    male: bool


def check_digit(first17: str) -> str:
    return CHECK_CHARS[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").strip().upper()


def parse(text: str, *, field: str = "id_number", today: dt.date | None = None) -> IdNumberInfo:
    """Validate an 18-character ID number and return its birth date and gender, or raise ProblemsError."""
    n = normalise(text)
    if not n:
        raise ProblemsError([Problem(field, "ID_NUMBER_REQUIRED", "居民身份证号不能为空")])
    if len(n) != 18:
        raise ProblemsError([Problem(field, "ID_NUMBER_LENGTH", f"居民身份证号应为18位，实为{len(n)}位（{STANDARD}）")])
    if not (n[:17].isascii() and n[:17].isdigit()) or not (n[17].isdigit() or n[17] == "X"):
        raise ProblemsError(
            [Problem(field, "ID_NUMBER_FORMAT", f"居民身份证号前17位应为数字，第18位为数字或X（{STANDARD}）")]
        )
    try:
        birth = dt.date(int(n[6:10]), int(n[10:12]), int(n[12:14]))
    except ValueError:
        raise ProblemsError(
            [
                Problem(
                    field, "ID_NUMBER_BIRTH_DATE", f"居民身份证号第7-14位出生日期“{n[6:14]}”不是有效日期（{STANDARD}）"
                )
            ]
        ) from None
    if birth.year < 1900 or (today is not None and birth > today):
        raise ProblemsError(
            [Problem(field, "ID_NUMBER_BIRTH_DATE", f"居民身份证号第7-14位出生日期“{n[6:14]}”不合理（{STANDARD}）")]
        )
    expected = check_digit(n[:17])
    if n[17] != expected:
        raise ProblemsError([Problem(field, "ID_NUMBER_CHECK_DIGIT", f"居民身份证号校验码错误（{STANDARD}）")])
    return IdNumberInfo(n, birth, int(n[16]) % 2 == 1)


def check_consistency(
    info: IdNumberInfo,
    *,
    birth_date: dt.date | None,
    male: bool | None,
    birth_field: str = "birth_date",
    gender_field: str = "gender",
) -> list[Problem]:
    """Birth date and gender as entered must agree with the ID number."""
    problems = []
    if birth_date is not None and birth_date != info.birth_date:
        problems.append(
            Problem(
                birth_field,
                "BIRTH_DATE_MISMATCH",
                f"出生日期{birth_date.isoformat()}与居民身份证号中的出生日期"
                f"{info.birth_date.isoformat()}不一致（{STANDARD}）",
            )
        )
    if male is not None and male != info.male:
        problems.append(
            Problem(
                gender_field, "GENDER_MISMATCH", f"性别与居民身份证号第17位（奇数为男，偶数为女）不一致（{STANDARD}）"
            )
        )
    return problems


def mask(number: str) -> str:
    """ "110105194912310021" → "110105********0021" (region kept, birth date hidden)."""
    n = normalise(number)
    if len(n) <= 10:
        return "*" * len(n)
    return n[:6] + "*" * (len(n) - 10) + n[-4:]


def mask_name(name: str) -> str:
    """Partly mask a holder name for the exam door: 张三 → 张*, 王小明 → 王*明, 欧阳娜娜 → 欧**娜."""
    s = (name or "").strip()
    if len(s) <= 1:
        return s
    if len(s) == 2:
        return s[0] + "*"
    return s[0] + "*" * (len(s) - 2) + s[-1]


def compose(region: str, birth: dt.date, sequence: int) -> str:
    """Build a valid number (region code, birth date, 3-digit sequence; odd sequence = male) — for demo
    data, benches and tests."""
    first17 = f"{region}{birth:%Y%m%d}{sequence % 1000:03d}"
    return first17 + check_digit(first17)
