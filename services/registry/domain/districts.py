"""北京市行政区划代码表 (附件1 表3), read from the catalogue every service shares.

Used by the badge-code parser, the seed migration and the organisation model. Note that 28 密云区 and
29 延庆区 are the annex's codes, not today's GB/T 2260 codes: the annex is the law we encode.
"""

from __future__ import annotations

from types import MappingProxyType

from common.catalogues import district_table

#: Code of the city level (市级外督员; the city centre 市鉴定管理中心).
CITY_CODE = "A"

#: 表3, in the annex's order, declared once in `common/catalogues/districts.yaml`.
DISTRICTS: MappingProxyType[str, str] = MappingProxyType(district_table())

#: The 17 district codes (without the city).
DISTRICT_CODES: tuple[str, ...] = tuple(c for c in DISTRICTS if c != CITY_CODE)

#: Display name of the city centre (第五条).
CITY_CENTRE_NAME = "北京市职业技能鉴定管理中心"


def is_district(code: str) -> bool:
    return code in DISTRICTS and code != CITY_CODE


def district_name(code: str) -> str:
    return DISTRICTS.get(code, "")


def agency_display_name(code: str) -> str:
    """Default display name of an agency (editable later): the city centre or 「<区>职业技能鉴定管理机构」."""
    if code == CITY_CODE:
        return CITY_CENTRE_NAME
    return f"{DISTRICTS[code]}职业技能鉴定管理机构"


def lookup_district(text: str) -> str | None:
    """Accept a code ("08", "8", "A") or a name ("海淀区", "海淀") and return the code, else None."""
    t = (text or "").strip()
    if not t:
        return None
    if t.upper() == CITY_CODE:
        return CITY_CODE
    if t.isascii() and t.isdigit() and len(t) <= 2:
        t2 = t.zfill(2)
        return t2 if t2 in DISTRICTS else None
    for code, name in DISTRICTS.items():
        if t in (name, name.removesuffix("区")) and code != CITY_CODE:
            return code
    if t in ("北京市", "市级", "北京"):
        return CITY_CODE
    return None
