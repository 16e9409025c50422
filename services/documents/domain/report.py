"""District half-month report (第二十四条: 区鉴定管理机构每半个月报送督导结果; D10 periods 1–15 / 16–end).

Content: district and period, supervisions done (on-site / records review), the 否 counts per checklist
item number as a table and a horizontal bar chart (vector, drawn here — deterministic bytes), late
submissions (D5 deadline), penalty cases opened / decided in the period.
"""

from __future__ import annotations

import io

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from services.documents.domain import annex3
from services.documents.domain.annex3 import ChecklistKind
from services.documents.domain.forms import BOTTOM, LEFT, PAGE_H, PAGE_W, RIGHT, cn_date
from services.documents.domain.model import DistrictReport
from services.documents.domain.pdfkit import MM, draw_text, new_canvas, text_width, wrap

TITLE = "职业技能等级认定质量督导情况半月报"
SIZE = 10.5
ROW = 17
BAR_COLOUR = (0.75, 0.16, 0.16)
KIND_LABEL = {ChecklistKind.ON_SITE: "现场督导", ChecklistKind.RECORDS_REVIEW: "事后认定材料督导"}


class _Flow:
    def __init__(self, c: Canvas, report: DistrictReport) -> None:
        self.c = c
        self.y = PAGE_H - 18 * MM
        self.page = 1
        self.report = report

    def need(self, h: float) -> None:
        if self.y - h < BOTTOM + 10 * MM:
            self.footer()
            self.c.showPage()
            self.page += 1
            self.y = PAGE_H - 18 * MM

    def footer(self) -> None:
        r = self.report
        draw_text(
            self.c,
            PAGE_W / 2,
            10 * MM,
            f"{r.district_name} {cn_date(r.period_start)}—{cn_date(r.period_end)}  第{self.page}页",
            8,
            anchor="centre",
            color=(0.4, 0.4, 0.4),
        )

    def heading(self, text: str) -> None:
        self.need(3 * ROW)
        self.y -= 10
        draw_text(self.c, LEFT, self.y - 12, text, 12, bold=True)
        self.y -= 12 + 8


def _table(f: _Flow, widths: list[float], header: list[str], rows: list[list[str]]) -> None:
    c = f.c
    xs = [LEFT]
    for w in widths:
        xs.append(xs[-1] + w)

    def line(cells: list[str], *, bold: bool = False) -> None:
        f.need(ROW)
        top = f.y
        c.rect(xs[0], top - ROW, xs[-1] - xs[0], ROW)
        for x in xs[1:-1]:
            c.line(x, top, x, top - ROW)
        for i, cell in enumerate(cells):
            text = cell
            width = xs[i + 1] - xs[i] - 6
            while text and text_width(text, SIZE) > width:
                text = text[:-2] + "…"
            draw_text(c, xs[i] + 3, top - ROW + 5, text, SIZE, bold=bold)
        f.y -= ROW

    line(header, bold=True)
    for r in rows:
        line(r)


def _bar_chart(f: _Flow, kind: ChecklistKind, counts: dict[int, int]) -> None:
    checklist = annex3.CHECKLISTS[kind]
    c = f.c
    bar_h = 9
    gap = 3
    height = len(checklist.items) * (bar_h + gap) + 30
    f.need(height)
    top = f.y
    label_w = 14 * MM
    x0 = LEFT + label_w
    width = RIGHT - x0 - 12 * MM
    peak = max([*counts.values(), 1])
    draw_text(c, LEFT, top - 10, f"{KIND_LABEL[kind]}：各项“否”次数", 10)
    y = top - 24
    c.saveState()
    c.setStrokeColorRGB(0.3, 0.3, 0.3)
    c.setLineWidth(0.5)
    c.line(x0, y + bar_h, x0, y - len(checklist.items) * (bar_h + gap) + bar_h)
    c.restoreState()
    for item in checklist.items:
        n = counts.get(item.number, 0)
        draw_text(c, x0 - 4, y + 1.5, f"第{item.number}项", 8, anchor="right")
        if n:
            c.saveState()
            c.setFillColorRGB(*BAR_COLOUR)
            c.rect(x0, y, width * n / peak, bar_h, stroke=0, fill=1)
            c.restoreState()
        draw_text(c, x0 + width * n / peak + 3, y + 1.5, str(n), 8)
        y -= bar_h + gap
    f.y = y - 6


def draw_report(c: Canvas, report: DistrictReport) -> None:
    f = _Flow(c, report)
    _draw_header(f, report)
    _draw_completion(f, report)
    _draw_non_compliant(f, report)
    _draw_late(f, report)
    f.heading("四、违规处理案件（第二十六条、第二十七条）")
    _table(
        f,
        [60 * MM, 40 * MM],
        ["项目", "件数"],
        [["本期立案", str(report.cases_opened)], ["本期作出处理决定", str(report.cases_decided)]],
    )
    f.footer()


