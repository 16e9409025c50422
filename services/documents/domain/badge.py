"""Badge (附件2 技能人才评价质量督导员证卡): 80 × 110 mm, front and back.

Front: title 技能人才评价 / 质量督导员 (外督员|内督员) 16 pt 黑体 bold, 24 pt leading; colour 1-inch photo
box 25 × 35 mm; body 姓名 / 证卡编号 / 有效期限 / 颁证机构 12 pt 黑体, 22 pt leading; the issuer's seal over
the issuer line. Back: issuer logo; title 技能人才评价 / 质量督导员证卡 16 pt bold, 24 pt leading; a QR code
with the signed verification payload and the badge code; `××× 印制` 12 pt bold, 24 pt leading.

Long values follow `pdfkit.fit_text`: shrink to 9 pt on one line, then wrap (issuer up to 2 lines in the
body, 3 lines on the printer line), never beyond the card's safe margin.

`draw_front` / `draw_back` draw at an offset so the print-sheet imposition reuses them unchanged.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass

import zxingcpp
from PIL import Image
from reportlab.pdfgen.canvas import Canvas

from services.documents.domain import images
from services.documents.domain.model import Badge
from services.documents.domain.pdfkit import (
    CJK,
    MM,
    draw_fitted,
    draw_text,
    fit_text,
    new_canvas,
    text_width,
)

CARD_W = 80 * MM
CARD_H = 110 * MM
MARGIN = 7 * MM  # safe area: no text closer than this to the cut edge
PHOTO_W = 25 * MM
PHOTO_H = 35 * MM
SEAL_D = 24 * MM
LOGO_D = 22 * MM
QR_SIZE = 24 * MM
FORM_BLEED = 10 * MM  # forms may draw this far outside the card (crop marks)

TITLE_SIZE = 16
TITLE_LEADING = 24
BODY_SIZE = 12
BODY_LEADING = 22
PRINTER_SIZE = 12
PRINTER_LEADING = 24
MIN_SIZE = 9

TITLE_LINE_1 = "技能人才评价"
FRONT_TITLE_LINE_2 = "质量督导员 ({label})"
BACK_TITLE_LINE_2 = "质量督导员证卡"
LABELS = ("姓　　名：", "证卡编号：", "有效期限：", "颁证机构：")
PRINTER_SUFFIX = " 印制"
PHOTO_PLACEHOLDER = ("免冠1寸", "照片")
SEAL_PLACEHOLDER = "(机构公章)"
LOGO_PLACEHOLDER = ("颁证机构", "(logo)")

GREY = (0.6, 0.6, 0.6)


@dataclass(frozen=True, slots=True)
class FrontGeometry:
    """Positions relative to the card's lower-left corner (points); tests read them back."""

    title_baselines: tuple[float, float]
    photo_box: tuple[float, float, float, float]  # x, y, w, h
    body_baselines: tuple[float, ...]
    label_x: float
    value_x: float
    value_width: float


def front_geometry() -> FrontGeometry:
    t1 = CARD_H - 9 * MM - TITLE_SIZE * 0.88
    t2 = t1 - TITLE_LEADING
    photo_top = t2 - 4 * MM
    photo_y = photo_top - PHOTO_H
    b1 = photo_y - BODY_LEADING
    body = tuple(b1 - i * BODY_LEADING for i in range(4))
    label_x = MARGIN
    value_x = MARGIN + text_width(LABELS[0], BODY_SIZE)
    return FrontGeometry(
        (t1, t2), ((CARD_W - PHOTO_W) / 2, photo_y, PHOTO_W, PHOTO_H), body, label_x, value_x, CARD_W - MARGIN - value_x
    )


def draw_front(c: Canvas, badge: Badge, ox: float = 0.0, oy: float = 0.0) -> None:
    g = front_geometry()
    category = badge.resolved_category
    place_form(c, f"BJSVFront{category.name}", ox, oy, lambda: _front_artwork(c, g, category.label))
    cx = ox + CARD_W / 2
    px, py, pw, ph = g.photo_box
    if badge.photo:
        _draw_photo(c, badge.photo, ox + px, oy + py, pw, ph)
    else:
        c.saveState()
        c.setStrokeColorRGB(*GREY)
        c.setLineWidth(0.5)
        c.rect(ox + px, oy + py, pw, ph, stroke=1, fill=0)
        c.restoreState()
        mid = oy + py + ph / 2
        draw_text(c, cx, mid + 3, PHOTO_PLACEHOLDER[0], 9, anchor="centre", color=GREY)
        draw_text(c, cx, mid - 9, PHOTO_PLACEHOLDER[1], 9, anchor="centre", color=GREY)

    values = (badge.holder_name, badge.code, badge.validity_text, badge.issuer_name)
    for i, value in enumerate(values):
        y = oy + g.body_baselines[i]
        last = i == len(values) - 1
        fitted = fit_text(
            value,
            g.value_width,
            size=BODY_SIZE,
            min_size=MIN_SIZE,
            max_lines=2,
            height=BODY_LEADING if not last else 2 * BODY_SIZE,
        )
        if len(fitted.lines) > 1 and not last:
            # two lines share the 22 pt slot, centred on it
            top = y + fitted.leading / 2
        else:
            top = y
        draw_fitted(c, ox + g.value_x, top, fitted)
    # The seal is stamped over the issuer line (附件2 (机构公章)); drawn last so it lies on top.
    seal_centre = (g.value_x + g.value_width / 2, g.body_baselines[-1] + BODY_SIZE * 0.35)
    place_form(c, f"BJSVSeal{_digest(badge.issuer_seal)}", ox, oy, lambda: _draw_seal(c, badge, *seal_centre))


