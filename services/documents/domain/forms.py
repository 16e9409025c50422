"""Annex 3 (督导记录表, on-site and records review) and Annex 4 (外督员情况反馈表) as A4 PDF.

The table follows the annex: header rows (被督导评价机构 / 评价计划名称 / 认定形式), the column header
(督导内容 / 督导结果 / 备注), the items grouped by merged section and subsection cells with their numbers,
a ☐是 ☐否 pair per item ticked from the record (☑), the remark, the 意见 block (存在问题, signatures, date)
and both notes. The checklist text comes from `annex3` — the one declaration shared with the DOCX
renderer. Check boxes are DejaVuSans glyphs (☐ U+2610 / ☑ U+2611); the CJK face has none
(library-notes §3.2). A record that does not fit one page continues on the next with the column header
repeated and the section labels carried over.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from services.documents.domain import annex3
from services.documents.domain.annex3 import Checklist, ChecklistItem
from services.documents.domain.model import Feedback, SupervisionRecord
from services.documents.domain.pdfkit import (
    MM,
    SYMBOL,
    draw_text,
    multiline,
    new_canvas,
    text_width,
    wrap,
)

PAGE_W, PAGE_H = A4
LEFT = 18 * MM
RIGHT = PAGE_W - 18 * MM
TOP = PAGE_H - 13 * MM
BOTTOM = 12 * MM
WIDTH = RIGHT - LEFT

TITLE_SIZE = 16
SUBTITLE_SIZE = 12
SIZE = 10.5
LEADING = 13
SMALL = 9
PAD = 3
BOX = "☐"
TICKED = "☑"
SHANGHAI = ZoneInfo("Asia/Shanghai")

# Column x positions of the checklist table (left edges) and the right edge.
COL_SECTION = LEFT
COL_SUBSECTION = LEFT + 14 * MM
COL_CONTENT = LEFT + 27 * MM
COL_YES = LEFT + 122 * MM
COL_NO = LEFT + 135 * MM
COL_REMARK = LEFT + 148 * MM
COL_END = RIGHT


def cn_date(d: dt.date | None) -> str:
    return f"{d.year}年{d.month}月{d.day}日" if d else annex3.FOOTER_DATE


def cn_datetime(t: dt.datetime | None) -> str:
    if t is None:
        return ""
    if t.tzinfo is not None:
        t = t.astimezone(SHANGHAI)
    return f"{t.year}年{t.month}月{t.day}日 {t.hour:02d}:{t.minute:02d}"


class _Pages:
    """A canvas plus a running y; `need(h)` starts a new page when h does not fit."""

    def __init__(self, c: Canvas, header: Callable[[_Pages], None] | None = None) -> None:
        self.c = c
        self.y = TOP
        self.page = 1
        self.header = header

    def need(self, h: float) -> bool:
        if self.y - h >= BOTTOM:
            return False
        self.c.showPage()
        self.page += 1
        self.y = TOP
        if self.header:
            self.header(self)
        return True


def _cell_text(
    c: Canvas,
    x0: float,
    x1: float,
    y_top: float,
    h: float,
    lines: list[str],
    size: float,
    leading: float,
    *,
    centre: bool = False,
) -> None:
    """Lines vertically centred in the cell [y_top - h, y_top]."""
    block = len(lines) * leading
    y = y_top - (h - block) / 2 - leading + (leading - size) / 2 + size * 0.12
    for line in lines:
        if centre:
            draw_text(c, (x0 + x1) / 2, y, line, size, anchor="centre")
        else:
            draw_text(c, x0 + PAD, y, line, size)
        y -= leading


def _label_cell(c: Canvas, x0: float, x1: float, top: float, h: float, label: str) -> None:
    """Narrow merged cells in the annex stack their label over several short lines; a label taller than
    its cell (a one-item subsection such as 资格审核) is set smaller."""
    for size, leading in ((SIZE, LEADING - 1), (SMALL, SMALL + 0.5), (7.5, 8)):
        lines = wrap(label, x1 - x0 - 2 * PAD, size)
        if len(lines) * leading <= h - 2:
            break
    _cell_text(c, x0, x1, top, h, lines, size, leading, centre=True)


def _box_pair(c: Canvas, y_mid: float, compliant: bool | None) -> None:
    for x0, x1, word, ticked in (
        (COL_YES, COL_NO, annex3.YES, compliant is True),
        (COL_NO, COL_REMARK, annex3.NO, compliant is False),
    ):
        w = text_width(BOX, SIZE + 1, SYMBOL) + 1 + text_width(word, SIZE)
        x = (x0 + x1 - w) / 2
        base = y_mid - SIZE * 0.35
        draw_text(c, x, base, TICKED if ticked else BOX, SIZE + 1, font=SYMBOL)
        draw_text(c, x + text_width(BOX, SIZE + 1, SYMBOL) + 1, base, word, SIZE)


@dataclass(frozen=True, slots=True)
class _Row:
    item: ChecklistItem
    text_lines: list[str]
    remark_lines: list[str]
    height: float


def _rows(checklist: Checklist, record: SupervisionRecord | None) -> list[_Row]:
    rows = []
    for item in checklist.items:
        text_lines = wrap(item.numbered_text, COL_YES - COL_CONTENT - 2 * PAD, SIZE)
        answer = record.answer(item.number) if record else None
        remark = answer.remark if answer else ""
        remark_lines = wrap(remark, COL_END - COL_REMARK - 2 * PAD, SMALL) if remark else []
        h = max(len(text_lines) * LEADING, len(remark_lines) * (SMALL + 2)) + 2 * PAD + 2
        rows.append(_Row(item, text_lines, remark_lines, max(h, 20)))
    return rows


def _hline(c: Canvas, x0: float, x1: float, y: float) -> None:
    c.line(x0, y, x1, y)


def _title(p: _Pages, title: str, subtitle: str) -> None:
    c = p.c
    draw_text(c, PAGE_W / 2, p.y - TITLE_SIZE, title, TITLE_SIZE, bold=True, anchor="centre")
    p.y -= TITLE_SIZE + 8
    if subtitle:
        draw_text(c, PAGE_W / 2, p.y - SUBTITLE_SIZE, subtitle, SUBTITLE_SIZE, anchor="centre")
        p.y -= SUBTITLE_SIZE + 8


def _column_header(p: _Pages) -> None:
    c = p.c
    h = 22
    top = p.y
    c.rect(LEFT, top - h, WIDTH, h)
    for x in (COL_YES, COL_REMARK):
        c.line(x, top, x, top - h)
    _cell_text(c, LEFT, COL_YES, top, h, [annex3.COLUMN_CONTENT], SIZE, LEADING, centre=True)
    _cell_text(c, COL_YES, COL_REMARK, top, h, [annex3.COLUMN_RESULT], SIZE, LEADING, centre=True)
    _cell_text(c, COL_REMARK, COL_END, top, h, [annex3.COLUMN_REMARK], SIZE, LEADING, centre=True)
    p.y -= h


def _header_rows(p: _Pages, record: SupervisionRecord | None) -> None:
    c = p.c
    label_w = 30 * MM
    inst = record.institution_name if record else ""
    plan = record.plan_name if record else ""
    method = record.assessment_method if record else ""
    # row 1: 被督导评价机构 | value
    inst_lines = wrap(inst, WIDTH - label_w - 2 * PAD, SIZE) if inst else [""]
    h1 = max(24, len(inst_lines) * LEADING + 2 * PAD)
    top = p.y
    c.rect(LEFT, top - h1, WIDTH, h1)
    c.line(LEFT + label_w, top, LEFT + label_w, top - h1)
    _cell_text(c, LEFT, LEFT + label_w, top, h1, [annex3.HEADER_INSTITUTION], SIZE, LEADING, centre=True)
    _cell_text(c, LEFT + label_w, RIGHT, top, h1, inst_lines, SIZE, LEADING)
    p.y -= h1
    # row 2: 评价计划名称 | value | 认定形式 | value
    method_label_x = COL_YES
    method_value_x = COL_YES + 25 * MM
    plan_lines = wrap(plan, method_label_x - LEFT - label_w - 2 * PAD, SIZE) if plan else [""]
    method_lines = wrap(method, RIGHT - method_value_x - 2 * PAD, SIZE) if method else [""]
    h2 = max(24, max(len(plan_lines), len(method_lines)) * LEADING + 2 * PAD)
    top = p.y
    c.rect(LEFT, top - h2, WIDTH, h2)
    for x in (LEFT + label_w, method_label_x, method_value_x):
        c.line(x, top, x, top - h2)
    _cell_text(c, LEFT, LEFT + label_w, top, h2, [annex3.HEADER_PLAN], SIZE, LEADING, centre=True)
    _cell_text(c, LEFT + label_w, method_label_x, top, h2, plan_lines, SIZE, LEADING)
    _cell_text(c, method_label_x, method_value_x, top, h2, [annex3.HEADER_METHOD], SIZE, LEADING, centre=True)
    _cell_text(c, method_value_x, RIGHT, top, h2, method_lines, SIZE, LEADING)
    p.y -= h2


def _draw_groups(c: Canvas, placed: list[tuple[_Row, float]]) -> None:
    """Merged section/subsection cells for the rows placed on one page."""

    def runs(key):
        out: list[list[tuple[_Row, float]]] = []
        for row, top in placed:
            if out and key(out[-1][-1][0].item) == key(row.item):
                out[-1].append((row, top))
            else:
                out.append([(row, top)])
        return out

    for run in runs(lambda i: i.section):
        top = run[0][1]
        bottom = run[-1][1] - run[-1][0].height
        item = run[0][0].item
        x1 = COL_CONTENT if not item.subsection else COL_SUBSECTION
        c.rect(COL_SECTION, bottom, x1 - COL_SECTION, top - bottom)
        _label_cell(c, COL_SECTION, x1, top, top - bottom, item.section)
    for run in runs(lambda i: (i.section, i.subsection)):
        item = run[0][0].item
        if not item.subsection:
            continue
        top = run[0][1]
        bottom = run[-1][1] - run[-1][0].height
        c.rect(COL_SUBSECTION, bottom, COL_CONTENT - COL_SUBSECTION, top - bottom)
        _label_cell(c, COL_SUBSECTION, COL_CONTENT, top, top - bottom, item.subsection)


def _opinion(p: _Pages, record: SupervisionRecord | None) -> None:
    c = p.c
    problems = record.problems if record else ""
    text_w = RIGHT - COL_SUBSECTION - 2 * PAD
    problem_lines = wrap(problems, text_w - text_width(annex3.FOOTER_PROBLEMS, SIZE), SIZE) if problems else []
    body_h = max(46, (len(problem_lines) + 1) * LEADING + 2 * PAD + 6)
    sign_h = 26
    h = body_h + sign_h
    p.need(h)
    top = p.y
    c.rect(LEFT, top - h, WIDTH, h)
    c.line(COL_SUBSECTION, top, COL_SUBSECTION, top - h)
    _cell_text(c, LEFT, COL_SUBSECTION, top, h, [annex3.FOOTER_OPINION], SIZE, LEADING, centre=True)
    y = top - PAD - SIZE
    draw_text(c, COL_SUBSECTION + PAD, y, annex3.FOOTER_PROBLEMS, SIZE)
    x_text = COL_SUBSECTION + PAD + text_width(annex3.FOOTER_PROBLEMS, SIZE)
    for line in problem_lines:
        draw_text(c, x_text, y, line, SIZE)
        y -= LEADING
    base = top - body_h - sign_h / 2 - SIZE * 0.35 + 6
    names = "、".join(record.supervisor_names) if record else ""
    x = COL_SUBSECTION + PAD
    draw_text(c, x, base, annex3.FOOTER_SUPERVISOR_SIGNATURE + names, SIZE)
    date_text = cn_date(record.signed_date) if record else annex3.FOOTER_DATE
    x_date = COL_SUBSECTION + 62 * MM
    draw_text(c, x_date, base, date_text, SIZE)
    head = record.institution_head_name if record else ""
    x_head = COL_SUBSECTION + 98 * MM
    draw_text(c, x_head, base, annex3.FOOTER_HEAD_SIGNATURE + head, SIZE)
    p.y -= h


def _notes(p: _Pages) -> None:
    width = WIDTH
    lines: list[str] = []
    for i, note in enumerate(annex3.NOTES):
        indent = "" if i == 0 else "　　"
        lines.extend(wrap(indent + note, width, SMALL + 0.5))
    p.need(len(lines) * 13 + 8)
    y = p.y - 8 - SMALL
    for line in lines:
        draw_text(p.c, LEFT, y, line, SMALL + 0.5)
        y -= 13
    p.y = y


def draw_record(c: Canvas, checklist: Checklist, record: SupervisionRecord | None) -> None:
    def continuation(p: _Pages) -> None:
        draw_text(p.c, LEFT, p.y - SMALL, f"{annex3.FORM_TITLE}{checklist.subtitle}（续）", SMALL)
        p.y -= SMALL + 8
        _column_header(p)

    p = _Pages(c)
    _title(p, annex3.FORM_TITLE, checklist.subtitle)
    _header_rows(p, record)
    _column_header(p)
    p.header = continuation
    placed: list[tuple[_Row, float]] = []
    for row in _rows(checklist, record):
        if p.y - row.height < BOTTOM:
            _draw_groups(c, placed)
            placed = []
            p.need(row.height + 1000)  # forces the page break
        top = p.y
        c.rect(COL_CONTENT, top - row.height, COL_END - COL_CONTENT, row.height)
        for x in (COL_YES, COL_NO, COL_REMARK):
            c.line(x, top, x, top - row.height)
        _cell_text(c, COL_CONTENT, COL_YES, top, row.height, row.text_lines, SIZE, LEADING)
        answer = record.answer(row.item.number) if record else None
        _box_pair(c, top - row.height / 2, answer.compliant if answer else None)
        if row.remark_lines:
            _cell_text(c, COL_REMARK, COL_END, top, row.height, row.remark_lines, SMALL, SMALL + 2)
        placed.append((row, top))
        p.y -= row.height
    _draw_groups(c, placed)
    _opinion(p, record)
    _notes(p)


def render_record(checklist: Checklist, record: SupervisionRecord | None = None) -> bytes:
    """附件3 as A4 PDF; `record=None` renders the blank printable form."""
    buf = io.BytesIO()
    c = new_canvas(buf, A4, title=f"{annex3.FORM_TITLE}{checklist.subtitle}")
    c.setLineWidth(0.6)
    draw_record(c, checklist, record)
    c.showPage()
    c.save()
    return buf.getvalue()


# ----------------------------------------------------------------------------------------- Annex 4
# The regulation's form word for word (annex3.FEEDBACK_*): 填报单位（盖章/签字） with the signer and date in
# that slot, the table, and the note under it. The 工作反馈情况 cell holds the free text and then the
# project's three structured answers under a heading that marks them as an addition (D12). Text that does
# not fit continues on further pages, the cell repeated with （续）; nothing is cut.

FEEDBACK_LABEL_W = 32 * MM
FEEDBACK_SIZE = SIZE + 0.5
FEEDBACK_LEADING = LEADING + 2
FEEDBACK_INDENT = 4 * MM


def signature_text(feedback: Feedback | None) -> str:
    """What follows the unit in the 填报单位（盖章/签字） slot: who signed and when (（签字：王五　2026年3月6日）)."""
    if feedback is None:
        return ""
    date = cn_date(feedback.signed_date) if feedback.signed_date else ""
    signed = "　".join(v for v in (feedback.signed_by, date) if v)
    return f"（{annex3.FEEDBACK_SIGNED_BY}{signed}）" if signed else ""


def _feedback_rows(p: _Pages, feedback: Feedback | None) -> None:
    """外督员姓名, then 外督员进场时间 | value | 外督员离场时间 | value."""
    c, h, size = p.c, 30, SIZE + 1
    top = p.y
    c.rect(LEFT, top - h, WIDTH, h)
    c.line(LEFT + FEEDBACK_LABEL_W, top, LEFT + FEEDBACK_LABEL_W, top - h)
    _cell_text(c, LEFT, LEFT + FEEDBACK_LABEL_W, top, h, [annex3.FEEDBACK_SUPERVISOR_NAME], size, LEADING, centre=True)
    name = wrap(feedback.supervisor_name, RIGHT - LEFT - FEEDBACK_LABEL_W - 2 * PAD, size)[0] if feedback else ""
    _cell_text(c, LEFT + FEEDBACK_LABEL_W, RIGHT, top, h, [name], size, LEADING)
    top -= h
    mid = LEFT + WIDTH / 2
    c.rect(LEFT, top - h, WIDTH, h)
    for x in (LEFT + FEEDBACK_LABEL_W, mid, mid + FEEDBACK_LABEL_W):
        c.line(x, top, x, top - h)
    entry = cn_datetime(feedback.entry_time) if feedback else ""
    exit_ = cn_datetime(feedback.exit_time) if feedback else ""
    _cell_text(c, LEFT, LEFT + FEEDBACK_LABEL_W, top, h, [annex3.FEEDBACK_ENTRY_TIME], size, LEADING, centre=True)
    _cell_text(c, LEFT + FEEDBACK_LABEL_W, mid, top, h, [entry], SIZE, LEADING)
    _cell_text(c, mid, mid + FEEDBACK_LABEL_W, top, h, [annex3.FEEDBACK_EXIT_TIME], size, LEADING, centre=True)
    _cell_text(c, mid + FEEDBACK_LABEL_W, RIGHT, top, h, [exit_], SIZE, LEADING)
    p.y = top - h


def _feedback_body_lines(feedback: Feedback | None) -> list[tuple[str, object]]:
    """The 工作反馈情况 cell as lines: ("text", str) for the free text (paragraphs kept), ("gap", None),
    ("heading", str) and ("answer", (number, question, value)) for the marked additions."""
    width = WIDTH - 2 * FEEDBACK_INDENT - 2 * PAD
    comments = feedback.comments if feedback else ""
    lines: list[tuple[str, object]] = [("label", annex3.FEEDBACK_SITUATION)]
    for paragraph in comments.splitlines() if comments else ():
        lines += [("text", line) for line in wrap(paragraph, width, FEEDBACK_SIZE)]
    lines += [("gap", None)] * (2 if comments else 8)
    lines += [("heading", line) for line in wrap(annex3.FEEDBACK_ADDITIONS_HEADING, width, SIZE)]
    for number, (key, question) in enumerate(annex3.FEEDBACK_QUESTIONS, start=1):
        lines.append(("answer", (number, question, getattr(feedback, key) if feedback else None)))
    return lines


def _draw_body_line(c: Canvas, y: float, kind: str, value) -> None:
    if kind == "label":
        draw_text(c, LEFT + PAD, y, value, SIZE + 1)
    elif kind == "text":
        draw_text(c, LEFT + FEEDBACK_INDENT, y, value, FEEDBACK_SIZE)
    elif kind == "heading":
        draw_text(c, LEFT + FEEDBACK_INDENT, y, value, SIZE, color=(0.35, 0.35, 0.35))
    elif kind == "answer":
        number, question, answer = value
        draw_text(c, LEFT + FEEDBACK_INDENT, y, f"{number}. {question}", FEEDBACK_SIZE)
        x = RIGHT - 38 * MM
        for word, ticked in ((annex3.YES, answer is True), (annex3.NO, answer is False)):
            draw_text(c, x, y, TICKED if ticked else BOX, SIZE + 1.5, font=SYMBOL)
            draw_text(c, x + text_width(BOX, SIZE + 1.5, SYMBOL) + 1, y, word, FEEDBACK_SIZE)
            x += 16 * MM


def _feedback_body(p: _Pages, feedback: Feedback | None, note_lines: list[str]) -> None:
    """The 工作反馈情况 cell down to just above the note, on as many pages as its lines need."""
    bottom = BOTTOM + len(note_lines) * LEADING + 8
    top = p.y
    y = top - PAD - 4
    for kind, value in _feedback_body_lines(feedback):
        if y - FEEDBACK_LEADING < bottom + PAD:
            p.c.rect(LEFT, bottom, WIDTH, top - bottom)
            p.c.showPage()
            p.page += 1
            p.y = TOP
            draw_text(p.c, LEFT, p.y - SMALL, f"{annex3.FEEDBACK_TITLE}（续）", SMALL)
            top = p.y - SMALL - 8
            y = top - PAD - 4
        y -= FEEDBACK_LEADING
        _draw_body_line(p.c, y, kind, value)
    p.c.rect(LEFT, bottom, WIDTH, top - bottom)
    p.y = bottom


def draw_feedback(c: Canvas, feedback: Feedback | None) -> None:
    p = _Pages(c)
    _title(p, annex3.FEEDBACK_TITLE, "")
    p.y -= 6
    unit_text = (feedback.reporting_unit if feedback else "") + signature_text(feedback)
    unit = wrap(annex3.FEEDBACK_REPORTING_UNIT + unit_text, WIDTH, SIZE + 1)
    for line in unit:
        draw_text(c, LEFT, p.y - SIZE, line, SIZE + 1)
        p.y -= LEADING + 2
    p.y -= 10
    c.setLineWidth(0.6)
    _feedback_rows(p, feedback)
    note = wrap(annex3.FEEDBACK_NOTE, WIDTH, SIZE)
    _feedback_body(p, feedback, note)
    multiline(c, LEFT, p.y - 4 - SIZE, note, SIZE, LEADING)


def render_feedback(feedback: Feedback | None = None) -> bytes:
    """附件4 as A4 PDF; `feedback=None` renders the blank printable form."""
    buf = io.BytesIO()
    c = new_canvas(buf, A4, title=annex3.FEEDBACK_TITLE)
    draw_feedback(c, feedback)
    c.showPage()
    c.save()
    return buf.getvalue()
