"""Annex 3 and Annex 4 PDFs read back: items with exact text and numbering, ticks from the record, header,
remarks, signatures, notes; blank versions; A4; fonts."""

from __future__ import annotations

import pytest
from documents_helpers import (
    NO_ITEMS,
    fonts,
    ink_ratio,
    lines_of,
    page_sizes_mm,
    plumber,
    png_pages,
    sample_feedback,
    sample_record,
)

from services.documents.domain import annex3, forms
from services.documents.domain.annex3 import ChecklistKind

KINDS = [ChecklistKind.ON_SITE, ChecklistKind.RECORDS_REVIEW]


def content_column_text(pdf) -> str:
    """The 督导内容 column of every page, joined without line breaks."""
    out = []
    for page in pdf.pages:
        crop = page.crop((forms.COL_CONTENT, 0, forms.COL_YES, page.height))
        out.append((crop.extract_text() or "").replace("\n", ""))
    return "".join(out)


def item_rows(page) -> dict[int, float]:
    """Item number → baseline of its first line, from the chars at the content column's left edge."""
    rows = {}
    for y, text in lines_of(page.crop((forms.COL_CONTENT, 0, forms.COL_YES, page.height))):
        head = text.split(".", 1)[0]
        if head.isdigit() and text[len(head) : len(head) + 2] == ". ":
            rows[int(head)] = y
    return rows


def box_state(page, y_first_line: float, y_next: float | None) -> tuple[str, str]:
    """The ☐/☑ glyphs in the 是 and 否 columns of an item's row."""
    lo = (y_next if y_next is not None else 0) + 1
    found = {}
    for ch in page.chars:
        if ch["text"] in (forms.BOX, forms.TICKED) and lo <= ch["matrix"][5] <= y_first_line + 10:
            col = "yes" if ch["x0"] < forms.COL_NO else "no"
            found[col] = ch["text"]
    return found["yes"], found["no"]


@pytest.mark.parametrize("kind", KINDS)
def test_all_items_appear_with_exact_text_and_numbering_in_order_annex3(kind):
    checklist = annex3.CHECKLISTS[kind]
    pdf = plumber(forms.render_record(checklist, sample_record(kind)))
    column = content_column_text(pdf)
    pos = 0
    for item in checklist.items:
        i = column.find(item.numbered_text, pos)
        assert i >= 0, item.numbered_text
        pos = i + len(item.numbered_text)
    assert f"{len(checklist.items) + 1}. " not in column


@pytest.mark.parametrize("kind", KINDS)
def test_ticked_boxes_match_the_record_and_remarks_sit_in_the_remark_column_annex3(kind):
    checklist = annex3.CHECKLISTS[kind]
    pdf = plumber(forms.render_record(checklist, sample_record(kind)))
    assert len(pdf.pages) == 1, "a normal record fits one A4 page"
    page = pdf.pages[0]
    rows = item_rows(page)
    assert sorted(rows) == list(checklist.numbers)
    for n in checklist.numbers:
        yes, no = box_state(page, rows[n], rows.get(n + 1))
        if n in NO_ITEMS:
            assert (yes, no) == (forms.BOX, forms.TICKED), n
        else:
            assert (yes, no) == (forms.TICKED, forms.BOX), n
    remarks = page.crop((forms.COL_REMARK, 0, forms.COL_END, page.height)).extract_text().replace("\n", "")
    for text in NO_ITEMS.values():
        assert text in remarks
    # DejaVu only for the boxes; all fonts embedded subsets, no Helvetica
    fs = fonts(forms.render_record(checklist, sample_record(kind)))
    assert all(f["embedded"] for f in fs) and not any("Helvetica" in f["name"] for f in fs)
    assert {f["name"].split("+")[1] for f in fs} == {"WenQuanYiZenHei-0", "DejaVuSans"}


