"""Supervisor registration data (第五条, 第九条, 第十条): validation of what an operator enters.

The registry records facts (identity, scope, attestations, training); whether someone is *eligible*
is decided by the rules service (第九条, D6) at appointment and renewal — not here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from . import id_number
from .districts import CITY_CODE, DISTRICTS, is_district
from .problems import Problem, ProblemsError


class SupervisorType(StrEnum):
    EXTERNAL = "external"  # 外督员
    INTERNAL = "internal"  # 内督员


class Level(StrEnum):
    CITY = "city"  # 市级外督员
    DISTRICT = "district"  # 区级外督员
    INSTITUTION = "institution"  # 内督员


class Status(StrEnum):
    NOT_APPOINTED = "not_appointed"
    ACTIVE = "active"
    EXPIRED = "expired"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class AttestationItem(StrEnum):
    ART9_1 = "art9_1"
    ART9_2 = "art9_2"
    ART9_3 = "art9_3"
    ART9_4 = "art9_4"
    HEALTH = "health"


ATTESTATION_LABELS = {
    AttestationItem.ART9_1: "第九条（一）",
    AttestationItem.ART9_2: "第九条（二）",
    AttestationItem.ART9_3: "第九条（三）",
    AttestationItem.ART9_4: "第九条（四）",
    AttestationItem.HEALTH: "第九条（五）身体健康",
}

NAME_MAX = 50


@dataclass(frozen=True)
class Attestation:
    item: AttestationItem
    satisfied: bool
    attested_by: str
    attested_date: dt.date


@dataclass(frozen=True)
class Training:
    passed: bool
    assessed_by: str
    assessed_date: dt.date
    course: str = ""
    certificate_number: str = ""


@dataclass(frozen=True)
class Affiliation:
    """A dated relation to an institution (第十六条): employer or other affiliation."""

    institution: str  # institutions/<number>
    employer: bool
    from_date: dt.date
    until_date: dt.date | None

    def overlaps(self, first: dt.date, last: dt.date) -> bool:
        return self.from_date <= last and (self.until_date is None or self.until_date >= first)


def validate_affiliations(raw: list[tuple[str, str, str, str]], field_name: str = "affiliations") -> list[Affiliation]:
    """raw: (institution resource name, "employer"|"other", from, until) per entry."""
    out: list[Affiliation] = []
    problems: list[Problem] = []
    for i, (institution, kind, from_text, until_text) in enumerate(raw):
        f = f"{field_name}[{i}]"
        number = institution.removeprefix("institutions/")
        if not institution.startswith("institutions/") or not number.isdigit():
            problems.append(Problem(f"{f}.institution", "INSTITUTION_NAME", "单位须为 institutions/<机构编号>"))
        if kind not in ("employer", "other"):
            problems.append(Problem(f"{f}.kind", "AFFILIATION_KIND_REQUIRED", "请选择任职单位或其他隶属关系"))
        start, p = parse_date(from_text, f"{f}.from_date", "起始日期")
        problems += p
        until = None
        if until_text.strip():
            until, p = parse_date(until_text, f"{f}.until_date", "截止日期")
            problems += p
        if start and until and until < start:
            problems.append(Problem(f"{f}.until_date", "UNTIL_BEFORE_FROM", "截止日期不能早于起始日期"))
        if start and not problems:
            out.append(Affiliation(institution, kind == "employer", start, until))
    if problems:
        raise ProblemsError(problems)
    return out


@dataclass
class SupervisorInput:
    """Raw values as entered (strings for dates so the edge can report the exact field)."""

    full_name: str
    gender: str  # "male" | "female" | ""
    birth_date: str
    id_number: str
    type: str  # "external" | "internal"
    level: str  # "city" | "district" | "institution" | ""
    district_code: str = ""
    institution_number: str = ""
    phone: str = ""
    attestations: list[tuple[str, bool, str, str]] = field(default_factory=list)  # item, ok, by, date
    training: tuple[bool, str, str] | None = None  # passed, by, date
    affiliations: list[tuple[str, str, str, str]] = field(default_factory=list)  # institution, kind, from, until


@dataclass(frozen=True)
class SupervisorDraft:
    full_name: str
    male: bool
    birth_date: dt.date
    id_number: str
    type: SupervisorType
    level: Level
    district_code: str  # "A" for city level, Table-3 code for district level, "" for internal (set from institution)
    institution_number: str
    phone: str
    attestations: tuple[Attestation, ...]
    training: Training | None
    affiliations: tuple[Affiliation, ...] = ()


def parse_date(text: str, field_name: str, label: str) -> tuple[dt.date | None, list[Problem]]:
    """A date as officials type it in a roster spreadsheet (2026-01-02, 2026/01/02, 2026.01.02, 20260102).

    Problems carry the one reason of a bad date in every service (common.api.DATE_FORMAT)."""
    t = (text or "").strip()
    if not t:
        return None, [Problem(field_name, "DATE_FORMAT", f"{label}不能为空")]
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(t, fmt).date(), []
        except ValueError:
            continue
    return None, [Problem(field_name, "DATE_FORMAT", f"{label}“{t}”不是有效日期，应为YYYY-MM-DD")]


def validate_name(name: str, field_name: str = "full_name") -> list[Problem]:
    n = (name or "").strip()
    if not n:
        return [Problem(field_name, "NAME_REQUIRED", "姓名不能为空")]
    if len(n) > NAME_MAX:
        return [Problem(field_name, "NAME_TOO_LONG", f"姓名不得超过{NAME_MAX}个字符")]
    return []


def validate_attestations(
    raw, today: dt.date, field_name: str = "attestations"
) -> tuple[list[Attestation], list[Problem]]:
    out: list[Attestation] = []
    problems: list[Problem] = []
    seen = set()
    for i, (item, ok, by, date_text) in enumerate(raw):
        f = f"{field_name}[{i}]"
        try:
            it = AttestationItem(item)
        except ValueError:
            problems.append(Problem(f"{f}.item", "ATTESTATION_ITEM", "核实事项须为第九条（一）至（四）或身体健康"))
            continue
        label = ATTESTATION_LABELS[it]
        if it in seen:
            problems.append(Problem(f"{f}.item", "ATTESTATION_DUPLICATE", f"{label}重复填报"))
        seen.add(it)
        if not (by or "").strip():
            problems.append(Problem(f"{f}.attested_by", "ATTESTED_BY_REQUIRED", f"{label}须注明核实人（谁核实）"))
        d, p = parse_date(date_text, f"{f}.attested_date", f"{label}核实日期")
        problems += p
        if d and d > today:
            problems.append(Problem(f"{f}.attested_date", "DATE_IN_FUTURE", f"{label}核实日期不能晚于今天"))
        if d:
            out.append(Attestation(it, bool(ok), by.strip(), d))
    return out, problems


def validate_training(raw, today: dt.date, field_name: str = "training") -> tuple[Training | None, list[Problem]]:
    if raw is None:
        return None, []
    passed, by, date_text = raw
    problems = []
    if not (by or "").strip():
        problems.append(
            Problem(f"{field_name}.assessed_by", "ASSESSED_BY_REQUIRED", "培训考核须注明考核单位（第十条）")
        )
    d, p = parse_date(date_text, f"{field_name}.assessed_date", "培训考核日期")
    problems += p
    if d and d > today:
        problems.append(Problem(f"{field_name}.assessed_date", "DATE_IN_FUTURE", "培训考核日期不能晚于今天"))
    if problems or d is None:
        return None, problems
    return Training(bool(passed), by.strip(), d), []


def _identity(inp: SupervisorInput, today: dt.date, problems: list[Problem]) -> id_number.IdNumberInfo | None:
    """The ID number (GB 11643), consistent with the birth date and gender given, if any."""
    info = None
    try:
        info = id_number.parse(inp.id_number, today=today)
    except ProblemsError as e:
        problems += e.problems
    birth = None
    if (inp.birth_date or "").strip():
        birth, p = parse_date(inp.birth_date, "birth_date", "出生日期")
        problems += p
    male = {"male": True, "female": False}.get(inp.gender)
    if inp.gender not in ("male", "female", ""):
        problems.append(Problem("gender", "GENDER", "性别须为男或女"))
    if info:
        problems += id_number.check_consistency(info, birth_date=birth, male=male)
    return info


def _unknown_district(district: str) -> Problem:
    return Problem("district_code", "UNKNOWN_DISTRICT", f"区代码“{district}”不在北京市行政区划代码表中（附件1表3）")


def _external_level(inp: SupervisorInput, district: str, institution: str, problems: list[Problem]):
    """(level, district) of an external supervisor: city (第六条) or district (第七条), no institution."""
    level = None
    if inp.level == Level.CITY or (not inp.level and district == CITY_CODE):
        level, district = Level.CITY, CITY_CODE
    elif inp.level == Level.DISTRICT or (not inp.level and district):
        level = Level.DISTRICT
        if not district:
            problems.append(Problem("district_code", "DISTRICT_REQUIRED", "区级外督员须填写所属区代码（附件1表3）"))
        elif not is_district(district):
            problems.append(_unknown_district(district))
    else:
        problems.append(Problem("level", "LEVEL_REQUIRED", "外督员须注明市级或区级（第六条、第七条）"))
    if institution:
        why = "外督员由市、区鉴定管理机构选聘，不属于评价机构（第五条）"
        problems.append(Problem("institution", "INSTITUTION_NOT_ALLOWED", why))
    return level, district


def _internal_level(inp: SupervisorInput, district: str, institution: str, problems: list[Problem]):
    """(level, district) of an internal supervisor: of an institution (第五条, 第十二条), no level, and the
    district is the institution's."""
    if not institution:
        problems.append(Problem("institution", "INSTITUTION_REQUIRED", "内督员须填写所属评价机构（第五条、第十二条）"))
    if district and district not in DISTRICTS:
        problems.append(_unknown_district(district))
    if inp.level and inp.level != Level.INSTITUTION:
        problems.append(Problem("level", "LEVEL_NOT_ALLOWED", "内督员不分市级、区级（第五条）"))
    return Level.INSTITUTION, ""


