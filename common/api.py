"""API conventions every servicer shares: resource names, dates, page sizes, opaque page tokens, reasons.

One mistake gets one answer in every service: INVALID_ARGUMENT with a `BadRequest` field violation naming
the field (Chinese description) and one of the reason codes below in `ErrorInfo.reason`.

    from common import api

    sid = api.parse_id(request.supervisor, "supervisors", field="supervisor")   # 42, or RESOURCE_NAME
    key = api.parse_name(request.name, "badges")                               # "R1122A001"
    period = api.parse_name(request.name, "reports", segments=2)               # "08/2026-11-1"
    name = api.format_name("supervisors", 42)                                  # "supervisors/42"
    day = api.parse_date(request.as_of_date, "as_of_date", default=today)      # or DATE_FORMAT
    text = api.format_date(day)                                                # "2026-11-28" ("" for None)
    page = api.page_request(request.page_size, request.page_token, listing="registry.ListBadges", kind=str)
    ...  # query rows after page.after (None = first page), at most page.size + 1 of them
    token = api.next_page_token(rows, page, key=lambda r: r.code, listing="registry.ListBadges")
    token = api.token_after(last_key_or_None, listing="registry.ListBadges")  # when the caller cut the page

Page tokens are opaque to callers: a URL-safe base64 of JSON `[listing, position]` plus a checksum, so a
token edited by hand, cut short, or taken from another listing is refused (PAGE_TOKEN) instead of silently
starting somewhere else. The position is whatever the listing resumes from — a keyset key (preferred) or
an offset. Tokens are not a security boundary (anyone may list from any position; filters are re-applied).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from common.errors import FieldViolation, InvalidArgument

# ---------------------------------------------------------------------------------------------- reasons
RESOURCE_NAME = "RESOURCE_NAME"  # a resource name not of the form "<collection>/<key>" (or id out of range)
DATE_FORMAT = "DATE_FORMAT"  # a date missing where required, or not a real date written YYYY-MM-DD
PAGE_TOKEN = "PAGE_TOKEN"  # a page token this listing did not hand out
PAGE_SIZE = "PAGE_SIZE"  # a negative page size

MAX_ID = 2**63 - 1  # numeric ids are BIGINT (SQLite INTEGER / PostgreSQL bigint)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

T = TypeVar("T")


def _invalid(reason: str, field: str, description: str) -> InvalidArgument:
    return InvalidArgument(reason, [FieldViolation(field, description)])


# ---------------------------------------------------------------------------------------------- names


def format_name(collection: str, key: str | int) -> str:
    return f"{collection}/{key}"


def parse_name(name: str, collection: str, *, field: str = "name", segments: int = 1) -> str:
    """The key of `collection/<key>`: `segments` non-empty parts separated by "/" (1: no further "/"; 2 for
    a nested name such as `reports/08/2026-11-1`, whose key is then "08/2026-11-1")."""
    prefix = f"{collection}/"
    key = name[len(prefix) :] if name.startswith(prefix) else ""
    parts = key.split("/")
    if len(parts) != segments or not all(parts):
        shape = "/".join(["<标识>"] * segments)
        raise _invalid(RESOURCE_NAME, field, f"资源名称应为“{prefix}{shape}”形式，实为“{name}”")
    return key


def parse_id(name: str, collection: str, *, field: str = "name") -> int:
    """The numeric id of `collection/<id>`, 1 … MAX_ID (ASCII digits only)."""
    key = parse_name(name, collection, field=field)
    if not (key.isascii() and key.isdigit()) or not 0 < int(key) <= MAX_ID:
        raise _invalid(RESOURCE_NAME, field, f"资源名称“{name}”中的编号应为1至{MAX_ID}之间的整数")
    return int(key)


# ---------------------------------------------------------------------------------------------- dates

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_date(text: str, field: str, *, default: dt.date | None = None) -> dt.date:
    """A calendar date written YYYY-MM-DD. Empty: `default` if given, else DATE_FORMAT.

    Use `parse_optional_date` for a filter that may be left out."""
    if not text:
        if default is not None:
            return default
        raise _invalid(DATE_FORMAT, field, "日期不能为空，格式应为YYYY-MM-DD")
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _invalid(DATE_FORMAT, field, f"“{text}”不是有效日期，格式应为YYYY-MM-DD") from None


def parse_optional_date(text: str, field: str) -> dt.date | None:
    """None when empty, else as `parse_date`."""
    return parse_date(text, field) if text else None


def format_date(day: dt.date | None) -> str:
    return day.isoformat() if day else ""


# ---------------------------------------------------------------------------------------------- pages


@dataclass(frozen=True)
class Page:
    size: int  # rows to return
    after: Any = None  # position to resume after (decoded from the token); None on the first page


def page_size(size: int, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    """0 → `default`; above `maximum` → `maximum` (AIP-158); negative → PAGE_SIZE."""
    if size < 0:
        raise _invalid(PAGE_SIZE, "page_size", "每页数量不能为负数")
    return min(size or default, maximum)


def _checksum(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=6, person=b"bjsv-page").digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_page_token(position: Any, *, listing: str) -> str:
    """An opaque token for `position` (any JSON value) in `listing` (e.g. "registry.ListBadges")."""
    body = json.dumps([listing, position], separators=(",", ":"), ensure_ascii=False).encode()
    return f"{_b64(body)}.{_b64(_checksum(body))}"


def decode_page_token(token: str, *, listing: str, kind: type | None = None, field: str = "page_token") -> Any:
    """The position of a token from `encode_page_token(…, listing=listing)`; None for an empty token.

    `kind` (e.g. int for an id keyset) refuses a position of another JSON type."""
    if not token:
        return None
    try:
        body_text, _, sum_text = token.partition(".")
        body = _unb64(body_text)
        if _checksum(body) != _unb64(sum_text):
            raise ValueError("checksum")
        kind_of, position = json.loads(body)
        if kind_of != listing:
            raise ValueError("listing")
        if kind is not None and (not isinstance(position, kind) or isinstance(position, bool)):
            raise ValueError("position")
        return position
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise _invalid(PAGE_TOKEN, field, "分页标记无效：请使用上一页返回的next_page_token") from None


def page_request(
    size: int, token: str, *, listing: str, kind: type | None = None, default: int = DEFAULT_PAGE_SIZE
) -> Page:
    return Page(page_size(size, default=default), decode_page_token(token, listing=listing, kind=kind))


def next_page_token(rows: Sequence[T], page: Page, *, key: Callable[[T], Any], listing: str) -> str:
    """Given up to page.size + 1 rows fetched after page.after, the token of the next page ("" if none)."""
    return token_after(key(rows[page.size - 1]) if len(rows) > page.size else None, listing=listing)


def token_after(position: Any, *, listing: str) -> str:
    """The token resuming after `position`; "" (no next page) for None."""
    return "" if position is None else encode_page_token(position, listing=listing)
