"""Half-month district reports (第二十四条 区鉴定管理机构于每半个月向市鉴定管理中心报送, D10): aggregation of
what happened in one period, per district."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from services.registry.domain.districts import DISTRICT_CODES, district_name
from services.registry.domain.workflow import checklists
from services.registry.domain.workflow.model import Period, SupervisionForm


@dataclass(frozen=True)
class RecordFact:
    record: str
    district: str
    form: SupervisionForm
    first_submitted_on: dt.date
    late: bool
    no_items: tuple[int, ...]  # 否 item numbers of the current version


@dataclass(frozen=True)
class FeedbackFact:
    district: str
    submitted_on: dt.date
    late: bool


@dataclass(frozen=True)
class CaseFact:
    case: str
    district: str
    opened_on: dt.date
    decided_on: tuple[dt.date, ...]


@dataclass(frozen=True)
class DispatchFact:
    district: str
    created_on: dt.date


@dataclass
class DistrictFigures:
    district: str
    district_name: str
    period: Period
    supervisions_by_form: dict[SupervisionForm, int] = field(default_factory=dict)
    no_counts: list[tuple[SupervisionForm, int, str, int]] = field(default_factory=list)
    late_records: int = 0
    late_feedback: int = 0
    feedback_count: int = 0
    cases_opened: int = 0
    cases_decided: int = 0
    dispatches_created: int = 0
    records: list[str] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.records or self.cases or self.feedback_count or self.dispatches_created or self.cases_decided)


def aggregate(
    period: Period,
    *,
    records: list[RecordFact],
    feedback: list[FeedbackFact],
    cases: list[CaseFact],
    dispatches: list[DispatchFact],
    include_empty: bool = False,
) -> list[DistrictFigures]:
    """Figures per district for one period: supervisions done by form (records first submitted in the
    period), 否 counts per item number, late submissions, cases opened/decided, dispatches created."""

    def inside(d: dt.date) -> bool:
        return period.start <= d <= period.end

    figures: dict[str, DistrictFigures] = {}

    def fig(code: str) -> DistrictFigures:
        if code not in figures:
            figures[code] = DistrictFigures(code, district_name(code), period, {f: 0 for f in SupervisionForm})
        return figures[code]

    no_counter: dict[str, Counter] = {}
    for r in sorted(records, key=lambda r: r.record):
        if not inside(r.first_submitted_on):
            continue
        f = fig(r.district)
        f.supervisions_by_form[r.form] += 1
        f.records.append(r.record)
        f.late_records += int(r.late)
        no_counter.setdefault(r.district, Counter()).update((r.form, n) for n in r.no_items)
    for fb in feedback:
        if inside(fb.submitted_on):
            f = fig(fb.district)
            f.feedback_count += 1
            f.late_feedback += int(fb.late)
    for c in sorted(cases, key=lambda c: c.case):
        opened, decided = inside(c.opened_on), sum(1 for d in c.decided_on if inside(d))
        if opened or decided:
            f = fig(c.district)
            f.cases_opened += int(opened)
            f.cases_decided += decided
            f.cases.append(c.case)
    for d in dispatches:
        if inside(d.created_on):
            fig(d.district).dispatches_created += 1
    for code, counter in no_counter.items():
        figures[code].no_counts = [
            (form, n, checklists.item_text(form, n), count)
            for (form, n), count in sorted(
                counter.items(), key=lambda kv: (list(SupervisionForm).index(kv[0][0]), kv[0][1])
            )
        ]
    if include_empty:
        for code in DISTRICT_CODES:
            fig(code)
    return [figures[c] for c in sorted(figures, key=lambda c: (c not in DISTRICT_CODES, c))]
