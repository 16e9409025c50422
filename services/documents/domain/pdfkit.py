"""Shared PDF machinery: font registration (once per process), deterministic canvases, synthetic bold,
text fitting, and the 是/否 check boxes drawn as vector paths.

Fonts (library-notes §3): WenQuanYi Zen Hei (a 黑体-style face, TTC subfont 0) for all Chinese and Latin
text, embedded by reportlab as TrueType subsets; DejaVuSans for the few symbols the CJK face lacks.

Bold (附件2 says 黑体加粗): neither WenQuanYi Zen Hei nor Windows 黑体 (SimHei) has a bold face; Word
synthesises bold for SimHei by stroking the outline. We do the same: text render mode 2 (fill + stroke)
with a stroke width proportional to the size (`BOLD_STROKE_RATIO`). The text stays real text (extractable,
searchable) and the embedded font is still the one regular subset.

Determinism: every canvas is created with `invariant=1` (no timestamps / random ids) and
`initialFontName` set to the CJK face, so no unembedded Helvetica appears in the output.
"""

from __future__ import annotations

import io
import mmap
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from reportlab import rl_config
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

CJK = "BJSV-Hei"
SYMBOL = "BJSV-Sym"
DEFAULT_CJK_PATH = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
DEFAULT_SYMBOL_PATH = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
BOLD_STROKE_RATIO = 0.035  # stroke width = size × ratio (≈ Word's synthetic bold for SimHei)

_lock = threading.Lock()
_registered: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class FontConfig:
    cjk_path: str = DEFAULT_CJK_PATH
    cjk_subfont_index: int = 0
    symbol_path: str = DEFAULT_SYMBOL_PATH


_configured: list[FontConfig] = [FontConfig()]


def use_fonts(config: FontConfig) -> None:
    """The fonts this process registers when it first draws (a render worker is told at start-up and loads
    them with its first job, so an idle worker stays small)."""
    _configured[0] = config


def register_fonts(config: FontConfig | None = None) -> None:
    """Register the fonts once per process (parsing a CJK TTC costs ~0.3 s). Idempotent."""
    config = config or _configured[0]
    with _lock:
        if CJK in _registered:
            return
        check_fonts(config)
        pdfmetrics.registerFont(TTFont(CJK, _MappedFile(config.cjk_path), subfontIndex=config.cjk_subfont_index))
        pdfmetrics.registerFont(TTFont(SYMBOL, config.symbol_path))
        # Binary (Flate only) streams: ASCII85 costs ~25 % size and noticeable time on 10,000-badge runs.
        rl_config.useA85 = 0
        _registered[CJK] = config.cjk_path
        _registered[SYMBOL] = config.symbol_path


class _MappedFile:
    """A font file handed to reportlab memory-mapped instead of read: reportlab only slices the font's
    bytes, so the 17 MB CJK collection stays shared page cache (only the tables and glyphs used become
    resident) instead of a private copy in every render worker."""

    def __init__(self, path: str) -> None:
        self.name = path

    def read(self) -> mmap.mmap:
        with open(self.name, "rb") as f:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def check_fonts(config: FontConfig) -> None:
    """Fail fast with a clear message when a font file is missing (without loading the ~40 MB CJK face)."""
    for path in (config.cjk_path, config.symbol_path):
        if not Path(path).exists():
            raise FileNotFoundError(
                f"font {path} missing; install fonts-wqy-zenhei / fonts-dejavu-core "
                "(python3 deploy/bootstrap.py install)"
            )


def new_canvas(buf: io.BytesIO, pagesize: tuple[float, float], title: str = "") -> Canvas:
    register_fonts()
    # types-reportlab types initialFontName as a number; reportlab takes the registered font's name.
    c = Canvas(buf, pagesize=pagesize, invariant=1, initialFontName=CJK, initialFontSize=12, pageCompression=1)  # type: ignore[arg-type]
    c.setAuthor("bjsv documents")
    c.setCreator("bjsv documents")
    c.setProducer("bjsv documents")
    if title:
        c.setTitle(title)
    c.setFont(CJK, 12)
    return c


def text_width(text: str, size: float, font: str = CJK) -> float:
    return pdfmetrics.stringWidth(text, font, size)


def draw_text(
    c: Canvas,
    x: float,
    y: float,
    text: str,
    size: float,
    *,
    bold: bool = False,
    font: str = CJK,
    anchor: str = "left",
    color: tuple[float, float, float] = (0, 0, 0),
) -> None:
    """Draw one line at baseline y; anchor left/centre/right; bold = fill+stroke (module docstring)."""
    if anchor == "centre":
        x -= text_width(text, size, font) / 2
    elif anchor == "right":
        x -= text_width(text, size, font)
    t = c.beginText(x, y)
    t.setFont(font, size)
    t.setFillColorRGB(*color)
    if bold:
        c.saveState()
        c.setStrokeColorRGB(*color)
        c.setLineWidth(size * BOLD_STROKE_RATIO)
        c.setLineJoin(1)
        t.setTextRenderMode(2)
        t.textOut(text)
        t.setTextRenderMode(0)
        c.drawText(t)
        c.restoreState()
    else:
        t.textOut(text)
        c.drawText(t)


