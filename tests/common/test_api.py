"""common.api: one reason code per kind of mistake, opaque page tokens that survive a round trip only."""

from __future__ import annotations

import datetime as dt

import pytest

from common import api
from common.errors import InvalidArgument


def reason_and_field(fn, *args, **kw) -> tuple[str, str]:
    with pytest.raises(InvalidArgument) as e:
        fn(*args, **kw)
    return e.value.reason, e.value.violations[0].field


@pytest.mark.parametrize("name", ["", "supervisors/", "supervisor/4", "supervisors/4/x", "appointments/4"])
def test_malformed_names_are_resource_name(name):
    assert reason_and_field(api.parse_name, name, "supervisors", field="supervisor") == (
        api.RESOURCE_NAME,
        "supervisor",
    )


@pytest.mark.parametrize("name", ["supervisors/abc", "supervisors/0", "supervisors/-3", "supervisors/٣",
                                  f"supervisors/{2**63}"])  # fmt: skip
def test_ids_outside_the_range_are_resource_name(name):
    assert reason_and_field(api.parse_id, name, "supervisors")[0] == api.RESOURCE_NAME


def test_names_round_trip():
    assert api.parse_id(api.format_name("supervisors", 42), "supervisors") == 42
    assert api.parse_id(f"supervisors/{api.MAX_ID}", "supervisors") == api.MAX_ID
    assert api.parse_name("badges/R1122A001", "badges") == "R1122A001"


def test_nested_names_have_exactly_their_segments():
    assert api.parse_name("reports/08/2026-11-1", "reports", segments=2) == "08/2026-11-1"
    for bad in ("reports/08", "reports/08/", "reports//2026-11-1", "reports/08/2026-11-1/x"):
        assert reason_and_field(api.parse_name, bad, "reports", segments=2)[0] == api.RESOURCE_NAME


@pytest.mark.parametrize("text", ["2026-02-30", "20260101", "2026-W01-1", "2026/01/01", "26-01-01", " 2026-01-01"])
def test_malformed_dates_are_date_format(text):
    assert reason_and_field(api.parse_date, text, "start_date") == (api.DATE_FORMAT, "start_date")


def test_a_missing_required_date_is_date_format_and_defaults_apply():
    assert reason_and_field(api.parse_date, "", "as_of_date") == (api.DATE_FORMAT, "as_of_date")
    assert api.parse_date("", "as_of_date", default=dt.date(2026, 1, 2)) == dt.date(2026, 1, 2)
    assert api.parse_optional_date("", "expiring_before") is None
    assert api.parse_date("2024-02-29", "d") == dt.date(2024, 2, 29)
    assert api.format_date(dt.date(2026, 3, 1)) == "2026-03-01" and api.format_date(None) == ""


def test_page_size_defaults_caps_and_refuses_negative():
    assert api.page_size(0) == api.DEFAULT_PAGE_SIZE and api.page_size(10_000) == api.MAX_PAGE_SIZE
    assert api.page_size(0, default=100) == 100
    assert reason_and_field(api.page_size, -1) == (api.PAGE_SIZE, "page_size")


@pytest.mark.parametrize("position", [8, "R1122A001", [1767225600, 17], {"k": "海淀"}])
def test_page_tokens_round_trip_and_are_opaque(position):
    token = api.encode_page_token(position, listing="registry.ListBadges")
    assert api.decode_page_token(token, listing="registry.ListBadges") == position
    assert str(position) not in token  # not the raw key (OA== was base64 of "8")
    assert api.decode_page_token("", listing="registry.ListBadges") is None


def tampered(token: str) -> list[str]:
    body, _, check = token.partition(".")
    # change the first character: the last one may only carry base64 padding bits and decode the same
    flipped = ("A" if body[0] != "A" else "B") + body[1:]
    return [f"{flipped}.{check}", token[:-2], body, "OA==", "garbage!", token + "x", "." + check]


def test_tampered_or_foreign_tokens_are_page_token():
    token = api.encode_page_token(123, listing="registry.ListSupervisors")
    for bad in tampered(token):
        assert reason_and_field(api.decode_page_token, bad, listing="registry.ListSupervisors") == (
            api.PAGE_TOKEN,
            "page_token",
        ), bad
    # a token handed out by another listing does not resume this one
    assert reason_and_field(api.decode_page_token, token, listing="registry.ListBadges")[0] == api.PAGE_TOKEN
    # a well-formed token whose position has the wrong type for the keyset
    text = api.encode_page_token("R1122A001", listing="registry.ListSupervisors")
    assert reason_and_field(api.page_request, 10, text, listing="registry.ListSupervisors", kind=int)[0] == (
        api.PAGE_TOKEN
    )
    assert api.page_request(10, token, listing="registry.ListSupervisors", kind=int).after == 123


def test_next_page_token_points_after_the_last_row_returned():
    page = api.page_request(2, "", listing="x")
    assert api.next_page_token([1, 2], page, key=lambda r: r, listing="x") == ""
    token = api.next_page_token([1, 2, 3], page, key=lambda r: r, listing="x")
    assert api.page_request(2, token, listing="x") == api.Page(2, 2)