def validate_supervisor(inp: SupervisorInput, today: dt.date) -> SupervisorDraft:
    """Check every field; raise ProblemsError listing all problems (nothing is stored on any problem)."""
    problems: list[Problem] = validate_name(inp.full_name)
    info = _identity(inp, today, problems)
    try:
        typ = SupervisorType(inp.type)
    except ValueError:
        typ = None
        problems.append(Problem("type", "SUPERVISOR_TYPE_REQUIRED", "督导员类别须为外督员或内督员（第五条）"))
    level = None
    district = (inp.district_code or "").strip().upper()
    institution = (inp.institution_number or "").strip()
    if typ is SupervisorType.EXTERNAL:
        level, district = _external_level(inp, district, institution, problems)
    elif typ is SupervisorType.INTERNAL:
        level, district = _internal_level(inp, district, institution, problems)
    phone = (inp.phone or "").strip()
    if len(phone) > 50:
        problems.append(Problem("phone", "PHONE_TOO_LONG", "联系电话不得超过50个字符"))
    attestations, p = validate_attestations(inp.attestations, today)
    problems += p
    training, p = validate_training(inp.training, today)
    problems += p
    try:
        affiliations = validate_affiliations(inp.affiliations)
    except ProblemsError as e:
        affiliations, problems = [], problems + e.problems
    if problems:
        raise ProblemsError(problems)
    assert info is not None and typ is not None and level is not None
    return SupervisorDraft(
        full_name=inp.full_name.strip(), male=info.male, birth_date=info.birth_date, id_number=info.number,
        type=typ, level=level, district_code=district, institution_number=institution, phone=phone,
        attestations=tuple(attestations), training=training, affiliations=tuple(affiliations),
    )  # fmt: skip
