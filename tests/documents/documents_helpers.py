"""Read-back helpers for the documents tests: sample data, PDF inspection with pypdf/pdfplumber, PNG via
pdftoppm."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
from pathlib import Path

import pdfplumber
import pypdf
from PIL import Image, ImageDraw

from services.documents.domain import annex3
from services.documents.domain.model import (
    Badge,
    ChecklistAnswer,
    DistrictReport,
    Feedback,
    ItemCount,
    LateSubmission,
    SupervisionRecord,
)

PT_PER_MM = 72 / 25.4


def photo_bytes(colour=(70, 130, 200)) -> bytes:
    im = Image.new("RGB", (300, 420), colour)
    d = ImageDraw.Draw(im)
    d.ellipse((90, 60, 210, 200), fill=(240, 200, 170))
    d.rectangle((60, 230, 240, 420), fill=(30, 30, 60))
    b = io.BytesIO()
    im.save(b, "JPEG")
    return b.getvalue()


def seal_bytes() -> bytes:
    im = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.ellipse((10, 10, 390, 390), outline=(220, 30, 30, 200), width=18)
    d.regular_polygon((200, 200, 60), 5, fill=(220, 30, 30, 200))
    b = io.BytesIO()
    im.save(b, "PNG")
    return b.getvalue()


def sample_badge(**kw) -> Badge:
    base = dict(
        code="R1122A001",
        holder_name="张三",
        valid_from="2022-06",
        valid_until="2025-06",
        issuer="agencies/A",
        issuer_name="北京市职业技能鉴定管理中心",
        photo=photo_bytes(),
        issuer_seal=seal_bytes(),
        issuer_logo=seal_bytes(),
    )
    base.update(kw)
    return Badge(**base)


def internal_badge(**kw) -> Badge:
    base = dict(
        code="Y112001220001",
        holder_name="李四",
        valid_from="2022-06",
        valid_until="2025-06",
        issuer="institutions/1100012001",
        issuer_name="北京某某电力设备有限公司",
    )
    base.update(kw)
    return Badge(**base)


NO_ITEMS = {4: "评价人数与计划不符，计划30人实到27人", 12: "两名考务人员未佩戴工作证卡"}


def sample_record(kind=annex3.ChecklistKind.ON_SITE, no_items=None, **kw) -> SupervisionRecord:
    no_items = NO_ITEMS if no_items is None else no_items
    checklist = annex3.CHECKLISTS[kind]
    answers = tuple(ChecklistAnswer(n, n not in no_items, no_items.get(n, "")) for n in checklist.numbers)
    base = dict(
        name="records/17",
        kind=kind,
        institution_name="北京市海淀区某某职业技能培训学校",
        plan_name="2026年第3期电工（四级）职业技能等级认定",
        assessment_method="理论知识考试、技能操作考核",
        answers=answers,
        problems="1. 评价人数与计划不符；2. 部分考务人员未佩戴工作证卡。",
        supervisor_names=("李四", "王五"),
        signed_date=dt.date(2026, 3, 5),
        institution_head_name="赵六",
    )
    base.update(kw)
    return SupervisionRecord(**base)


def sample_feedback(**kw) -> Feedback:
    tz = dt.timezone(dt.timedelta(hours=8))
    base = dict(
        name="feedback/5",
        reporting_unit="北京市海淀区某某职业技能培训学校",
        supervisor_name="李四",
        entry_time=dt.datetime(2026, 3, 5, 8, 30, tzinfo=tz),
        exit_time=dt.datetime(2026, 3, 5, 17, 10, tzinfo=tz),
        badge_worn=True,
        duties_performed=True,
        integrity_kept=False,
        comments="督导员工作认真。",
    )
    base.update(kw)
    return Feedback(**base)


def sample_report(**kw) -> DistrictReport:
    K = annex3.ChecklistKind
    base = dict(
        name="reports/08/2026-03-1",
        district_code="08",
        district_name="海淀区",
        period_start=dt.date(2026, 3, 1),
        period_end=dt.date(2026, 3, 15),
        on_site_count=12,
        records_review_count=5,
        non_compliant_counts=(
            ItemCount(K.ON_SITE, 4, 3),
            ItemCount(K.ON_SITE, 12, 5),
            ItemCount(K.RECORDS_REVIEW, 12, 2),
        ),
        late_submissions=(
            LateSubmission("records/9", "北京市海淀区某某职业技能培训学校", dt.date(2026, 3, 9), dt.date(2026, 3, 11)),
        ),
        cases_opened=2,
        cases_decided=1,
        report_date=dt.date(2026, 3, 16),
    )
    base.update(kw)
    return DistrictReport(**base)


def page_sizes_mm(pdf: bytes) -> list[tuple[float, float]]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return [
        (round(float(p.mediabox.width) / PT_PER_MM, 2), round(float(p.mediabox.height) / PT_PER_MM, 2))
        for p in reader.pages
    ]


def fonts(pdf: bytes) -> list[dict]:
    """Every font resource: base name, subtype, whether a font file is embedded."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    out: dict[str, dict] = {}
    for page in reader.pages:
        res = page.get("/Resources", {})
        for obj in list(res.get("/Font", {}).values()):
            f = obj.get_object()
            desc = f.get("/FontDescriptor")
            if desc is None and "/DescendantFonts" in f:
                desc = f["/DescendantFonts"][0].get_object().get("/FontDescriptor")
            desc = desc.get_object() if desc is not None else {}
            embedded = any(k in desc for k in ("/FontFile", "/FontFile2", "/FontFile3"))
            out[str(f["/BaseFont"])] = {
                "name": str(f["/BaseFont"]),
                "subtype": str(f["/Subtype"]),
                "embedded": embedded,
            }
    return list(out.values())