def _draw_header(f: _Flow, report: DistrictReport) -> None:
    c = f.c
    title = f"{report.district_name}{TITLE}"
    draw_text(c, PAGE_W / 2, f.y - 18, title, 18, bold=True, anchor="centre")
    f.y -= 18 + 14
    period = f"报告期：{cn_date(report.period_start)}—{cn_date(report.period_end)}"
    draw_text(c, PAGE_W / 2, f.y - 11, period, 11, anchor="centre")
    f.y -= 11 + 8
    meta = f"报送单位：{report.district_name}（区划代码 {report.district_code}）"
    if report.report_date:
        meta += f"　　报送日期：{cn_date(report.report_date)}"
    draw_text(c, PAGE_W / 2, f.y - 10, meta, 10, anchor="centre")
    f.y -= 10 + 6
    draw_text(
        c,
        PAGE_W / 2,
        f.y - 8,
        "依据《北京市职业技能等级认定质量督导工作管理办法（试行）》第二十四条",
        8,
        anchor="centre",
        color=(0.35, 0.35, 0.35),
    )
    f.y -= 8 + 4


def _draw_completion(f: _Flow, report: DistrictReport) -> None:
    f.heading("一、督导完成情况")
    total = report.on_site_count + report.records_review_count
    rows = [
        ["现场督导", str(report.on_site_count)],
        ["事后认定材料督导", str(report.records_review_count)],
        ["合计", str(total)],
    ]
    if report.dispatches_created:
        rows.append(["本期委派督导", str(report.dispatches_created)])
    if report.feedback_count:
        rows.append(["收到外督员情况反馈表", str(report.feedback_count)])
    _table(f, [60 * MM, 40 * MM], ["督导形式", "完成次数"], rows)


def _draw_non_compliant(f: _Flow, report: DistrictReport) -> None:
    c = f.c
    f.heading("二、督导记录表“否”项统计")
    for kind in (ChecklistKind.ON_SITE, ChecklistKind.RECORDS_REVIEW):
        counts = {ic.item: ic.count for ic in report.non_compliant_counts if ic.kind is kind}
        checklist = annex3.CHECKLISTS[kind]
        rows = [
            [str(item.number), item.text, str(counts.get(item.number, 0))]
            for item in checklist.items
            if counts.get(item.number, 0)
        ]
        f.need(ROW * 2)
        draw_text(
            c,
            LEFT,
            f.y - 11,
            f"（{'一' if kind is ChecklistKind.ON_SITE else '二'}）"
            f"{KIND_LABEL[kind]}（共{len(checklist.items)}项，“否”合计{sum(counts.values())}次）",
            10.5,
        )
        f.y -= 11 + 6
        if rows:
            _table(f, [14 * MM, 130 * MM, 30 * MM], ["序号", "督导内容", "“否”次数"], rows)
        else:
            draw_text(c, LEFT + 4 * MM, f.y - 10, "本期无“否”项。", 10)
            f.y -= 10 + 6
        f.y -= 6
        _bar_chart(f, kind, counts)


def _draw_late(f: _Flow, report: DistrictReport) -> None:
    c = f.c
    f.heading("三、逾期提交（督导结束后5个工作日内提交，第二十三条）")
    late_records = max(report.late_record_count, len(report.late_submissions))
    f.need(ROW)
    draw_text(
        c,
        LEFT,
        f.y - 11,
        f"逾期提交督导记录表{late_records}份；逾期提交外督员情况反馈表{report.late_feedback_count}份。",
        10.5,
    )
    f.y -= 11 + 8
    if report.late_submissions:
        _table(
            f,
            [40 * MM, 70 * MM, 32 * MM, 32 * MM],
            ["记录", "被督导评价机构", "应提交日期", "提交日期"],
            [
                [s.record, s.institution_name, cn_date(s.due_date), cn_date(s.submitted_date)]
                for s in report.late_submissions
            ],
        )
    elif not late_records and not report.late_feedback_count:
        draw_text(c, LEFT + 4 * MM, f.y - 10, "本期无逾期提交。", 10)
        f.y -= 16


def render_report(report: DistrictReport) -> bytes:
    buf = io.BytesIO()
    c = new_canvas(buf, A4, title=f"{report.district_name}{TITLE}")
    c.setLineWidth(0.6)
    draw_report(c, report)
    c.showPage()
    c.save()
    return buf.getvalue()


__all__ = ["render_report", "wrap"]
