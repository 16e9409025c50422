"""Catalogues of the regulation declared once as data files in this package (shipped as package data) and
read by every service that needs them, so no service imports another's code for them (issue #11 item 5).

`annex3.yaml` holds the two 附件3 checklists: 17 on-site items (第二十一条) and 16 records-review items
(第二十二条), with the annex's exact wording, section and subsection of each item. `districts.yaml` is
附件1 表3, the district codes and names (the registry's badge codes and organisations, notify's messages).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

ANNEX3_FILE = Path(__file__).with_name("annex3.yaml")
DISTRICTS_FILE = Path(__file__).with_name("districts.yaml")


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    number: int
    section: str
    subsection: str  # "" when the section has no subsection (政策制度执行情况)
    text: str

    @property
    def numbered_text(self) -> str:
        return f"{self.number}. {self.text}"


@dataclass(frozen=True, slots=True)
class Checklist:
    kind: str  # "on_site" | "records_review" (第十九条)
    subtitle: str
    items: tuple[ChecklistItem, ...]

    def item(self, number: int) -> ChecklistItem:
        return self.items[number - 1]

    @property
    def numbers(self) -> range:
        return range(1, len(self.items) + 1)


@cache
def annex3_checklists() -> dict[str, Checklist]:
    """Both 附件3 forms keyed by kind; items are numbered in the order the file lists them."""
    data = yaml.safe_load(ANNEX3_FILE.read_text(encoding="utf-8"))
    return {
        kind: Checklist(
            kind=kind,
            subtitle=form["subtitle"],
            items=tuple(
                ChecklistItem(number, row["section"], row["subsection"], row["text"])
                for number, row in enumerate(form["items"], start=1)
            ),
        )
        for kind, form in data.items()
    }


@cache
def district_table() -> dict[str, str]:
    """附件1 表3 in the annex's order: code ("A" for the city, "01"…"30") → name."""
    return {str(code): name for code, name in yaml.safe_load(DISTRICTS_FILE.read_text(encoding="utf-8")).items()}