def wrap(text: str, width: float, size: float, font: str = CJK) -> list[str]:
    """Greedy wrap: CJK may break between any two characters; a run of Latin letters/digits is kept
    together when it fits on a line (it is broken by character only when longer than a line).

    Linear in the text's length (issue #13 item 4): each character's advance is looked up once, line widths
    are running sums and lines are slices of the text, never re-measured or re-joined."""
    scale = size / 1000
    advance = _advances.setdefault(font, {})
    lines: list[str] = []
    start = 0  # where the current line starts in `text`
    line_w = 0.0
    for match in _TOKEN.finditer(text):
        t0, t1 = match.span()
        token_w = _units(text[t0:t1], advance, font) * scale
        if line_w + token_w <= width + _EPSILON:
            line_w += token_w
            continue
        if text[start:t0].strip():
            lines.append(text[start:t0].rstrip())
            while t0 < t1 and text[t0].isspace():  # the next line does not start with a space
                token_w -= _units(text[t0], advance, font) * scale
                t0 += 1
        start = t0
        while token_w > width + _EPSILON and t1 - start > 1:  # a token longer than a line
            cut, cut_w = _fitting_prefix(text, start, t1, width, scale, advance, font)
            lines.append(text[start:cut])
            start, token_w = cut, token_w - cut_w
        line_w = token_w
    if text[start:].strip() or not lines:
        lines.append(text[start:].rstrip())
    return _kinsoku(lines)


_EPSILON = 1e-6
# A token is one character, or a run of Latin letters/digits (with - ' . inside, and a closing ·).
_TOKEN = re.compile(r"[A-Za-z0-9'.\-]+·?|.", re.DOTALL)
_advances: dict[str, dict[str, float]] = {}  # font → character → advance in 1/1000 em (fonts never change)


def _units(chars: str, advance: dict[str, float], font: str) -> float:
    total = 0.0
    for ch in chars:
        units = advance.get(ch)
        if units is None:
            units = advance[ch] = pdfmetrics.stringWidth(ch, font, 1000)
        total += units
    return total


def _fitting_prefix(
    text: str, start: int, end: int, width: float, scale: float, advance: dict[str, float], font: str
) -> tuple[int, float]:
    """The end of the longest run text[start:cut] (at least one character, cut <= end) that fits `width`,
    and its width."""
    total = _units(text[start], advance, font) * scale
    cut = start + 1
    while cut < end:
        w = _units(text[cut], advance, font) * scale
        if total + w > width + _EPSILON:
            break
        total += w
        cut += 1
    return cut, total


_NO_LINE_START = set("，。、；：？！）》」』”’,.;:?!)%")


def _kinsoku(lines: list[str]) -> list[str]:
    """Line-start prohibition (禁则): a line never starts with closing punctuation; the previous line's
    last character moves down with it."""
    for i in range(1, len(lines)):
        if lines[i][:1] in _NO_LINE_START and len(lines[i - 1]) > 1:
            lines[i] = lines[i - 1][-1] + lines[i]
            lines[i - 1] = lines[i - 1][:-1]
    return lines


@dataclass(frozen=True, slots=True)
class FittedText:
    size: float
    leading: float
    lines: tuple[str, ...]


def fit_text(
    text: str,
    width: float,
    *,
    size: float,
    min_size: float,
    max_lines: int,
    height: float,
    font: str = CJK,
    step: float = 0.5,
) -> FittedText:
    """The overflow rule for names on badges and forms, in this order:

    1. one line, shrinking from `size` down to `min_size` in `step`s;
    2. then wrapping at `min_size` into up to `max_lines` lines whose leading (1.15 × size) fits `height`;
    3. then wrapping while shrinking further (down to 60 % of `min_size`) until the text fits
       `max_lines` and `height`. Text is never cut off; this last step only triggers for absurd lengths.
    """
    s = size
    while s >= min_size - 1e-9:
        if text_width(text, s, font) <= width:
            return FittedText(s, s * 1.15, (text,))
        s -= step
    floor = min_size * 0.6
    s = min_size
    while True:
        lines = wrap(text, width, s, font)
        leading = s * 1.15
        if (len(lines) <= max_lines and len(lines) * leading <= height + 1e-6) or s <= floor:
            return FittedText(s, leading, tuple(lines))
        s -= step


def draw_fitted(
    c: Canvas,
    x: float,
    y_top_baseline: float,
    fitted: FittedText,
    *,
    bold: bool = False,
    anchor: str = "left",
    centre_on: float | None = None,
) -> None:
    """Draw fitted lines; the first baseline sits at y_top_baseline (lines go down by the leading)."""
    y = y_top_baseline
    for line in fitted.lines:
        if centre_on is not None:
            draw_text(c, centre_on, y, line, fitted.size, bold=bold, anchor="centre")
        else:
            draw_text(c, x, y, line, fitted.size, bold=bold, anchor=anchor)
        y -= fitted.leading


def check_box(c: Canvas, x: float, y: float, side: float, ticked: bool) -> None:
    """A square box (lower-left x, y) drawn as a vector path; a tick mark inside when ticked."""
    c.saveState()
    c.setLineWidth(0.6)
    c.rect(x, y, side, side, stroke=1, fill=0)
    if ticked:
        c.setLineWidth(max(0.9, side * 0.12))
        c.setLineCap(1)
        c.setLineJoin(1)
        p = c.beginPath()
        p.moveTo(x + side * 0.18, y + side * 0.52)
        p.lineTo(x + side * 0.42, y + side * 0.22)
        p.lineTo(x + side * 0.85, y + side * 0.85)
        c.drawPath(p, stroke=1, fill=0)
    c.restoreState()


def multiline(c: Canvas, x: float, y: float, lines: Iterable[str], size: float, leading: float) -> float:
    """Draw lines from baseline y downwards; returns the baseline after the last line."""
    for line in lines:
        draw_text(c, x, y, line, size)
        y -= leading
    return y


MM = mm
