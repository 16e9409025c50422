"""Editable DOCX of Annex 3 and Annex 4 read back with python-docx: values, ticks, A4, East Asian fonts."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
import zipfile

import docx
import pytest
from documents_helpers import NO_ITEMS, fonts, lines_of, page_sizes_mm, plumber, sample_feedback, sample_record
from docx.oxml.ns import qn

from services.documents.domain import annex3, docx_forms
from services.documents.domain.annex3 import ChecklistKind

KINDS = [ChecklistKind.ON_SITE, ChecklistKind.RECORDS_REVIEW]


def open_docx(data: bytes):
    return docx.Document(io.BytesIO(data))


def unique_cells(row):
    out = []
    for cell in row.cells:
        if not out or out[-1] is not cell._tc:
            out.append(cell._tc)
    return [docx.table._Cell(tc, row).text for tc in out]


@pytest.mark.parametrize("kind", KINDS)
def test_record_docx_reads_back_values_items_and_ticks_annex3(kind):
    checklist = annex3.CHECKLISTS[kind]
    d = open_docx(docx_forms.render_record_docx(checklist, sample_record(kind)))
    assert [p.text for p in d.paragraphs[:2]] == [annex3.FORM_TITLE, checklist.subtitle]
    table = d.tables[0]
    rows = table.rows
    assert rows[0].cells[2].text == "北京市海淀区某某职业技能培训学校"
    assert rows[1].cells[2].text == "2026年第3期电工（四级）职业技能等级认定"
    assert rows[1].cells[5].text == "理论知识考试、技能操作考核"
    for item in checklist.items:
        r = rows[2 + item.number]
        assert r.cells[2].text == item.numbered_text
        assert r.cells[0].text == item.section
        if item.subsection:
            assert r.cells[1].text == item.subsection
        expected = ("☐是", "☑否") if item.number in NO_ITEMS else ("☑是", "☐否")
        assert (r.cells[3].text, r.cells[4].text) == expected, item.number
        assert r.cells[5].text == NO_ITEMS.get(item.number, "")
    footer = rows[3 + len(checklist.items)].cells[2].text
    assert footer.startswith("存在问题：1. 评价人数与计划不符")
    sign = rows[4 + len(checklist.items)].cells[2].text
    assert "外督员签名：李四、王五" in sign and "2026年3月5日" in sign and "机构负责人签字：赵六" in sign
    assert [p.text for p in d.paragraphs[-2:]] == list(annex3.NOTES)
    assert "{{" not in "".join(c.text for r in rows for c in r.cells)


@pytest.mark.parametrize("kind", KINDS)
def test_docx_is_a4_and_sets_east_asian_fonts_without_theme_overrides(kind):
    data = docx_forms.render_record_docx(annex3.CHECKLISTS[kind])
    d = open_docx(data)
    s = d.sections[0]
    assert round(s.page_width.mm) == 210 and round(s.page_height.mm) == 297
    normal = d.styles["Normal"].element.rPr.find(qn("w:rFonts"))
    assert normal.get(qn("w:eastAsia")) == "宋体"
    title_run = d.paragraphs[0].runs[0]._element.rPr.find(qn("w:rFonts"))
    assert title_run.get(qn("w:eastAsia")) == "黑体"
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/styles.xml").decode()
    assert "eastAsiaTheme" not in xml
    box_run = d.tables[0].rows[3].cells[3].paragraphs[0].runs[0]
    assert box_run.text == "☐"
    assert box_run._element.rPr.find(qn("w:rFonts")).get(qn("w:eastAsia")) == "Segoe UI Symbol"


def test_user_data_is_escaped_so_the_docx_stays_valid():
    record = sample_record(institution_name="王五 & <赵六> 培训中心")
    d = open_docx(docx_forms.render_record_docx(annex3.ON_SITE, record))
    assert d.tables[0].rows[0].cells[2].text == "王五 & <赵六> 培训中心"


def test_docx_output_is_deterministic():
    a = docx_forms.render_record_docx(annex3.ON_SITE, sample_record())
    assert a == docx_forms.render_record_docx(annex3.ON_SITE, sample_record())


def test_templates_in_the_repo_carry_every_checklist_item():
    for kind in KINDS:
        d = docx.Document(str(docx_forms.TEMPLATE_FILES[kind]))
        texts = {c.text for r in d.tables[0].rows for c in r.cells}
        for item in annex3.CHECKLISTS[kind].items:
            assert item.numbered_text in texts


LAW_ANNEX4_NOTE = (
    "注：“反馈情况”请对外督员工作过程中是否佩戴督导员证卡、是否认真履行职责是否自觉遵守廉洁纪律等情况进行意见反馈。"
)


def test_feedback_docx_prints_annex4_form_note_signer_date_and_marked_additions_annex4():
    fb = sample_feedback(signed_by="王五", signed_date=dt.date(2026, 3, 6), comments="第一段。\n第二段。")
    d = open_docx(docx_forms.render_feedback_docx(fb))
    texts = [p.text for p in d.paragraphs]
    assert texts[0] == annex3.FEEDBACK_TITLE
    assert "填报单位（盖章/签字）：北京市海淀区某某职业技能培训学校（签字：王五　2026年3月6日）" in texts
    assert texts[-1] == LAW_ANNEX4_NOTE  # the note, word for word, under the table
    r0, r1, r2 = d.tables[0].rows
    assert (r0.cells[0].text, r0.cells[1].text) == ("外督员姓名", "李四")
    assert [c.text for c in r1.cells] == [
        "外督员进场时间",
        "2026年3月5日 08:30",
        "外督员离场时间",
        "2026年3月5日 17:10",
    ]
    body = r2.cells[0].text.split("\n")
    assert body[:3] == ["工作反馈情况：", "第一段。", "第二段。"]  # the law's free text first, paragraphs kept
    heading = body.index(annex3.FEEDBACK_ADDITIONS_HEADING)
    assert "非附件4原文" in body[heading]
    assert body[heading + 1 :] == [
        "1. 是否佩戴督导员证卡　　☑是　☐否",
        "2. 是否认真履行职责　　☑是　☐否",
        "3. 是否自觉遵守廉洁纪律　　☐是　☑否",
    ]


def test_blank_feedback_docx_has_no_tick_and_keeps_the_note_annex4():
    d = open_docx(docx_forms.render_feedback_docx())
    body = d.tables[0].rows[2].cells[0].text
    assert "☑" not in body and body.count("☐") == 6
    assert d.paragraphs[-1].text == LAW_ANNEX4_NOTE


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (libreoffice-writer-nogui) not installed")
def test_docx_opens_in_libreoffice_on_one_a4_page_with_a_cjk_face(tmp_path):
    src = tmp_path / "onsite.docx"
    src.write_bytes(docx_forms.render_record_docx(annex3.ON_SITE, sample_record()))
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation=file://{tmp_path}/lo",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pdf = (tmp_path / "onsite.pdf").read_bytes()
    ((w, h),) = page_sizes_mm(pdf)
    assert (w, h) == (pytest.approx(210, abs=0.05), pytest.approx(297, abs=0.05))
    names = {f["name"].split("+")[-1] for f in fonts(pdf)}
    assert any("WenQuanYi" in n or "SimSun" in n or "Noto" in n for n in names), names
    text = "".join(t for _, t in lines_of(plumber(pdf).pages[0]))
    assert "北京市海淀区某某职业技能培训学校" in text and "☑" in text
