"""Badge codes (证卡编码规则, 附件1): layout, parsing, validation and the pure part of allocation.

External (外督员, 9 characters, issued by the city centre, 第十一条):
    R · 11 · YY · A · 001–999          city level     e.g. R1122A001
    R · 11 · YY · <district> · 01–99   district level e.g. R11220801 (海淀 08, 2022, serial 01)
Internal (内督员, 13 characters, issued by the institution, 第十二条):
    Y|S · 11 · last 4 digits of the institution number · YY · 0001–9999   e.g. Y112001220001

D1: serials are sequential per (level/district or institution, issue year) up to the rule set's
    `badge.*_serial_max`; an institution may pick an explicit free internal serial while
    `badge.internal_explicit_serial_allowed` holds. The issuing use case reads them (common.policy) into
    `SerialLimits`; this module keeps no copy of them.
D2: never reused; an exhausted range is an error. D3: YY = issue year.
The allocation *scope* is the code prefix (everything before the serial), which contains the year, so one
counter row per prefix is exactly "per (scope, year)".
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from .districts import CITY_CODE, DISTRICTS, district_name
from .policy import DEFAULT_POLICY, RegistryPolicy
from .problems import Problem, ProblemsError

DIGITS = frozenset("0123456789")
ANNEX = "附件1"


@dataclass(frozen=True)
class SerialLimits:
    """D1 as the rule set in force states it (`badge.city_serial_max`, `badge.district_serial_max`,
    `badge.internal_serial_max`, `badge.internal_explicit_serial_allowed`)."""

    city_max: int
    district_max: int
    internal_max: int
    internal_explicit_allowed: bool

    @classmethod
    def from_parameters(cls, values: dict) -> SerialLimits:
        return cls(
            int(values["badge.city_serial_max"]),
            int(values["badge.district_serial_max"]),
            int(values["badge.internal_serial_max"]),
            bool(values["badge.internal_explicit_serial_allowed"]),
        )


#: What the code layout itself can hold (附件1: 001—999, 01—99, 0001—9999), quoted when a code is parsed and
#: used by callers that bypass the rules service (bulk seeding); IssueBadge issues within the rule set's limits.
LAYOUT = SerialLimits(city_max=999, district_max=99, internal_max=9999, internal_explicit_allowed=True)


class Category(StrEnum):
    EXTERNAL_CITY = "external_city"
    EXTERNAL_DISTRICT = "external_district"
    INTERNAL_EMPLOYER = "internal_employer"  # 用人单位 Y
    INTERNAL_SOCIAL = "internal_social"  # 社会培训评价组织 S

    @property
    def letter(self) -> str:
        return {"external_city": "R", "external_district": "R", "internal_employer": "Y"}.get(self.value, "S")

    @property
    def internal(self) -> bool:
        return self in (Category.INTERNAL_EMPLOYER, Category.INTERNAL_SOCIAL)


#: Institution type letter → category (附件1 表5).
INTERNAL_LETTERS = {"Y": Category.INTERNAL_EMPLOYER, "S": Category.INTERNAL_SOCIAL}


@dataclass(frozen=True)
class CodeParts:
    code: str
    category: Category
    region: str  # "11"
    year_digits: str
    serial_digits: str
    district_code: str = ""  # externals: "A" or a Table 3 district code
    institution_digits: str = ""  # internals: last 4 digits of the institution number

    @property
    def year(self) -> int:
        return 2000 + int(self.year_digits)

    @property
    def serial(self) -> int:
        return int(self.serial_digits)

    @property
    def letter(self) -> str:
        return self.code[0]

    @property
    def district_name(self) -> str:
        return district_name(self.district_code) if self.district_code else ""

    @property
    def prefix(self) -> str:
        return self.code[: len(self.code) - len(self.serial_digits)]


@dataclass(frozen=True)
class Scope:
    """An allocation scope: one code prefix (category + issuer + year) with its serial range."""

    category: Category
    year: int
    district_code: str = ""
    institution_digits: str = ""
    region: str = DEFAULT_POLICY.region_code

    @property
    def yy(self) -> str:
        return f"{self.year % 100:02d}"

    @property
    def prefix(self) -> str:
        if self.category is Category.EXTERNAL_CITY:
            return f"R{self.region}{self.yy}{CITY_CODE}"
        if self.category is Category.EXTERNAL_DISTRICT:
            return f"R{self.region}{self.yy}{self.district_code}"
        return f"{self.category.letter}{self.region}{self.institution_digits}{self.yy}"

    def serial_width(self) -> int:
        return {Category.EXTERNAL_CITY: 3, Category.EXTERNAL_DISTRICT: 2}.get(self.category, 4)

    def serial_max(self, limits: SerialLimits = LAYOUT) -> int:
        if self.category is Category.EXTERNAL_CITY:
            return limits.city_max
        if self.category is Category.EXTERNAL_DISTRICT:
            return limits.district_max
        return limits.internal_max

    def format(self, serial: int) -> str:
        return f"{self.prefix}{serial:0{self.serial_width()}d}"

    def range_text(self, limits: SerialLimits = LAYOUT) -> str:
        w = self.serial_width()
        return f"{1:0{w}d}—{self.serial_max(limits):0{w}d}"


def external_scope(district_code: str, year: int, policy: RegistryPolicy = DEFAULT_POLICY) -> Scope:
    """Scope of an external badge: city level ("A") or a Table 3 district."""
    if district_code == CITY_CODE:
        return Scope(Category.EXTERNAL_CITY, year, district_code=CITY_CODE, region=policy.region_code)
    if district_code not in DISTRICTS:
        raise ProblemsError(
            [
                Problem(
                    "district_code", "UNKNOWN_DISTRICT", f"区代码{district_code}不在北京市行政区划代码表中（附件1表3）"
                )
            ]
        )
    return Scope(Category.EXTERNAL_DISTRICT, year, district_code=district_code, region=policy.region_code)


def internal_scope(
    type_letter: str, institution_number: str, year: int, policy: RegistryPolicy = DEFAULT_POLICY
) -> Scope:
    """Scope of an internal badge: Y/S + 11 + last four digits of the institution number + year."""
    digits = institution_code_digits(institution_number)
    return Scope(INTERNAL_LETTERS[type_letter], year, institution_digits=digits, region=policy.region_code)


def institution_code_digits(number: str) -> str:
    """The last four digits of an institution number (附件1 第4-7位 评价机构编号后四位)."""
    tail = number[-4:]
    if len(number) < 4 or not set(tail) <= DIGITS:
        raise ProblemsError(
            [
                Problem(
                    "number",
                    "INSTITUTION_NUMBER_FORMAT",
                    "评价机构编号的后四位必须是数字（附件1：第4-7位为评价机构编号后四位）",
                )
            ]
        )
    return tail


def next_free_serial(last: int, is_taken, serial_max: int) -> int | None:
    """The next sequential serial after `last` that is not taken (explicit serials may sit in the way).

    Returns None when the range is exhausted (D2: no wrap-around)."""
    s = last + 1
    while s <= serial_max:
        if not is_taken(s):
            return s
        s += 1
    return None


# ----------------------------------------------------------------------------------------- parsing


def normalise(text: str) -> str:
    """NFKC (full-width → ASCII), strip, upper-case: what an operator typed → the canonical form."""
    return unicodedata.normalize("NFKC", text or "").strip().upper()


def canonical_form_problems(text: str, parts: CodeParts) -> list[Problem]:
    """附件1 writes codes with 大写英文字母 and 阿拉伯数字: input that only parses after normalising (lower case,
    full-width characters, spaces) is not the code as written; say what the canonical form is."""
    if text == parts.code:
        return []
    return [
        Problem(
            "code",
            "NOT_CANONICAL",
            f"证卡编号“{text}”不是规范写法，应使用大写英文字母和半角阿拉伯数字，规范写法为“{parts.code}”（附件1）",
        )
    ]


def _digits(code: str, start: int, end: int, field: str, what: str) -> list[Problem]:
    """Check 1-based positions start..end are ASCII digits."""
    part = code[start - 1 : end]
    bad = [i for i, ch in enumerate(part, start) if ch not in DIGITS]
    if not bad:
        return []
    pos = bad[0]
    return [Problem(field, "DIGIT_EXPECTED", f"第{pos}位应为阿拉伯数字（{what}），实为“{code[pos - 1]}”（{ANNEX}）")]


def parse(text: str, policy: RegistryPolicy = DEFAULT_POLICY) -> CodeParts:
    """Parse any string into badge-code parts, or raise ProblemsError naming every violation precisely."""
    code = normalise(text)
    if not code:
        raise ProblemsError([Problem("code", "EMPTY", "证卡编号不能为空（附件1）")])
    letter = code[0]
    if letter == "R":
        return _parse_external(code, policy)
    if letter in INTERNAL_LETTERS:
        return _parse_internal(code, policy)
    raise ProblemsError(
        [
            Problem(
                "category",
                "UNKNOWN_CATEGORY",
                f"第1位证卡类别代码应为R（外督员）、Y（用人单位）或S（社会培训评价组织），实为“{letter}”（附件1表2、表5）",
            )
        ]
    )


def _region(code: str, policy: RegistryPolicy) -> list[Problem]:
    problems = _digits(code, 2, 3, "issuer_region", "证卡颁发机构代码")
    if not problems and code[1:3] != policy.region_code:
        problems.append(
            Problem(
                "issuer_region",
                "UNKNOWN_ISSUER_REGION",
                f"第2-3位证卡颁发机构代码应为{policy.region_code}（代表北京市），实为“{code[1:3]}”（附件1）",
            )
        )
    return problems


def _serial_zero(code: str, serial: str, field_positions: str, range_text: str) -> list[Problem]:
    if set(serial) <= DIGITS and int(serial) == 0:
        return [
            Problem(
                "serial_digits",
                "SERIAL_ZERO",
                f"{field_positions}证卡序列码不能为“{serial}”，应按{range_text}依次顺序赋码（附件1）",
            )
        ]
    return []


def _parse_external(code: str, policy: RegistryPolicy) -> CodeParts:
    if len(code) != 9:
        raise ProblemsError(
            [
                Problem(
                    "code",
                    "LENGTH",
                    f"外督员证卡编号应为9位（1位大写英文字母R和8位代码），实为{len(code)}位（附件1表1）",
                )
            ]
        )
    problems = _region(code, policy) + _digits(code, 4, 5, "year_digits", "证卡核发年份代码")
    sixth = code[5]
    if sixth == CITY_CODE:
        serial = code[6:9]
        problems += _digits(code, 7, 9, "serial_digits", "市级外督员证卡序列码")
        problems += _serial_zero(code, serial, "第7-9位", f"001—{LAYOUT.city_max:03d}") if not problems else []
        if problems:
            raise ProblemsError(problems)
        return CodeParts(code, Category.EXTERNAL_CITY, code[1:3], code[3:5], serial, district_code=CITY_CODE)
    district = code[5:7]
    if not set(district) <= DIGITS:
        problems.append(
            Problem(
                "district_code",
                "DISTRICT_FORMAT",
                f"第6位应为A（市级外督员）或第6-7位为区级行政区域代码（表3），实为“{district}”（附件1）",
            )
        )
    elif district not in DISTRICTS:
        problems.append(
            Problem(
                "district_code", "UNKNOWN_DISTRICT", f"第6-7位区代码“{district}”不在北京市行政区划代码表中（附件1表3）"
            )
        )
    serial = code[7:9]
    problems += _digits(code, 8, 9, "serial_digits", "区级外督员证卡序列码")
    if not problems:
        problems += _serial_zero(code, serial, "第8-9位", f"01—{LAYOUT.district_max:02d}")
    if problems:
        raise ProblemsError(problems)
    return CodeParts(code, Category.EXTERNAL_DISTRICT, code[1:3], code[3:5], serial, district_code=district)


def _parse_internal(code: str, policy: RegistryPolicy) -> CodeParts:
    if len(code) != 13:
        raise ProblemsError(
            [
                Problem(
                    "code",
                    "LENGTH",
                    f"内督员证卡编号应为13位（1位大写英文字母和12位阿拉伯数字），实为{len(code)}位（附件1表4）",
                )
            ]
        )
    problems = (
        _region(code, policy)
        + _digits(code, 4, 7, "institution_digits", "评价机构编号后四位")
        + _digits(code, 8, 9, "year_digits", "证卡核发年份代码")
        + _digits(code, 10, 13, "serial_digits", "内督员证卡序列码")
    )
    if not problems:
        problems += _serial_zero(code, code[9:13], "第10-13位", f"0001—{LAYOUT.internal_max:04d}")
    if problems:
        raise ProblemsError(problems)
    return CodeParts(code, INTERNAL_LETTERS[code[0]], code[1:3], code[7:9], code[9:13], institution_digits=code[3:7])


def check_serial_in_range(scope: Scope, serial: int, limits: SerialLimits = LAYOUT) -> None:
    """An explicit serial is allowed (D1 `badge.internal_explicit_serial_allowed`) and fits the range of its
    scope (附件1, D1)."""
    if not limits.internal_explicit_allowed:
        why = "证卡序列码由系统依次顺序赋码，现行规则不允许指定内督员证卡序列码（附件1，D1）"
        raise ProblemsError([Problem("explicit_serial", "EXPLICIT_SERIAL_NOT_ALLOWED", why)])
    if not 1 <= serial <= scope.serial_max(limits):
        raise ProblemsError(
            [
                Problem(
                    "explicit_serial",
                    "SERIAL_OUT_OF_RANGE",
                    f"证卡序列码{serial}超出范围，应在{scope.range_text(limits)}之间（附件1）",
                )
            ]
        )


def check_against_institution(parts: CodeParts, institution_type_letter: str | None) -> list[Problem]:
    """Registry-level consistency of an internal code: the institution exists and its type matches Y/S."""
    if not parts.category.internal:
        return []
    if institution_type_letter is None:
        return [
            Problem(
                "institution_digits",
                "UNKNOWN_INSTITUTION",
                f"第4-7位“{parts.institution_digits}”不对应任何已登记评价机构的编号后四位（附件1）",
            )
        ]
    if institution_type_letter != parts.letter:
        kind = {"Y": "用人单位", "S": "社会培训评价组织"}
        return [
            Problem(
                "category",
                "CATEGORY_MISMATCH",
                f"证卡类别代码为{parts.letter}（{kind[parts.letter]}），但该评价机构类型为"
                f"{kind[institution_type_letter]}，应为{institution_type_letter}（附件1表5）",
            )
        ]
    return []
