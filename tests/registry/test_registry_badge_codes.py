"""附件1 证卡编码规则: parsing and the pure allocation helpers, table-driven over every Table 3 code."""

from __future__ import annotations

import pytest

from services.registry.domain import badge_codes as bc
from services.registry.domain.districts import DISTRICT_CODES, DISTRICTS
from services.registry.domain.problems import ProblemsError


def test_table3_has_the_city_and_exactly_17_districts_with_the_annex_codes():
    assert next(iter(DISTRICTS)) == "A"
    assert DISTRICT_CODES == (
        "01", "02", "05", "06", "07", "08", "09", "11", "12", "13", "14", "15", "16", "17", "28", "29", "30",
    )  # fmt: skip
    assert DISTRICTS["28"] == "密云区" and DISTRICTS["29"] == "延庆区" and DISTRICTS["30"] == "北京经济技术开发区"


@pytest.mark.parametrize(
    ("code", "category", "district", "institution", "year", "serial"),
    [
        ("R1122A001", bc.Category.EXTERNAL_CITY, "A", "", 2022, 1),  # annex example, city level
        ("Y112001220001", bc.Category.INTERNAL_EMPLOYER, "", "2001", 2022, 1),  # annex example, internal
        ("R11220801", bc.Category.EXTERNAL_DISTRICT, "08", "", 2022, 1),  # 海淀 08, 2022, serial 01
        ("R1125A999", bc.Category.EXTERNAL_CITY, "A", "", 2025, 999),
        ("R11233099", bc.Category.EXTERNAL_DISTRICT, "30", "", 2023, 99),
        ("S113456239999", bc.Category.INTERNAL_SOCIAL, "", "3456", 2023, 9999),
        (" r1122a001 ", bc.Category.EXTERNAL_CITY, "A", "", 2022, 1),  # typed in lower case with blanks
        ("Ｒ１１２２Ａ００１", bc.Category.EXTERNAL_CITY, "A", "", 2022, 1),  # full-width input (NFKC)
    ],
)
def test_annex1_examples_parse_into_their_parts(code, category, district, institution, year, serial):
    p = bc.parse(code)
    assert (p.category, p.district_code, p.institution_digits, p.year, p.serial) == (
        category, district, institution, year, serial,
    )  # fmt: skip
    assert p.region == "11"


@pytest.mark.parametrize("district", DISTRICT_CODES)
def test_every_district_code_round_trips_through_allocation_and_parsing(district):
    scope = bc.external_scope(district, 2024)
    for serial in (1, 42, 99):
        code = scope.format(serial)
        assert len(code) == 9 and code.startswith(f"R1124{district}")
        p = bc.parse(code)
        assert (p.category, p.district_code, p.year, p.serial, p.prefix) == (
            bc.Category.EXTERNAL_DISTRICT, district, 2024, serial, scope.prefix,
        )  # fmt: skip
        assert p.district_name == DISTRICTS[district]


@pytest.mark.parametrize(
    ("letter", "category"), [("Y", bc.Category.INTERNAL_EMPLOYER), ("S", bc.Category.INTERNAL_SOCIAL)]
)
def test_both_internal_categories_round_trip(letter, category):
    scope = bc.internal_scope(letter, "1100012001", 2022)
    assert scope.prefix == f"{letter}11200122"
    for serial in (1, 10, 9999):
        p = bc.parse(scope.format(serial))
        assert (p.category, p.institution_digits, p.year, p.serial) == (category, "2001", 2022, serial)


def test_city_scope_formats_three_digit_serials():
    scope = bc.external_scope("A", 2022)
    assert scope.format(1) == "R1122A001" and scope.format(999) == "R1122A999"


def test_year_is_part_of_the_scope_so_a_new_year_restarts_serials_D1_D3():
    assert bc.external_scope("08", 2022).prefix != bc.external_scope("08", 2023).prefix
    assert bc.external_scope("08", 2023).format(1) == "R11230801"
    assert bc.internal_scope("S", "99990123", 2099).format(1) == "S110123990001"


