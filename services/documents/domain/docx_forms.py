"""Editable DOCX of Annex 3 (both checklists) and Annex 4, rendered with docxtpl from templates kept in
the repo (`templates/*.docx`), so an office clerk can open and correct them in Word or WPS.

The templates are *built* from the one checklist declaration (`annex3`) by `build_templates()`
(`python -m services.documents.domain.docx_forms` rewrites them); a test checks they still carry every
item. Fonts (library-notes §4.2): Normal is 宋体 and titles 黑体 through `w:eastAsia`, with the
`w:eastAsiaTheme` attributes removed (they would override the explicit face); ☐/☑ runs use
Segoe UI Symbol (the CJK faces have no such glyphs; LibreOffice falls back to DejaVu Sans).
User data is rendered with `autoescape=True` (an `&` or `<` in a name would otherwise corrupt the XML).
Output is made deterministic by rewriting the zip with fixed timestamps.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

from docx import Document
from docx.document import Document as DocxDocument  # the class; docx.Document is its factory
from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT, WD_ROW_HEIGHT_RULE, WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Mm, Pt
from docxtpl import DocxTemplate

from services.documents.domain import annex3
from services.documents.domain.annex3 import Checklist, ChecklistKind
from services.documents.domain.forms import cn_date, cn_datetime, signature_text
from services.documents.domain.model import Feedback, SupervisionRecord

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_FILES = {
    ChecklistKind.ON_SITE: TEMPLATES / "annex3_on_site.docx",
    ChecklistKind.RECORDS_REVIEW: TEMPLATES / "annex3_records_review.docx",
    "feedback": TEMPLATES / "annex4_feedback.docx",
}
BODY_FONT = "宋体"
TITLE_FONT = "黑体"
LATIN_FONT = "Times New Roman"
SYMBOL_FONT = "Segoe UI Symbol"
BOX = "☐"
TICKED = "☑"


# ----------------------------------------------------------------------------------- template build


def _set_fonts(rpr, east_asia: str, latin: str) -> None:
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.insert(0, fonts)
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(attr), None)
    fonts.set(qn("w:ascii"), latin)
    fonts.set(qn("w:hAnsi"), latin)
    fonts.set(qn("w:eastAsia"), east_asia)
    fonts.set(qn("w:hint"), "eastAsia")


def _run(
    paragraph, text: str, *, size: float = 10.5, bold: bool = False, east_asia: str = BODY_FONT, latin: str = LATIN_FONT
):
    run = paragraph.add_run(text)
    run.font.size = Pt(size)
    run.font.bold = bold
    _set_fonts(run._element.get_or_add_rPr(), east_asia, latin)
    return run


def _new_document() -> DocxDocument:
    doc = Document()
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)  # python-docx defaults to US Letter
    section.left_margin = section.right_margin = Mm(18)
    section.top_margin = section.bottom_margin = Mm(15)
    # docDefaults carry eastAsiaTheme=minorEastAsia, which overrides an explicit face: drop it.
    for fonts in doc.styles.element.iter(qn("w:rFonts")):
        for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
            fonts.attrib.pop(qn(attr), None)
    for name in ("Normal", "Table Grid"):
        style = doc.styles[name]
        _set_fonts(style.element.get_or_add_rPr(), BODY_FONT, LATIN_FONT)
    doc.styles["Normal"].font.size = Pt(10.5)
    core = doc.core_properties
    core.author = "bjsv documents"
    core.created = core.modified = dt.datetime(2022, 7, 28)
    return doc


def _para(
    cell_or_doc,
    text: str = "",
    *,
    align=None,
    size: float = 10.5,
    bold: bool = False,
    east_asia: str = BODY_FONT,
    first: bool = True,
):
    if (
        hasattr(cell_or_doc, "paragraphs")
        and first
        and cell_or_doc.paragraphs
        and not cell_or_doc.paragraphs[0].text
        and hasattr(cell_or_doc, "vertical_alignment")
    ):
        p = cell_or_doc.paragraphs[0]
    else:
        p = cell_or_doc.add_paragraph()
    if align is not None:
        p.alignment = align
    p.paragraph_format.space_after = Pt(0)
    p.paragraph_format.space_before = Pt(0)
    if text:
        _run(p, text, size=size, bold=bold, east_asia=east_asia)
    return p


def _title(doc, title: str, subtitle: str) -> None:
    _para(doc, title, align=WD_ALIGN_PARAGRAPH.CENTER, size=16, bold=True, east_asia=TITLE_FONT)
    if subtitle:
        _para(doc, subtitle, align=WD_ALIGN_PARAGRAPH.CENTER, size=12)
    _para(doc, "")


def _fix_widths(table, widths) -> None:
    """Column widths that Word *and* LibreOffice honour: a fixed layout, the grid columns and every cell's
    tcW (python-docx sets only tcW, which LibreOffice ignores in favour of the grid)."""
    tbl = table._tbl
    tbl_pr = tbl.tblPr
    layout = tbl_pr.find(qn("w:tblLayout"))
    if layout is None:
        layout = tbl_pr.makeelement(qn("w:tblLayout"), {})
        tbl_pr.append(layout)
    layout.set(qn("w:type"), "fixed")
    width = tbl_pr.find(qn("w:tblW"))
    if width is None:
        width = tbl_pr.makeelement(qn("w:tblW"), {})
        tbl_pr.append(width)
    width.set(qn("w:type"), "dxa")
    width.set(qn("w:w"), str(sum(w.twips for w in widths)))
    for col, w in zip(tbl.tblGrid.findall(qn("w:gridCol")), widths, strict=True):
        col.set(qn("w:w"), str(w.twips))
    for row in table.rows:
        for i, w in enumerate(widths):
            row.cells[i].width = w


def _check_cell(cell, placeholder: str, word: str) -> None:
    p = _para(cell, align=WD_ALIGN_PARAGRAPH.CENTER)
    _run(p, placeholder, size=11, east_asia=SYMBOL_FONT, latin=SYMBOL_FONT)
    _run(p, word)
    cell.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.CENTER


def _label(cell, text: str, *, align=WD_ALIGN_PARAGRAPH.CENTER) -> None:
    _para(cell, text, align=align)
    cell.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.CENTER


def _build_record_template(checklist: Checklist) -> DocxDocument:
    doc = _new_document()
    _title(doc, annex3.FORM_TITLE, checklist.subtitle)
    # columns: section | subsection | content | 是 | 否 | 备注 (mm)
    widths = [Mm(15), Mm(15), Mm(92), Mm(13), Mm(13), Mm(26)]
    n_items = len(checklist.items)
    table = doc.add_table(rows=3 + n_items + 2, cols=6)
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    _fix_widths(table, widths)
    rows = table.rows
    # header rows
    _label(rows[0].cells[0].merge(rows[0].cells[1]), annex3.HEADER_INSTITUTION)
    _label(rows[0].cells[2].merge(rows[0].cells[5]), "{{ institution_name }}", align=None)
    _label(rows[1].cells[0].merge(rows[1].cells[1]), annex3.HEADER_PLAN)
    _label(rows[1].cells[2], "{{ plan_name }}", align=None)
    _label(rows[1].cells[3].merge(rows[1].cells[4]), annex3.HEADER_METHOD)
    _label(rows[1].cells[5], "{{ assessment_method }}", align=None)
    _label(rows[2].cells[0].merge(rows[2].cells[2]), annex3.COLUMN_CONTENT)
    _label(rows[2].cells[3].merge(rows[2].cells[4]), annex3.COLUMN_RESULT)
    _label(rows[2].cells[5], annex3.COLUMN_REMARK)
    first = 3
    for item in checklist.items:
        r = rows[first + item.number - 1]
        _label(r.cells[2], item.numbered_text, align=WD_ALIGN_PARAGRAPH.LEFT)
        _check_cell(r.cells[3], f"{{{{ yes_{item.number} }}}}", annex3.YES)
        _check_cell(r.cells[4], f"{{{{ no_{item.number} }}}}", annex3.NO)
        _label(r.cells[5], f"{{{{ remark_{item.number} }}}}", align=WD_ALIGN_PARAGRAPH.LEFT)
    for _, group in annex3.groups(checklist.items, "section"):
        a, b = first + group[0].number - 1, first + group[-1].number - 1
        if not group[0].subsection:
            cell = rows[a].cells[0].merge(rows[b].cells[1])
        else:
            cell = rows[a].cells[0].merge(rows[b].cells[0])
        _label(cell, group[0].section)
    for _, group in annex3.groups(checklist.items, "subsection"):
        if not group[0].subsection:
            continue
        a, b = first + group[0].number - 1, first + group[-1].number - 1
        _label(rows[a].cells[1].merge(rows[b].cells[1]), group[0].subsection)
    op1, op2 = rows[first + n_items], rows[first + n_items + 1]
    _opinion_rows(op1, op2)
    # comfortable heights for handwriting on the printed blank form (at least; text may grow a row)
    for i, row in enumerate(rows):
        row.height_rule = WD_ROW_HEIGHT_RULE.AT_LEAST
        row.height = Mm(9) if i < 2 else Mm(7) if i == 2 else Mm(8)
    op1.height, op2.height = Mm(24), Mm(10)
    for note in annex3.NOTES:
        _para(doc, note, size=9)
    return doc


def _opinion_rows(op1, op2) -> None:
    """The opinion block: 意见 | 存在问题 … / signatures and date."""
    _label(op1.cells[0].merge(op2.cells[1]), annex3.FOOTER_OPINION)
    problems = op1.cells[2].merge(op1.cells[5])
    p = _para(problems)
    _run(p, annex3.FOOTER_PROBLEMS)
    _run(p, "{{ problems }}")
    _para(problems, "")
    sign = op2.cells[2].merge(op2.cells[5])
    p = _para(sign)
    _run(p, annex3.FOOTER_SUPERVISOR_SIGNATURE)
    _run(p, "{{ supervisor_names }}")
    _run(p, "　　　　{{ signed_date }}　　　　")
    _run(p, annex3.FOOTER_HEAD_SIGNATURE)
    _run(p, "{{ institution_head_name }}")


def _build_feedback_template() -> DocxDocument:
    """附件4 word for word, the signer and date in the 填报单位（盖章/签字） slot, the project's structured answers
    marked as an addition under the free text, and the note (forms.py, Annex 4)."""
    doc = _new_document()
    _title(doc, annex3.FEEDBACK_TITLE, "")
    p = _para(doc)
    _run(p, annex3.FEEDBACK_REPORTING_UNIT, size=11)
    _run(p, "{{ reporting_unit }}{{ signature }}", size=11)
    _para(doc, "")
    table = doc.add_table(rows=3, cols=4)
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    _fix_widths(table, [Mm(32), Mm(55), Mm(32), Mm(55)])
    r0, r1, r2 = table.rows
    for row, height in ((r0, Mm(12)), (r1, Mm(12)), (r2, Mm(150))):
        row.height_rule = WD_ROW_HEIGHT_RULE.AT_LEAST
        row.height = height
    _label(r0.cells[0], annex3.FEEDBACK_SUPERVISOR_NAME)
    _label(r0.cells[1].merge(r0.cells[3]), "{{ supervisor_name }}", align=None)
    _label(r1.cells[0], annex3.FEEDBACK_ENTRY_TIME)
    _label(r1.cells[1], "{{ entry_time }}", align=None)
    _label(r1.cells[2], annex3.FEEDBACK_EXIT_TIME)
    _label(r1.cells[3], "{{ exit_time }}", align=None)
    body = r2.cells[0].merge(r2.cells[3])
    _para(body, annex3.FEEDBACK_SITUATION, size=11)
    _para(body, "{{ comments }}", first=False)
    _para(body, "", first=False)
    _para(body, annex3.FEEDBACK_ADDITIONS_HEADING, size=9, first=False)
    for i, (key, question) in enumerate(annex3.FEEDBACK_QUESTIONS, start=1):
        p = _para(body, first=False)
        _run(p, f"{i}. {question}　　")
        _run(p, f"{{{{ {key}_yes }}}}", size=11, east_asia=SYMBOL_FONT, latin=SYMBOL_FONT)
        _run(p, annex3.YES + "　")
        _run(p, f"{{{{ {key}_no }}}}", size=11, east_asia=SYMBOL_FONT, latin=SYMBOL_FONT)
        _run(p, annex3.NO)
    _para(doc, annex3.FEEDBACK_NOTE, size=10.5)
    return doc


def build_templates(directory: Path = TEMPLATES) -> list[Path]:
    """(Re)build the three templates from `annex3`. Run after changing the checklist declaration."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for kind in (ChecklistKind.ON_SITE, ChecklistKind.RECORDS_REVIEW):
        path = directory / TEMPLATE_FILES[kind].name
        _save_deterministic(_build_record_template(annex3.CHECKLISTS[kind]), path)
        out.append(path)
    path = directory / TEMPLATE_FILES["feedback"].name
    _save_deterministic(_build_feedback_template(), path)
    out.append(path)
    return out


