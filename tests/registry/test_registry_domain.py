"""ID numbers (GB 11643), terms and validity text (第十三条, D4), images, supervisor and roster validation."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from PIL import Image

from services.registry.domain import id_number, images, roster, terms
from services.registry.domain.problems import ProblemsError
from services.registry.domain.supervisors import SupervisorInput, validate_supervisor

TODAY = dt.date(2026, 11, 28)


def jpeg(w=300, h=420, fmt="JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(buf, fmt)
    return buf.getvalue()


# ------------------------------------------------------------------ GB 11643


@pytest.mark.parametrize(
    ("number", "birth", "male"),
    [
        ("11010519491231002X", dt.date(1949, 12, 31), False),  # the standard's own example
        ("110105194912310021", None, None),  # check digit wrong
        ("440524198001010013", dt.date(1980, 1, 1), True),
    ],
)
def test_id_number_check_digit_follows_gb11643(number, birth, male):
    if birth is None:
        with pytest.raises(ProblemsError) as e:
            id_number.parse(number)
        assert e.value.problems[0].reason == "ID_NUMBER_CHECK_DIGIT"
        assert "GB 11643" in e.value.problems[0].description
    else:
        info = id_number.parse(number.lower())
        assert (info.birth_date, info.male) == (birth, male)


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("", "ID_NUMBER_REQUIRED"),
        ("11010519491231002", "ID_NUMBER_LENGTH"),
        ("1101051949123100211", "ID_NUMBER_LENGTH"),
        ("11010519491231A02X", "ID_NUMBER_FORMAT"),
        ("11010519491331002X", "ID_NUMBER_BIRTH_DATE"),
        ("110105209912310021", "ID_NUMBER_BIRTH_DATE"),
    ],
)
def test_malformed_id_numbers_are_refused(number, reason):
    with pytest.raises(ProblemsError) as e:
        id_number.parse(number, today=TODAY)
    assert e.value.problems[0].reason == reason


def test_composed_numbers_are_valid_and_carry_gender_in_position_17():
    n = id_number.compose("110108", dt.date(1970, 2, 28), 123)
    info = id_number.parse(n)
    assert info.birth_date == dt.date(1970, 2, 28) and info.male
    assert not id_number.parse(id_number.compose("110108", dt.date(1970, 2, 28), 124)).male


def test_masking_hides_birth_date_and_most_of_the_name():
    assert id_number.mask("11010519491231002X") == "110105********002X"
    assert [id_number.mask_name(n) for n in ("张三", "王小明", "欧阳娜娜", "李")] == ["张*", "王*明", "欧**娜", "李"]


# ------------------------------------------------------------------ terms


@pytest.mark.parametrize(
    ("start", "end", "text"),
    [
        (dt.date(2022, 6, 15), dt.date(2025, 6, 14), "2022.06-2025.06"),  # 附件2 sample
        (dt.date(2024, 2, 29), dt.date(2027, 2, 28), "2024.02-2027.03"),
        (dt.date(2023, 1, 1), dt.date(2025, 12, 31), "2023.01-2026.01"),
    ],
)
def test_a_term_lasts_three_years_art13_and_validity_text_follows_D4(start, end, text):
    t = terms.term_from(start, 3)  # the rule set's appointment.term_years (第十三条)
    assert (t.end, t.validity_text()) == (end, text)
    assert not terms.is_expired(t.end, t.end) and terms.is_expired(t.end, t.end + dt.timedelta(days=1))


# ------------------------------------------------------------------ images


def test_photo_must_be_a_real_jpeg_or_png_of_reasonable_size():
    assert images.check_photo(jpeg()).mime_type == "image/jpeg"
    assert images.check_photo(jpeg(fmt="PNG")).mime_type == "image/png"
    for data, reason in [
        (b"not an image", "IMAGE_UNREADABLE"),
        (jpeg()[:200], "IMAGE_UNREADABLE"),
        (jpeg(50, 60), "IMAGE_DIMENSIONS"),
        (jpeg(fmt="GIF"), "IMAGE_FORMAT"),
        (b"\xff" * (3 * 1024 * 1024), "IMAGE_TOO_LARGE"),
    ]:
        with pytest.raises(ProblemsError) as e:
            images.check_photo(data)
        assert e.value.problems[0].reason == reason, reason


# ------------------------------------------------------------------ supervisors


def _inp(**kw) -> SupervisorInput:
    base = dict(
        full_name="张三", gender="male", birth_date="1970-02-28",
        id_number=id_number.compose("110108", dt.date(1970, 2, 28), 123),
        type="external", level="district", district_code="08",
    )  # fmt: skip
    base.update(kw)
    return SupervisorInput(**base)


def test_valid_external_district_supervisor_passes():
    d = validate_supervisor(_inp(attestations=[("art9_1", True, "海淀区鉴定所", "2026-01-05")]), TODAY)
    assert d.district_code == "08" and d.male and d.attestations[0].attested_by == "海淀区鉴定所"


@pytest.mark.parametrize(
    ("kw", "field", "reason"),
    [
        ({"birth_date": "1970-03-01"}, "birth_date", "BIRTH_DATE_MISMATCH"),
        ({"gender": "female"}, "gender", "GENDER_MISMATCH"),
        ({"district_code": "03"}, "district_code", "UNKNOWN_DISTRICT"),
        ({"level": "", "district_code": ""}, "level", "LEVEL_REQUIRED"),
        ({"type": "internal", "level": ""}, "institution", "INSTITUTION_REQUIRED"),
        ({"full_name": " "}, "full_name", "NAME_REQUIRED"),
        ({"attestations": [("art9_1", True, "", "2026-01-05")]}, "attestations[0].attested_by", "ATTESTED_BY_REQUIRED"),
        ({"training": (True, "市中心", "2030-01-01")}, "training.assessed_date", "DATE_IN_FUTURE"),
        ({"institution_number": "1100012001"}, "institution", "INSTITUTION_NOT_ALLOWED"),
    ],
)
def test_bad_supervisor_fields_are_named(kw, field, reason):
    with pytest.raises(ProblemsError) as e:
        validate_supervisor(_inp(**kw), TODAY)
    assert (field, reason) in [(p.field, p.reason) for p in e.value.problems]


# ------------------------------------------------------------------ roster


def test_roster_rows_report_row_column_and_chinese_reason():
    good = {
        "姓名": "李四", "性别": "女", "出生日期": "1975-05-05",
        "居民身份证号": id_number.compose("110101", dt.date(1975, 5, 5), 2),
        "督导员类别": "外督员", "级别": "区级", "所属区": "海淀区",
        "第九条（一）": "是", "核实人": "海淀区鉴定所", "核实日期": "2026-01-05",
        "培训考核合格": "是", "考核单位": "海淀区鉴定所", "考核日期": "2026-02-01",
    }  # fmt: skip
    dup = dict(good)
    bad = dict(good, 所属区="火星区", 性别="男")
    internal = dict(
        good,
        督导员类别="内督员",
        级别="",
        所属区="",
        评价机构编号="9999",
        居民身份证号=id_number.compose("110101", dt.date(1975, 5, 5), 4),
    )
    ok, errors = roster.validate_rows(
        [(2, good), (3, dup), (4, bad), (5, internal)], today=TODAY,
        institution_exists=lambda n: False, id_number_registered=lambda n: False,
    )  # fmt: skip
    assert [r for r, _ in ok] == [2]
    got = {(e.row, e.column, e.reason) for e in errors}
    assert (3, "居民身份证号", "ID_NUMBER_DUPLICATE_IN_FILE") in got
    assert (4, "所属区", "UNKNOWN_DISTRICT") in got
    assert (4, "性别", "GENDER_MISMATCH") in got
    assert (5, "评价机构编号", "INSTITUTION_NOT_FOUND") in got
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in e.description) for e in errors)