def place_form(c: Canvas, name: str, ox: float, oy: float, draw: Callable[[], None]) -> None:
    """Artwork shared by many cards (titles, labels, seal, logo, crop marks) is drawn once per PDF as a
    form XObject and placed at each card's origin: a 10,000-badge run then writes each of them once
    instead of 10,000 times (issue #11 item 8). `draw` draws relative to the card's lower-left corner."""
    if not c.hasForm(name):
        # reportlab's stub types the bounding box as int; the PDF /BBox takes any number (points).
        c.beginForm(name, -FORM_BLEED, -FORM_BLEED, CARD_W + FORM_BLEED, CARD_H + FORM_BLEED)  # type: ignore[arg-type]
        draw()
        c.endForm()
    c.saveState()
    c.translate(ox, oy)
    c.doForm(name)
    c.restoreState()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:24] if data else "None"


def _front_artwork(c: Canvas, g: FrontGeometry, label: str) -> None:
    cx = CARD_W / 2
    draw_text(c, cx, g.title_baselines[0], TITLE_LINE_1, TITLE_SIZE, bold=True, anchor="centre")
    draw_text(
        c, cx, g.title_baselines[1], FRONT_TITLE_LINE_2.format(label=label), TITLE_SIZE, bold=True, anchor="centre"
    )
    for label_text, y in zip(LABELS, g.body_baselines, strict=True):
        draw_text(c, g.label_x, y, label_text, BODY_SIZE)


def _draw_photo(c: Canvas, photo: bytes, x: float, y: float, w: float, h: float) -> None:
    """The photo covers the box, centred; a passed-through JPEG of another aspect is cropped by a clip
    path instead of being re-encoded (images module docstring)."""
    jpeg, pw, ph = images.photo_jpeg(photo, PHOTO_W / MM, PHOTO_H / MM)
    scale = max(w / pw, h / ph)
    dw, dh = pw * scale, ph * scale
    c.saveState()
    if dw - w > 0.5 or dh - h > 0.5:
        clip = c.beginPath()
        clip.rect(x, y, w, h)
        c.clipPath(clip, stroke=0, fill=0)
    c.drawImage(images.jpeg_reader(jpeg), x + (w - dw) / 2, y + (h - dh) / 2, dw, dh)
    c.restoreState()


def _draw_seal(c: Canvas, badge: Badge, cx: float, cy: float) -> None:
    r = SEAL_D / 2
    if badge.issuer_seal:
        png = images.mark_png(badge.issuer_seal, SEAL_D / MM)
        w, h = images.size_of(png)
        scale = SEAL_D / max(w, h)
        c.drawImage(images.mark_reader(png), cx - w * scale / 2, cy - h * scale / 2, w * scale, h * scale, mask="auto")
        return
    c.saveState()
    c.setStrokeColorRGB(0.85, 0.55, 0.55)
    c.setLineWidth(0.5)
    c.setDash(2, 2)
    c.circle(cx, cy, r, stroke=1, fill=0)
    c.restoreState()
    draw_text(c, cx, cy - r + 4, SEAL_PLACEHOLDER, 7, anchor="centre", color=(0.85, 0.55, 0.55))


@dataclass(frozen=True, slots=True)
class BackGeometry:
    logo_box: tuple[float, float, float, float]
    title_baselines: tuple[float, float]
    qr_box: tuple[float, float, float, float]
    code_baseline: float
    printer_top_baseline: float
    printer_width: float


def back_geometry() -> BackGeometry:
    logo_top = CARD_H - 9 * MM
    logo_y = logo_top - LOGO_D
    t1 = logo_y - 4 * MM - TITLE_SIZE * 0.88
    t2 = t1 - TITLE_LEADING
    qr_top = t2 - 5 * MM
    qr_y = qr_top - QR_SIZE
    code_baseline = qr_y - 9
    printer = code_baseline - 6 * MM - PRINTER_SIZE * 0.88
    return BackGeometry(
        ((CARD_W - LOGO_D) / 2, logo_y, LOGO_D, LOGO_D),
        (t1, t2),
        ((CARD_W - QR_SIZE) / 2, qr_y, QR_SIZE, QR_SIZE),
        code_baseline,
        printer,
        CARD_W - 2 * MARGIN,
    )