# ------------------------------------------------------------------------------------------ render


def _fixed_zip(data: bytes) -> bytes:
    """Rewrite a .docx with fixed entry timestamps and order, so equal input gives equal bytes."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, src.read(info.filename))
    return out.getvalue()


def _save_deterministic(doc, path: Path) -> None:
    buf = io.BytesIO()
    doc.save(buf)
    path.write_bytes(_fixed_zip(buf.getvalue()))


def _render(template: Path, context: dict[str, str]) -> bytes:
    tpl = DocxTemplate(str(template))
    tpl.render(context, autoescape=True)
    buf = io.BytesIO()
    tpl.save(buf)
    return _fixed_zip(buf.getvalue())


def record_context(checklist: Checklist, record: SupervisionRecord | None) -> dict[str, str]:
    ctx: dict[str, str] = {
        "institution_name": record.institution_name if record else "",
        "plan_name": record.plan_name if record else "",
        "assessment_method": record.assessment_method if record else "",
        "problems": record.problems if record else "",
        "supervisor_names": "、".join(record.supervisor_names) if record else "",
        "signed_date": cn_date(record.signed_date) if record else annex3.FOOTER_DATE,
        "institution_head_name": record.institution_head_name if record else "",
    }
    for n in checklist.numbers:
        answer = record.answer(n) if record else None
        ctx[f"yes_{n}"] = TICKED if answer and answer.compliant else BOX
        ctx[f"no_{n}"] = TICKED if answer and not answer.compliant else BOX
        ctx[f"remark_{n}"] = answer.remark if answer else ""
    return ctx


def render_record_docx(checklist: Checklist, record: SupervisionRecord | None = None) -> bytes:
    """附件3 as editable DOCX; `record=None` gives the blank form."""
    return _render(TEMPLATE_FILES[checklist.kind], record_context(checklist, record))


def feedback_context(feedback: Feedback | None) -> dict[str, str]:
    ctx = {
        "reporting_unit": feedback.reporting_unit if feedback else "",
        "supervisor_name": feedback.supervisor_name if feedback else "",
        "entry_time": cn_datetime(feedback.entry_time) if feedback else "",
        "exit_time": cn_datetime(feedback.exit_time) if feedback else "",
        "comments": feedback.comments if feedback else "",
        "signature": signature_text(feedback),
    }
    for key, _ in annex3.FEEDBACK_QUESTIONS:
        value = getattr(feedback, key) if feedback else None
        ctx[f"{key}_yes"] = TICKED if value is True else BOX
        ctx[f"{key}_no"] = TICKED if value is False else BOX
    return ctx


def render_feedback_docx(feedback: Feedback | None = None) -> bytes:
    """附件4 as editable DOCX; `feedback=None` gives the blank form."""
    return _render(TEMPLATE_FILES["feedback"], feedback_context(feedback))


if __name__ == "__main__":
    for p in build_templates():
        print(p)
