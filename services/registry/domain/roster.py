"""Bulk roster rows (operators keep supervisors in spreadsheets): column template and row validation.

Every row is validated before anything is imported; errors name the row, the column (as in the
template, Chinese) and the reason in Chinese.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .districts import lookup_district
from .problems import Problem, ProblemsError
from .supervisors import AttestationItem, SupervisorDraft, SupervisorInput, validate_supervisor

# Column headers of the template, in order.
COL_NAME = "姓名"
COL_GENDER = "性别"
COL_BIRTH = "出生日期"
COL_ID = "居民身份证号"
COL_TYPE = "督导员类别"
COL_LEVEL = "级别"
COL_DISTRICT = "所属区"
COL_INSTITUTION = "评价机构编号"
COL_PHONE = "联系电话"
COL_ART9 = {
    AttestationItem.ART9_1: "第九条（一）",
    AttestationItem.ART9_2: "第九条（二）",
    AttestationItem.ART9_3: "第九条（三）",
    AttestationItem.ART9_4: "第九条（四）",
    AttestationItem.HEALTH: "身体健康",
}
COL_ATTESTED_BY = "核实人"
COL_ATTESTED_DATE = "核实日期"
COL_TRAINING = "培训考核合格"
COL_TRAINING_BY = "考核单位"
COL_TRAINING_DATE = "考核日期"

COLUMNS: tuple[str, ...] = (
    COL_NAME,
    COL_GENDER,
    COL_BIRTH,
    COL_ID,
    COL_TYPE,
    COL_LEVEL,
    COL_DISTRICT,
    COL_INSTITUTION,
    COL_PHONE,
    *COL_ART9.values(),
    COL_ATTESTED_BY,
    COL_ATTESTED_DATE,
    COL_TRAINING,
    COL_TRAINING_BY,
    COL_TRAINING_DATE,
)
REQUIRED = (COL_NAME, COL_ID, COL_TYPE)

YES = {"是", "y", "yes", "true", "1", "√", "✓", "合格", "通过"}
NO = {"否", "n", "no", "false", "0", "×", "不合格", "未通过", ""}

# domain field → column, for error reports
FIELD_COLUMNS = {
    "full_name": COL_NAME,
    "gender": COL_GENDER,
    "birth_date": COL_BIRTH,
    "id_number": COL_ID,
    "type": COL_TYPE,
    "level": COL_LEVEL,
    "district_code": COL_DISTRICT,
    "institution": COL_INSTITUTION,
    "phone": COL_PHONE,
    "training.assessed_by": COL_TRAINING_BY,
    "training.assessed_date": COL_TRAINING_DATE,
}


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    reason: str
    description: str


def _cell(cells: Mapping[str, str], col: str) -> str:
    v = cells.get(col)
    return "" if v is None else str(v).strip()


def _yes_no(text: str) -> bool | None:
    t = text.strip().lower()
    if t in YES:
        return True
    if t in NO:
        return False
    return None


def row_to_input(cells: Mapping[str, str]) -> tuple[SupervisorInput, list[Problem]]:
    problems: list[Problem] = []
    gender = {"男": "male", "女": "female", "": ""}.get(_cell(cells, COL_GENDER))
    if gender is None:
        problems.append(Problem(COL_GENDER, "GENDER", "性别须填写“男”或“女”"))
        gender = ""
    typ = {"外督员": "external", "内督员": "internal"}.get(_cell(cells, COL_TYPE), "")
    if not typ:
        problems.append(Problem(COL_TYPE, "SUPERVISOR_TYPE_REQUIRED", "督导员类别须填写“外督员”或“内督员”（第五条）"))
    level_text = _cell(cells, COL_LEVEL)
    level = {"市级": "city", "区级": "district", "": ""}.get(level_text)
    if level is None:
        problems.append(Problem(COL_LEVEL, "LEVEL", "级别须填写“市级”或“区级”（外督员）"))
        level = ""
    district_text = _cell(cells, COL_DISTRICT)
    district = ""
    if district_text:
        district = lookup_district(district_text) or ""
        if not district:
            problems.append(
                Problem(
                    COL_DISTRICT, "UNKNOWN_DISTRICT", f"所属区“{district_text}”不在北京市行政区划代码表中（附件1表3）"
                )
            )
    attestations = []
    by, date_text = _cell(cells, COL_ATTESTED_BY), _cell(cells, COL_ATTESTED_DATE)
    for item, col in COL_ART9.items():
        v = _cell(cells, col)
        if not v:
            continue
        ok = _yes_no(v)
        if ok is None:
            problems.append(Problem(col, "YES_NO", f"{col}须填写“是”或“否”"))
            continue
        attestations.append((item.value, ok, by, date_text))
    training = None
    t = _cell(cells, COL_TRAINING)
    if t:
        ok = _yes_no(t)
        if ok is None:
            problems.append(Problem(COL_TRAINING, "YES_NO", "培训考核合格须填写“是”或“否”（第十条）"))
        else:
            training = (ok, _cell(cells, COL_TRAINING_BY), _cell(cells, COL_TRAINING_DATE))
    inp = SupervisorInput(
        full_name=_cell(cells, COL_NAME),
        gender=gender,
        birth_date=_cell(cells, COL_BIRTH),
        id_number=_cell(cells, COL_ID),
        type=typ or "?",
        level=level,
        district_code=district,
        institution_number=_cell(cells, COL_INSTITUTION),
        phone=_cell(cells, COL_PHONE),
        attestations=attestations,
        training=training,
    )
    return inp, problems


def _column_of(field: str) -> str:
    if field in FIELD_COLUMNS:
        return FIELD_COLUMNS[field]
    if field.startswith("attestations"):
        return COL_ATTESTED_DATE if field.endswith("attested_date") else COL_ATTESTED_BY
    return field


def validate_rows(
    rows: Sequence[tuple[int, Mapping[str, str]]],
    *,
    today: dt.date,
    institution_exists: Callable[[str], bool],
    id_number_registered: Callable[[str], bool],
) -> tuple[list[tuple[int, SupervisorDraft]], list[RowError]]:
    """Validate all rows; return the drafts of the good rows and every error of the bad ones.

    Duplicate ID numbers within the file and against the registry are errors (one person, one record)."""
    good: list[tuple[int, SupervisorDraft]] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for row_no, cells in rows:
        inp, problems = row_to_input(cells)
        row_errors = [RowError(row_no, p.field, p.reason, p.description) for p in problems]
        draft = None
        try:
            draft = validate_supervisor(inp, today)
        except ProblemsError as e:
            row_errors += [
                RowError(row_no, _column_of(p.field), p.reason, p.description)
                for p in e.problems
                if not (p.field == "type" and any(r.column == COL_TYPE for r in row_errors))
            ]
        if draft:
            if draft.institution_number and not institution_exists(draft.institution_number):
                row_errors.append(
                    RowError(
                        row_no,
                        COL_INSTITUTION,
                        "INSTITUTION_NOT_FOUND",
                        f"评价机构编号“{draft.institution_number}”未登记",
                    )
                )
            if draft.id_number in seen:
                row_errors.append(
                    RowError(
                        row_no, COL_ID, "ID_NUMBER_DUPLICATE_IN_FILE", f"居民身份证号与第{seen[draft.id_number]}行重复"
                    )
                )
            elif id_number_registered(draft.id_number):
                row_errors.append(
                    RowError(row_no, COL_ID, "ID_NUMBER_ALREADY_REGISTERED", "该居民身份证号已登记为质量督导员")
                )
            seen.setdefault(draft.id_number, row_no)
        if row_errors:
            errors += row_errors
        elif draft:
            good.append((row_no, draft))
    return good, errors