def plumber(pdf: bytes) -> pdfplumber.PDF:
    return pdfplumber.open(io.BytesIO(pdf))


def lines_of(page) -> list[tuple[float, str]]:
    """Text lines as (baseline y in PDF points from the bottom, text) built from the chars' matrices."""
    rows: dict[float, list] = {}
    for ch in page.chars:
        y = round(ch["matrix"][5], 1)
        rows.setdefault(y, []).append(ch)
    return [
        (y, "".join(c["text"] for c in sorted(chs, key=lambda c: c["x0"])))
        for y, chs in sorted(rows.items(), reverse=True)
    ]


def chars_of(page, text: str) -> list[dict]:
    """The chars of the first occurrence of `text` in reading order of page.chars."""
    chars = page.chars
    s = "".join(c["text"] for c in chars)
    i = s.find(text)
    assert i >= 0, f"{text!r} not on page"
    return chars[i : i + len(text)]


def png_pages(pdf: bytes, tmp_path: Path, dpi: int = 100) -> list[Image.Image]:
    src = tmp_path / "doc.pdf"
    src.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), str(src), str(tmp_path / "page")], check=True)
    return [Image.open(p).convert("L") for p in sorted(tmp_path.glob("page-*.png"))]


def ink_ratio(im: Image.Image) -> float:
    """Share of pixels that are not near-white."""
    hist = im.histogram()
    return sum(hist[:200]) / (im.width * im.height)


def shown_text_modes(pdf: bytes, page_index: int) -> list[tuple[float, int]]:
    """(font size, text render mode) for every text-showing operator on a page (mode 2 = fill+stroke),
    including the text inside the form XObjects the page places (shared badge artwork)."""
    from pypdf.generic import ContentStream

    reader = pypdf.PdfReader(io.BytesIO(pdf))
    page = reader.pages[page_index]
    out: list[tuple[float, int]] = []

    def walk(ops, resources) -> None:
        mode, size = 0, 0.0
        for operands, op in ops:
            if op == b"Tr":
                mode = int(operands[0])
            elif op == b"Tf":
                size = float(operands[1])
            elif op in (b"Tj", b"TJ", b"'", b'"'):
                out.append((size, mode))
            elif op == b"BT":
                mode = 0
            elif op == b"Do":
                xobject = resources["/XObject"][operands[0]].get_object()
                if xobject["/Subtype"] == "/Form":
                    walk(ContentStream(xobject, reader).operations, xobject.get("/Resources", resources))

    walk(ContentStream(page.get_contents(), reader).operations, page["/Resources"])
    return out
