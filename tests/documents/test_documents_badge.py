"""Badge PDF per 附件2, read back: page size, fonts, text positions and sizes, photo box, seal, QR."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from documents_helpers import (
    PT_PER_MM,
    chars_of,
    fonts,
    ink_ratio,
    internal_badge,
    lines_of,
    page_sizes_mm,
    plumber,
    png_pages,
    sample_badge,
    shown_text_modes,
)

from services.documents.domain import badge as badge_mod
from services.documents.domain import signing
from services.documents.domain.badge import CARD_W, MARGIN, back_geometry, front_geometry, render_badge

KEY = signing.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def payload_for(b):
    return signing.badge_payload(
        code=b.code, holder_name=b.holder_name, validity=b.validity_text, issuer=b.issuer, key=KEY
    )


@pytest.fixture(scope="module")
def external_pdf() -> bytes:
    b = sample_badge()
    return render_badge(b, payload_for(b))


@pytest.fixture(scope="module")
def internal_pdf() -> bytes:
    b = internal_badge()
    return render_badge(b, payload_for(b))


def test_badge_is_two_pages_of_80_by_110_mm_annex2(external_pdf):
    assert page_sizes_mm(external_pdf) == [(80.0, 110.0), (80.0, 110.0)]


def test_badge_embeds_only_a_subset_cjk_font_and_no_helvetica(external_pdf, internal_pdf):
    for pdf in (external_pdf, internal_pdf):
        fs = fonts(pdf)
        assert fs, "no fonts found"
        for f in fs:
            assert f["embedded"], f
            assert f["name"][7:8] == "+" and f["name"][1:7].isalpha(), f"not a subset: {f}"
        assert not any("Helvetica" in f["name"] for f in fs)
        assert any("WenQuanYiZenHei" in f["name"] for f in fs)


def test_front_title_is_16pt_with_24pt_leading_and_synthetic_bold_annex2(external_pdf):
    page = plumber(external_pdf).pages[0]
    lines = dict((text, y) for y, text in lines_of(page))
    assert "技能人才评价" in lines and "质量督导员 (外督员)" in lines
    assert lines["技能人才评价"] - lines["质量督导员 (外督员)"] == pytest.approx(24, abs=0.05)
    for ch in chars_of(page, "技能人才评价"):
        assert ch["size"] == pytest.approx(16)
    # bold = fill + stroke (text render mode 2) on the 16 pt title only; the 12 pt body is plain
    modes = shown_text_modes(external_pdf, 0)
    assert {m for s, m in modes if s == 16} == {2}
    assert {m for s, m in modes if s == 12} == {0}
    back = shown_text_modes(external_pdf, 1)
    assert {m for s, m in back if s in (16, 12)} == {2}  # back title and the 印制 line are bold


def test_front_body_lines_are_12pt_with_22pt_leading_and_values_beside_labels_annex2(external_pdf):
    page = plumber(external_pdf).pages[0]
    g = front_geometry()
    found = {text: y for y, text in lines_of(page)}
    expected = ["姓　　名：张三", "证卡编号：R1122A001", "有效期限：2022.06-2025.06"]
    for i, text in enumerate(expected):
        assert found[text] == pytest.approx(g.body_baselines[i], abs=0.1), text
    for ch in chars_of(page, "R1122A001"):
        assert ch["size"] == pytest.approx(12)
    assert chars_of(page, "R1122A001")[0]["x0"] == pytest.approx(g.value_x, abs=0.1)
    assert chars_of(page, "证卡编号")[0]["x0"] == pytest.approx(MARGIN, abs=0.1)
    issuer = chars_of(page, "北京市职业技能鉴定管理中心")
    assert issuer[0]["matrix"][5] == pytest.approx(g.body_baselines[3], abs=0.1)
    assert issuer[-1]["x1"] <= CARD_W - MARGIN + 0.01
    assert found["颁证机构：北京市职业技能鉴定管理中心"] == pytest.approx(g.body_baselines[3], abs=0.1)
    assert 9 <= issuer[0]["size"] < 12  # shrunk to fit, not wrapped
    assert next(found[t] for t in expected) - [found[t] for t in expected][1] == pytest.approx(22)


def test_photo_fills_a_25_by_35_mm_box_and_seal_lies_over_issuer_line_annex2(external_pdf):
    page = plumber(external_pdf).pages[0]
    images = sorted(page.images, key=lambda im: -im["height"])
    photo, seal = images[0], images[1]
    assert photo["width"] / PT_PER_MM == pytest.approx(25, abs=0.01)
    assert photo["height"] / PT_PER_MM == pytest.approx(35, abs=0.01)
    issuer = chars_of(page, "北京市职业技能鉴定管理中心")
    mid_x = (issuer[0]["x0"] + issuer[-1]["x1"]) / 2
    assert seal["x0"] < mid_x < seal["x1"]
    assert seal["top"] < issuer[0]["top"] and seal["bottom"] > issuer[0]["bottom"]


def test_internal_badge_says_neidu_and_shows_clean_placeholders_without_images_annex2(internal_pdf):
    pdf = plumber(internal_pdf)
    front, back = pdf.pages
    assert "质量督导员 (内督员)" in [t for _, t in lines_of(front)]
    assert not front.images
    (qr,) = back.images  # the QR code is the back's only image (a 1-bit image mask): no logo placeholder image
    x, _, size, _ = back_geometry().qr_box
    assert qr["x0"] == pytest.approx(x + 2 * size / (qr["srcsize"][0] + 4), abs=0.01)
    texts = [t for _, t in lines_of(front)]
    assert "(机构公章)" in texts and "免冠1寸" in texts
    assert "颁证机构" in [t for _, t in lines_of(back)]


def test_back_has_title_printer_line_bold_12pt_and_the_code_annex2(external_pdf):
    back = plumber(external_pdf).pages[1]
    lines = {t: y for y, t in lines_of(back)}
    g = back_geometry()
    assert lines["技能人才评价"] - lines["质量督导员证卡"] == pytest.approx(24, abs=0.05)
    assert lines["北京市职业技能鉴定管理中心 印制"] == pytest.approx(g.printer_top_baseline, abs=0.1)
    for ch in chars_of(back, "印制"):
        assert ch["size"] == pytest.approx(12)
    assert "R1122A001" in lines


def test_long_name_shrinks_then_wraps_and_never_leaves_the_card():
    name = "阿卜杜热合曼·买买提明·艾力江·司马义"
    issuer = "北京市某某某某某某职业技能培训学校有限责任公司附属职业技能等级认定评价中心"
    b = sample_badge(holder_name=name, issuer_name=issuer)
    pdf = plumber(render_badge(b, payload_for(b)))
    for page in pdf.pages:
        for ch in page.chars:
            assert ch["x0"] >= MARGIN - 0.01 and ch["x1"] <= CARD_W - MARGIN + 0.01, ch["text"]
            assert ch["top"] >= 0 and ch["bottom"] <= page.height
    front_text = "".join(t for _, t in lines_of(pdf.pages[0]))
    assert name in front_text.replace("姓　　名：", "") or all(c in front_text for c in name)
    name_chars = [c for c in pdf.pages[0].chars if c["text"] in "阿卜杜热"]
    assert min(c["size"] for c in name_chars) >= 5.4  # 60 % of the 9 pt minimum at most
    assert len({round(c["matrix"][5]) for c in pdf.pages[1].chars if c["size"] < 12 and c["text"] != "R"}) >= 2


def test_shrink_rule_keeps_one_line_down_to_9pt_then_wraps():
    from services.documents.domain.pdfkit import fit_text, register_fonts, text_width

    register_fonts()
    short = fit_text("张三", 100, size=12, min_size=9, max_lines=2, height=24)
    assert short.size == 12 and short.lines == ("张三",)
    medium = fit_text("北京市职业技能鉴定管理中心", 130, size=12, min_size=9, max_lines=2, height=24)
    assert len(medium.lines) == 1 and 9 <= medium.size < 12
    assert text_width(medium.lines[0], medium.size) <= 130
    long = fit_text("北京市某某某某某职业技能培训学校有限责任公司", 120, size=12, min_size=9, max_lines=2, height=24)
    assert len(long.lines) == 2 and long.size <= 9
    assert "".join(long.lines) == "北京市某某某某某职业技能培训学校有限责任公司"


def test_qr_code_on_back_scans_back_to_the_signed_payload(external_pdf, tmp_path):
    """Render at 300 dpi, sample every module centre and compare with the QR matrix of the payload."""
    b = sample_badge()
    payload = payload_for(b)
    matrix = badge_mod.qr_matrix(payload)
    n = len(matrix)
    dpi = 300
    back = png_pages(external_pdf, tmp_path, dpi=dpi)[1]
    x, y, size, _ = back_geometry().qr_box
    px_per_pt = dpi / 72
    module = size / (n + 4)
    top_pt = badge_mod.CARD_H - (y + size)
    wrong = 0
    for r in range(n):
        for c in range(n):
            cx = (x + (c + 2.5) * module) * px_per_pt
            cy = (top_pt + (r + 2.5) * module) * px_per_pt
            dark = back.getpixel((round(cx), round(cy))) < 128
            wrong += dark != matrix[r][c]
    assert wrong == 0
    assert signing.verify_payload(payload, lambda i, k: KEY.public_key()).valid


def test_rendered_png_is_not_blank(external_pdf, tmp_path):
    front, back = png_pages(external_pdf, tmp_path)
    assert ink_ratio(front) > 0.05 and ink_ratio(back) > 0.03


def test_same_input_renders_byte_identical_pdf_across_processes(external_pdf):
    again = render_badge(sample_badge(), payload_for(sample_badge()))
    assert again == external_pdf
    code = (
        "import hashlib,sys;sys.path.insert(0,'tests/documents');"
        "from test_documents_badge import *;"
        "b=sample_badge();print(hashlib.sha256(render_badge(b,payload_for(b))).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == hashlib.sha256(external_pdf).hexdigest()


def test_qr_code_decodes_with_a_real_scanner(external_pdf, tmp_path):
    """zxing-cpp's reader on the back page rendered at 150 dpi gives back the signed payload."""
    import zxingcpp

    back = png_pages(external_pdf, tmp_path, dpi=150)[1]
    found = zxingcpp.read_barcodes(back, formats=zxingcpp.BarcodeFormat.QRCode)
    assert [code.text for code in found] == [payload_for(sample_badge())]
