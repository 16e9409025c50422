"""Print sheets: badges imposed on A4 for a print room (附件2 制作说明: A4 PVC sheets, laminated, hand-cut).

* 4 badges per A4 sheet (2 columns × 2 rows of 80 × 110 mm, 10 mm gutters), fronts on odd pages, backs on
  even pages. Long-edge duplex on portrait A4 mirrors the page left-right, so the back of the front in
  column c is drawn in column (1 − c) of the same row: each back lands behind its front.
* Crop marks at every card corner (in the gutters, never touching a card) and a sheet/slot index: each slot
  carries "sheet-slot" above its top-left mark, and the page foot names the sheet, side and code range.
* Stable order: badges fill slots row-major in input order; a sheet's back page lists the same codes.
* Streaming: output is split into volumes of at most `max_badges_per_volume` badges (one PDF each), each
  rendered from that volume's badges alone, so memory is bounded by a volume, not the run, and volumes
  can be rendered in parallel processes.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from services.documents.domain.badge import CARD_H, CARD_W, draw_back, draw_front, place_form
from services.documents.domain.model import Badge
from services.documents.domain.pdfkit import MM, draw_text, new_canvas

PAGE_W, PAGE_H = A4
COLS, ROWS = 2, 2
PER_SHEET = COLS * ROWS
GUTTER = 10 * MM
MARK_OFFSET = 1.5 * MM
MARK_LEN = 3 * MM
DEFAULT_VOLUME = 252  # badges (63 A4 sheets): a render worker holds one volume at a time
DEFAULT_TITLE = "技能人才评价质量督导员证卡"

_BLOCK_W = COLS * CARD_W + (COLS - 1) * GUTTER
_BLOCK_H = ROWS * CARD_H + (ROWS - 1) * GUTTER
LEFT = (PAGE_W - _BLOCK_W) / 2
BOTTOM = (PAGE_H - _BLOCK_H) / 2


def slot_origin(slot: int, *, back: bool) -> tuple[float, float]:
    """Lower-left corner of slot 0..3 (row-major from the top-left on the front)."""
    row, col = divmod(slot, COLS)
    if back:
        col = COLS - 1 - col  # long-edge flip mirrors columns
    x = LEFT + col * (CARD_W + GUTTER)
    y = BOTTOM + (ROWS - 1 - row) * (CARD_H + GUTTER)
    return x, y


@dataclass(frozen=True, slots=True)
class Volume:
    number: int  # 1-based
    first_badge: int  # 0-based index into the run
    badge_count: int
    sheet_count: int
    pdf: bytes
    codes: tuple[str, ...]


def _crop_marks(c: Canvas) -> None:
    """Marks at the four corners of a card whose lower-left corner is the origin, in the gutters."""
    c.setLineWidth(0.3)
    c.setStrokeColorRGB(0, 0, 0)
    for cx, sx in ((0, -1), (CARD_W, 1)):
        for cy, sy in ((0, -1), (CARD_H, 1)):
            c.line(cx + sx * MARK_OFFSET, cy, cx + sx * (MARK_OFFSET + MARK_LEN), cy)
            c.line(cx, cy + sy * MARK_OFFSET, cx, cy + sy * (MARK_OFFSET + MARK_LEN))


def _page(c: Canvas, sheet_no: int, badges: list[Badge], payloads: list[str], *, back: bool, title: str) -> None:
    for slot, badge in enumerate(badges):
        x, y = slot_origin(slot, back=back)
        if back:
            draw_back(c, badge, payloads[slot], x, y)
        else:
            draw_front(c, badge, x, y)
        place_form(c, "BJSVCropMarks", x, y, lambda: _crop_marks(c))
        draw_text(
            c,
            x - MARK_OFFSET,
            y + CARD_H + MARK_OFFSET + 1,
            f"{sheet_no}-{slot + 1}",
            6,
            anchor="right",
            color=(0.4, 0.4, 0.4),
        )
    side = "反面" if back else "正面"
    codes = f"{badges[0].code} – {badges[-1].code}"
    draw_text(
        c,
        PAGE_W / 2,
        10 * MM,
        f"{title}  第{sheet_no}张 {side}  {codes}  共{len(badges)}枚",
        7,
        anchor="centre",
        color=(0.4, 0.4, 0.4),
    )
    draw_text(
        c, PAGE_W / 2, PAGE_H - 12 * MM, "双面打印：长边翻转（沿长边装订）", 7, anchor="centre", color=(0.4, 0.4, 0.4)
    )
    c.showPage()


def volume_size(max_badges_per_volume: int) -> int:
    """Badges per volume: a whole number of sheets, at least one sheet."""
    return max(PER_SHEET, max_badges_per_volume - max_badges_per_volume % PER_SHEET)


def render_volume(
    badges: Sequence[Badge], payloads: Sequence[str], *, title: str, number: int, first_badge: int
) -> Volume:
    """One volume (PDF) of a run: `badges[i]` carries the signed QR payload `payloads[i]`; sheets are
    numbered on from the run's start, so volumes rendered apart (in parallel workers) read as one run."""
    buf = io.BytesIO()
    c = new_canvas(buf, A4, title=f"{title} 第{number}册")
    first_sheet = first_badge // PER_SHEET + 1
    sheet_count = -(-len(badges) // PER_SHEET)
    for i in range(sheet_count):
        chunk = list(badges[i * PER_SHEET : (i + 1) * PER_SHEET])
        codes = list(payloads[i * PER_SHEET : (i + 1) * PER_SHEET])
        _page(c, first_sheet + i, chunk, codes, back=False, title=title)
        _page(c, first_sheet + i, chunk, codes, back=True, title=title)
    c.save()
    return Volume(number, first_badge, len(badges), sheet_count, buf.getvalue(), tuple(b.code for b in badges))


def render_print_sheets(
    badges: Iterable[Badge],
    payload_for: Callable[[Badge], str],
    *,
    title: str = DEFAULT_TITLE,
    max_badges_per_volume: int = DEFAULT_VOLUME,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[Volume]:
    """A whole run in this process, volume by volume (the service renders volumes in worker processes);
    badges are read one volume at a time. `on_progress(badges_done, sheets_done)` after every volume."""
    per_volume = volume_size(max_badges_per_volume)
    it = iter(badges)
    done = number = 0
    while chunk := list(islice(it, per_volume)):
        number += 1
        volume = render_volume(chunk, [payload_for(b) for b in chunk], title=title, number=number, first_badge=done)
        done += len(chunk)
        if on_progress:
            on_progress(done, -(-done // PER_SHEET))
        yield volume