@pytest.mark.parametrize("kind", KINDS)
def test_header_footer_signatures_and_both_notes_are_printed_annex3(kind):
    checklist = annex3.CHECKLISTS[kind]
    pdf_bytes = forms.render_record(checklist, sample_record(kind))
    assert page_sizes_mm(pdf_bytes) == [(210.0, 297.0)]
    text = "\n".join(t for _, t in lines_of(plumber(pdf_bytes).pages[0]))
    for expected in (
        annex3.FORM_TITLE,
        checklist.subtitle,
        "被督导评价机构北京市海淀区某某职业技能培训学校",
        "评价计划名称2026年第3期电工（四级）职业技能等级认定",
        "认定形式",
        "督导内容",
        "督导结果",
        "备注",
        "存在问题：1. 评价人数与计划不符；2. 部分考务人员未佩戴工作证卡。",
        "外督员签名：李四、王五",
        "2026年3月5日",
        "机构负责人签字：赵六",
        "意见",
    ):
        assert expected in text, expected
    flat = text.replace("\n", "")
    for note in annex3.NOTES:
        assert note.replace("　", "") in flat.replace("　", "")
    page = plumber(pdf_bytes).pages[0]
    sections = page.crop((forms.COL_SECTION, 0, forms.COL_SUBSECTION, page.height)).extract_text()
    subsections = page.crop((forms.COL_SUBSECTION, 0, forms.COL_CONTENT, page.height)).extract_text()
    for label, _group in annex3.groups(checklist.items, "section"):
        assert label[:3] in sections.replace("\n", "") or label in flat, label
    for label, group in annex3.groups(checklist.items, "subsection"):
        if group[0].subsection:
            assert group[0].subsection in subsections.replace("\n", ""), label
    assert "".join(lbl for lbl, g in annex3.groups(checklist.items, "section") if g[0].subsection) in sections.replace(
        "\n", ""
    ).replace(" ", "")


@pytest.mark.parametrize("kind", KINDS)
def test_blank_form_has_every_item_and_no_tick(kind, tmp_path):
    checklist = annex3.CHECKLISTS[kind]
    pdf_bytes = forms.render_record(checklist)
    pdf = plumber(pdf_bytes)
    column = content_column_text(pdf)
    assert all(item.numbered_text in column for item in checklist.items)
    chars = [c["text"] for p in pdf.pages for c in p.chars]
    assert forms.TICKED not in chars and chars.count(forms.BOX) == 2 * len(checklist.items)
    assert "年　　月　　日" in "".join(chars)
    (png,) = png_pages(pdf_bytes, tmp_path)
    assert ink_ratio(png) > 0.02


def test_long_remarks_continue_on_a_second_page_with_the_header_repeated():
    long = {n: "现场发现问题，详见附页说明。" * 6 for n in range(1, 18)}
    record = sample_record(no_items=long)
    pdf = plumber(forms.render_record(annex3.ON_SITE, record))
    assert len(pdf.pages) >= 2
    second = "".join(t for _, t in lines_of(pdf.pages[1]))
    assert "（续）" in second and "督导内容" in second
    column = content_column_text(pdf)
    assert all(item.numbered_text in column for item in annex3.ON_SITE.items)
    assert all(c["bottom"] <= p.height - forms.BOTTOM + 0.5 for p in pdf.pages for c in p.chars)


def test_same_record_renders_byte_identical_pdf():
    a = forms.render_record(annex3.ON_SITE, sample_record())
    assert a == forms.render_record(annex3.ON_SITE, sample_record())


def test_feedback_form_shows_values_and_ticks_from_the_structured_answers_annex4_d12():
    pdf_bytes = forms.render_feedback(sample_feedback())
    assert page_sizes_mm(pdf_bytes) == [(210.0, 297.0)]
    page = plumber(pdf_bytes).pages[0]
    lines = [t for _, t in lines_of(page)]
    text = "\n".join(lines)
    for expected in (
        annex3.FEEDBACK_TITLE,
        "填报单位（盖章/签字）：北京市海淀区某某职业技能培训学校",
        "外督员姓名李四",
        "2026年3月5日 08:302026年3月5日 17:10",
        "外督员进场时间外督员离场时间",
        "工作反馈情况：",
        "督导员工作认真。",
    ):
        assert expected in text, expected
    answers = {}
    for i, (_key, question) in enumerate(annex3.FEEDBACK_QUESTIONS, start=1):
        line = next(t for t in lines if t.startswith(f"{i}. {question}"))
        answers[i] = line[len(f"{i}. {question}") :]
    assert answers == {1: "☑是☐否", 2: "☑是☐否", 3: "☐是☑否"}


def test_blank_feedback_form_has_labels_and_no_tick():
    page = plumber(forms.render_feedback()).pages[0]
    chars = "".join(c["text"] for c in page.chars)
    assert annex3.FEEDBACK_ENTRY_TIME in chars and annex3.FEEDBACK_EXIT_TIME in chars
    assert forms.TICKED not in chars and chars.count(forms.BOX) == 6
