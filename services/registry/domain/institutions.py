"""Evaluation institutions (评价机构, 第二条): 用人单位 (Y) or 社会培训评价组织 (S)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .badge_codes import institution_code_digits
from .districts import is_district
from .problems import Problem, ProblemsError

NUMBER_RE = re.compile(r"^[0-9A-Za-z]{4,32}$")
TYPE_LETTERS = {"employer": "Y", "social": "S"}
TYPE_NAMES = {"Y": "用人单位", "S": "社会培训评价组织"}


@dataclass(frozen=True)
class InstitutionDraft:
    number: str
    type_letter: str
    display_name: str
    district_code: str
    contact: str

    @property
    def code_digits(self) -> str:
        return self.number[-4:]


def validate_number(number: str, field: str = "number") -> list[Problem]:
    n = (number or "").strip()
    if not NUMBER_RE.match(n):
        return [Problem(field, "INSTITUTION_NUMBER_FORMAT", "评价机构编号应为4至32位字母或数字")]
    try:
        institution_code_digits(n)
    except ProblemsError as e:
        return [Problem(field, p.reason, p.description) for p in e.problems]
    return []


def validate_institution(
    number: str, type_letter: str, display_name: str, district_code: str, contact: str
) -> InstitutionDraft:
    problems = validate_number(number)
    if type_letter not in TYPE_NAMES:
        problems.append(
            Problem(
                "type", "INSTITUTION_TYPE_REQUIRED", "评价机构类型须为用人单位（Y）或社会培训评价组织（S）（附件1表5）"
            )
        )
    name = (display_name or "").strip()
    if not name:
        problems.append(Problem("display_name", "NAME_REQUIRED", "评价机构名称不能为空"))
    elif len(name) > 100:
        problems.append(Problem("display_name", "NAME_TOO_LONG", "评价机构名称不得超过100个字符"))
    d = (district_code or "").strip()
    if not is_district(d):
        problems.append(
            Problem("district_code", "UNKNOWN_DISTRICT", f"所在区代码“{d}”不在北京市行政区划代码表中（附件1表3）")
        )
    if len(contact or "") > 200:
        problems.append(Problem("contact", "CONTACT_TOO_LONG", "联系方式不得超过200个字符"))
    if problems:
        raise ProblemsError(problems)
    return InstitutionDraft(number.strip(), type_letter, name, d, (contact or "").strip())