@pytest.mark.parametrize(("district", "max_serial"), [("A", 999), ("08", 99)] + [(d, 99) for d in ("01", "30")])
def test_next_free_serial_stops_at_the_end_of_the_range_D2(district, max_serial):
    scope = bc.external_scope(district, 2022)
    assert scope.serial_max() == max_serial
    assert bc.next_free_serial(max_serial - 1, lambda s: False, max_serial) == max_serial
    assert bc.next_free_serial(max_serial, lambda s: False, max_serial) is None


def test_next_free_serial_skips_explicit_serials_already_taken():
    taken = {1, 2, 5}
    assert bc.next_free_serial(0, taken.__contains__, 9999) == 3
    assert bc.next_free_serial(4, taken.__contains__, 9999) == 6
    assert bc.next_free_serial(9998, {9999}.__contains__, 9999) is None


@pytest.mark.parametrize(
    ("code", "field", "reason", "words"),
    [
        ("", "code", "EMPTY", "不能为空"),
        ("X1122A001", "category", "UNKNOWN_CATEGORY", "第1位"),
        ("R1122A0001", "code", "LENGTH", "9位"),
        ("R1122A01", "code", "LENGTH", "9位"),
        ("Y11200122001", "code", "LENGTH", "13位"),
        ("R1222A001", "issuer_region", "UNKNOWN_ISSUER_REGION", "11"),
        ("R1O22A001", "issuer_region", "DIGIT_EXPECTED", "第3位"),
        ("R11X2A001", "year_digits", "DIGIT_EXPECTED", "第4位"),
        ("R1122A00I", "serial_digits", "DIGIT_EXPECTED", "第9位"),
        ("R1122A000", "serial_digits", "SERIAL_ZERO", "001—999"),
        ("R11220800", "serial_digits", "SERIAL_ZERO", "01—99"),
        ("R11220301", "district_code", "UNKNOWN_DISTRICT", "“03”"),
        ("R11222701", "district_code", "UNKNOWN_DISTRICT", "表3"),
        ("R1122B101", "district_code", "DISTRICT_FORMAT", "第6位应为A"),
        ("R11220B01", "district_code", "DISTRICT_FORMAT", "第6位应为A"),
        ("Y11200122000O", "serial_digits", "DIGIT_EXPECTED", "第13位"),
        ("Y112O01220001", "institution_digits", "DIGIT_EXPECTED", "第5位"),
        ("Y112001220000", "serial_digits", "SERIAL_ZERO", "0001—9999"),
        ("S1220012200001"[:13], "issuer_region", "UNKNOWN_ISSUER_REGION", "11"),
    ],
)
def test_bad_codes_are_refused_with_a_precise_chinese_violation(code, field, reason, words):
    with pytest.raises(ProblemsError) as e:
        bc.parse(code)
    p = e.value.problems[0]
    assert (p.field, p.reason) == (field, reason)
    assert words in p.description and "附件1" in p.description


def test_a_y_code_for_an_s_institution_is_a_category_mismatch():
    parts = bc.parse("Y112001220001")
    (p,) = bc.check_against_institution(parts, "S")
    assert p.reason == "CATEGORY_MISMATCH" and "社会培训评价组织" in p.description
    assert bc.check_against_institution(parts, "Y") == []
    (p,) = bc.check_against_institution(parts, None)
    assert p.reason == "UNKNOWN_INSTITUTION"
    assert bc.check_against_institution(bc.parse("R1122A001"), None) == []


@pytest.mark.parametrize(("letter", "serial"), [("Y", 0), ("S", 10000), ("Y", -1)])
def test_explicit_serials_outside_0001_9999_are_refused(letter, serial):
    with pytest.raises(ProblemsError) as e:
        bc.check_serial_in_range(bc.internal_scope(letter, "2001", 2022), serial)
    assert e.value.problems[0].reason == "SERIAL_OUT_OF_RANGE"


def test_institution_number_must_end_in_four_digits():
    with pytest.raises(ProblemsError):
        bc.institution_code_digits("11000A1")
    assert bc.institution_code_digits("1100012001") == "2001"
