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


def register_fonts(config: FontConfig | None = None) -> None:
    """Register the fonts once per process (parsing a CJK TTC costs ~0.3 s). Idempotent."""
    config = config or FontConfig()
    with _lock:
        if CJK in _registered:
            return
        for path in (config.cjk_path, config.symbol_path):
            if not Path(path).exists():
                raise FileNotFoundError(
                    f"font {path} missing; install fonts-wqy-zenhei / fonts-dejavu-core "
                    "(python3 deploy/bootstrap.py install)"
                )
        pdfmetrics.registerFont(TTFont(CJK, config.cjk_path, subfontIndex=config.cjk_subfont_index))
        pdfmetrics.registerFont(TTFont(SYMBOL, config.symbol_path))
        # Binary (Flate only) streams: ASCII85 costs ~25 % size and noticeable time on 10,000-badge runs.
        rl_config.useA85 = 0
        _registered[CJK] = config.cjk_path
        _registered[SYMBOL] = config.symbol_path


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
    together when it fits on a line (it is broken by character only when longer than a line)."""
    lines: list[str] = []
    current = ""
    tokens = _tokens(text)
    for token in tokens:
        candidate = current + token
        if text_width(candidate, size, font) <= width:
            current = candidate
            continue
        if current.strip():
            lines.append(current.rstrip())
            current = token.lstrip()
        else:
            current = token
        while text_width(current, size, font) > width and len(current) > 1:
            cut = len(current)
            while cut > 1 and text_width(current[:cut], size, font) > width:
                cut -= 1
            lines.append(current[:cut])
            current = current[cut:]
    if current.strip() or not lines:
        lines.append(current.rstrip())
    return _kinsoku(lines)


_NO_LINE_START = set("，。、；：？！）》」』”’,.;:?!)%")


def _kinsoku(lines: list[str]) -> list[str]:
    """Line-start prohibition (禁则): a line never starts with closing punctuation; the previous line's
    last character moves down with it."""
    for i in range(1, len(lines)):
        if lines[i][:1] in _NO_LINE_START and len(lines[i - 1]) > 1:
            lines[i] = lines[i - 1][-1] + lines[i]
            lines[i - 1] = lines[i - 1][:-1]
    return lines


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    for ch in text:
        if (
            out
            and ((ch.isascii() and ch.isalnum()) or ch in "-'.·")
            and out[-1]
            and out[-1][-1].isascii()
            and (out[-1][-1].isalnum() or out[-1][-1] in "-'.")
        ):
            out[-1] += ch
        else:
            out.append(ch)
    return out


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
