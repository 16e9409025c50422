"""Annex 3 and Annex 4 PDFs read back: items with exact text and numbering, ticks from the record, header,
remarks, signatures, notes; blank versions; A4; fonts."""

from __future__ import annotations

import datetime as dt

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


LAW_ANNEX4_NOTE = (
    "注：“反馈情况”请对外督员工作过程中是否佩戴督导员证卡、是否认真履行职责是否自觉遵守廉洁纪律等情况进行意见反馈。"
)


def annex4_text(pdf_bytes: bytes) -> tuple[list[list[str]], str]:
    """Lines of every page, and all text joined without line breaks (wrapped lines read as one), without
    the （续） header of continuation pages."""
    pages = [[t for _, t in lines_of(page)] for page in plumber(pdf_bytes).pages]
    return pages, "".join("".join(lines[1:] if n else lines) for n, lines in enumerate(pages))


def test_feedback_pdf_prints_annex4_form_note_signer_and_date_verbatim_annex4():
    """附件4: title, 填报单位（盖章/签字） with the signer and date, the table labels and the note word for word."""
    pdf_bytes = forms.render_feedback(sample_feedback(signed_by="王五", signed_date=dt.date(2026, 3, 6)))
    assert page_sizes_mm(pdf_bytes) == [(210.0, 297.0)]
    (lines,), joined = annex4_text(pdf_bytes)
    assert lines[0] == "北京市技能人才评价外督员情况反馈表"
    assert "填报单位（盖章/签字）：北京市海淀区某某职业技能培训学校（签字：王五　2026年3月6日）" in joined
    for expected in ("外督员姓名李四", "外督员进场时间外督员离场时间", "2026年3月5日 08:302026年3月5日 17:10"):
        assert expected in lines, expected
    assert "工作反馈情况：" in lines and "督导员工作认真。" in lines
    assert joined.endswith(LAW_ANNEX4_NOTE)


def test_feedback_pdf_marks_structured_answers_as_additions_in_the_laws_words_annex4_d12():
    (lines,), _ = annex4_text(forms.render_feedback(sample_feedback()))
    heading = lines.index(annex3.FEEDBACK_ADDITIONS_HEADING)
    assert "非附件4原文" in annex3.FEEDBACK_ADDITIONS_HEADING
    assert lines.index("督导员工作认真。") < heading  # the law's free text first, the additions after it
    answers = {line[:-4]: line[-4:] for line in lines[heading + 1 : heading + 4]}
    assert answers == {
        "1. 是否佩戴督导员证卡": "☑是☐否",
        "2. 是否认真履行职责": "☑是☐否",
        "3. 是否自觉遵守廉洁纪律": "☐是☑否",
    }


def test_long_feedback_text_continues_on_further_pages_and_is_never_cut_annex4():
    sentences = [f"第{i:04d}条意见：外督员按时到场并认真履行职责。" for i in range(400)]
    comments = "".join(sentences[:200]) + "\n" + "".join(sentences[200:])
    pages, joined = annex4_text(forms.render_feedback(sample_feedback(comments=comments)))
    assert len(pages) > 2
    assert all(s in joined for s in sentences)
    assert joined.index(sentences[-1]) < joined.index(annex3.FEEDBACK_ADDITIONS_HEADING)
    assert all(lines[0] == f"{annex3.FEEDBACK_TITLE}（续）" for lines in pages[1:])
    assert joined.count(LAW_ANNEX4_NOTE) == 1 and joined.endswith(LAW_ANNEX4_NOTE)


def test_blank_feedback_form_has_labels_note_and_no_tick_annex4():
    pdf_bytes = forms.render_feedback()
    chars = "".join(c["text"] for c in plumber(pdf_bytes).pages[0].chars)
    assert annex3.FEEDBACK_ENTRY_TIME in chars and annex3.FEEDBACK_EXIT_TIME in chars
    assert forms.TICKED not in chars and chars.count(forms.BOX) == 6
    assert annex4_text(pdf_bytes)[1].endswith(LAW_ANNEX4_NOTE)