def draw_back(c: Canvas, badge: Badge, payload: str, ox: float = 0.0, oy: float = 0.0) -> None:
    g = back_geometry()
    cx = ox + CARD_W / 2
    place_form(c, f"BJSVBack{_digest(badge.issuer_logo)}", ox, oy, lambda: _back_artwork(c, g, badge.issuer_logo))
    qx, qy, qw, _ = g.qr_box
    draw_qr(c, payload, ox + qx, oy + qy, qw)
    draw_text(c, cx, oy + g.code_baseline, badge.code, 8, anchor="centre")

    fitted = fit_text(
        badge.issuer_name + PRINTER_SUFFIX,
        g.printer_width,
        size=PRINTER_SIZE,
        min_size=MIN_SIZE,
        max_lines=3,
        height=3 * PRINTER_SIZE * 1.15,
    )
    leading = PRINTER_LEADING if len(fitted.lines) == 1 else fitted.leading
    draw_fitted(c, 0, oy + g.printer_top_baseline, _relead(fitted, leading), bold=True, centre_on=cx)


def _back_artwork(c: Canvas, g: BackGeometry, logo: bytes) -> None:
    cx = CARD_W / 2
    _, ly, lw, lh = g.logo_box
    if logo:
        png = images.mark_png(logo, LOGO_D / MM)
        w, h = images.size_of(png)
        scale = LOGO_D / max(w, h)
        c.drawImage(
            images.mark_reader(png), cx - w * scale / 2, ly + (lh - h * scale) / 2, w * scale, h * scale, mask="auto"
        )
    else:
        c.saveState()
        c.setStrokeColorRGB(*GREY)
        c.setLineWidth(0.5)
        c.circle(cx, ly + lh / 2, lw / 2, stroke=1, fill=0)
        c.restoreState()
        draw_text(c, cx, ly + lh / 2 + 1, LOGO_PLACEHOLDER[0], 8, anchor="centre", color=GREY)
        draw_text(c, cx, ly + lh / 2 - 9, LOGO_PLACEHOLDER[1], 8, anchor="centre", color=GREY)
    draw_text(c, cx, g.title_baselines[0], TITLE_LINE_1, TITLE_SIZE, bold=True, anchor="centre")
    draw_text(c, cx, g.title_baselines[1], BACK_TITLE_LINE_2, TITLE_SIZE, bold=True, anchor="centre")


def _relead(fitted, leading):
    return type(fitted)(fitted.size, leading, fitted.lines)


def qr_modules(payload: str) -> tuple[int, bytes]:
    """The QR code of the payload, error correction level M: (n, n × n bytes, 0 = dark module, row by row).
    zxing-cpp's C++ encoder with a fixed mask (any mask gives a valid code; choosing the best of eight
    costs 9×): ~0.1 ms where the pure-Python encoder took ~2.5 ms, a fifth of a badge's render time."""
    code = zxingcpp.create_barcode(payload, zxingcpp.BarcodeFormat.QRCode, ec_level="M", data_mask=0)
    image = code.to_image(scale=1, add_quiet_zones=False)
    # zxingcpp.Image implements the buffer protocol; its stub does not declare __buffer__
    return image.shape[0], memoryview(image).tobytes()  # type: ignore[arg-type]


def qr_matrix(payload: str) -> list[list[bool]]:
    """True = dark module."""
    n, modules = qr_modules(payload)
    return [[modules[r * n + col] == 0 for col in range(n)] for r in range(n)]


def draw_qr(c: Canvas, payload: str, x: float, y: float, size: float) -> None:
    """The modules as a 1-bit inline image mask painted black, one image pixel per module (a few hundred
    bytes; writing ~800 rectangles per code cost a third of a badge's render time). Image masks are not
    smoothed, so module edges stay sharp at any resolution. The quiet zone is part of `size`: 2 modules
    on each side."""
    n, modules = qr_modules(payload)
    module = size / (n + 4)
    bits = Image.frombytes("L", (n, n), modules).convert("1").tobytes()  # rows padded to whole bytes
    c.addLiteral(
        f"q 0 g {n * module:.4f} 0 0 {n * module:.4f} {x + 2 * module:.4f} {y + 2 * module:.4f} cm\n"
        f"BI /W {n} /H {n} /IM true /BPC 1 /F /AHx ID\n{bits.hex()}>\nEI Q"
    )


def render_badge(badge: Badge, payload: str) -> bytes:
    """One badge as a 2-page PDF (front, back), each page exactly 80 × 110 mm."""
    buf = io.BytesIO()
    c = new_canvas(buf, (CARD_W, CARD_H), title=f"技能人才评价质量督导员证卡 {badge.code}")
    draw_front(c, badge)
    c.showPage()
    draw_back(c, badge, payload)
    c.showPage()
    c.save()
    return buf.getvalue()


__all__ = ["CARD_H", "CARD_W", "CJK", "back_geometry", "draw_back", "draw_front", "front_geometry", "render_badge"]
