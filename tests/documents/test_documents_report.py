"""District half-month report PDF (第二十四条, D10) read back."""

import pytest
from documents_helpers import fonts, ink_ratio, lines_of, page_sizes_mm, plumber, png_pages, sample_report

from services.documents.domain import report as report_mod
from services.documents.domain.report import render_report


def test_report_shows_period_district_counts_late_submissions_and_cases_art24_d10(tmp_path):
    pdf_bytes = render_report(sample_report())
    assert all(size == (210.0, 297.0) for size in page_sizes_mm(pdf_bytes))
    pdf = plumber(pdf_bytes)
    text = "\n".join(t for p in pdf.pages for _, t in lines_of(p))
    for expected in (
        "海淀区职业技能等级认定质量督导情况半月报",
        "报告期：2026年3月1日—2026年3月15日",
        "报送单位：海淀区（区划代码 08）",
        "现场督导12",
        "事后认定材料督导5",
        "合计17",
        "（一）现场督导（共17项，“否”合计8次）",
        "4评价时间、评价人数及评价内容与评价计划一致3",
        "12现场工作人员全程佩带相应工作证卡5",
        "（二）事后认定材料督导（共16项，“否”合计2次）",
        "12被督导单位配合外督员人员工作2",
        "records/9北京市海淀区某某职业技能培训学校2026年3月9日2026年3月11日",
        "本期立案2",
        "本期作出处理决定1",
    ):
        assert expected in text, expected
    assert all(f["embedded"] for f in fonts(pdf_bytes))
    # bar chart: one filled bar per item with a non-zero count, lengths proportional to the counts
    bars = [
        r
        for p in pdf.pages
        for r in p.rects
        if r["non_stroking_color"]
        and tuple(round(v, 2) for v in r["non_stroking_color"]) == report_mod.BAR_COLOUR
        and r["fill"]
    ]
    assert len(bars) == 3
    widths = sorted(b["width"] for b in bars)  # on-site 3 and 5 (peak 5), records review 2 (its own peak)
    assert widths[0] / widths[2] == pytest.approx(3 / 5) and widths[1] == pytest.approx(widths[2])
    assert all(ink_ratio(im) > 0.01 for im in png_pages(pdf_bytes, tmp_path, dpi=50))


def test_empty_period_says_so():
    pdf = plumber(
        render_report(
            sample_report(
                non_compliant_counts=(),
                late_submissions=(),
                on_site_count=0,
                records_review_count=0,
                cases_opened=0,
                cases_decided=0,
            )
        )
    )
    text = "\n".join(t for p in pdf.pages for _, t in lines_of(p))
    assert "本期无“否”项。" in text and "本期无逾期提交。" in text


def test_report_is_deterministic():
    assert render_report(sample_report()) == render_report(sample_report())
