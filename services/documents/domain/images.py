"""Images on badges: checked before any work is queued, then placed at the printed size.

* `inspect` accepts JPEG and PNG only, within pixel limits (Pillow's decompression-bomb guard included),
  reading the header alone; anything else is refused naming the field (issue #13: non-image bytes, an SVG
  or a 40000 × 40000 PNG once came back as INTERNAL).
* Photos pass through as they are when they are plain JPEGs of a sensible size (DCT pass-through: the PDF
  embeds the file's bytes, the box crops it with a clip path), which saves decoding, resampling and
  re-encoding on 10,000-badge runs. Other photos are centre-cropped and scaled to 300 dpi and re-encoded
  deterministically (same input bytes → same output bytes), so PDFs stay byte-identical and small.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageOps, UnidentifiedImageError
from reportlab.lib.utils import ImageReader

DPI = 300
FORMATS = ("JPEG", "PNG")
MAX_SIDE = 6000  # pixels, either side
MAX_PIXELS = 24_000_000  # ~72 MB decoded as RGB: well inside a render worker's memory limit
PASS_THROUGH_FACTOR = 2  # a JPEG up to twice the printed resolution is embedded unchanged
_EXIF_ORIENTATION = 0x0112


class ImageRejected(ValueError):
    """An image the renderer cannot accept; `reason` is a stable code, `description` Chinese."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(reason, description)

    @property
    def reason(self) -> str:
        return self.args[0]

    @property
    def description(self) -> str:
        return self.args[1]


@dataclass(frozen=True, slots=True)
class ImageInfo:
    format: str
    mode: str
    width: int
    height: int
    orientation: int


def inspect(data: bytes) -> ImageInfo:
    """Type and size from the header (no pixel decoding); raises ImageRejected."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as im:
                # im.format is set: Image.open accepted one of FORMATS
                info = ImageInfo(im.format or "", im.mode, im.width, im.height, im.getexif().get(_EXIF_ORIENTATION, 1))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large() from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ImageRejected("IMAGE_TYPE", "图像须为 JPEG 或 PNG 格式（不支持 SVG 等其他格式）") from None
    if info.width * info.height > MAX_PIXELS or max(info.width, info.height) > MAX_SIDE:
        raise _too_large()
    return info


def _too_large() -> ImageRejected:
    return ImageRejected(
        "IMAGE_TOO_LARGE", f"图像像素过大：每边不超过 {MAX_SIDE} 像素，总像素不超过 {MAX_PIXELS // 1_000_000} 百万"
    )


def _px(mm_size: float) -> int:
    return round(mm_size / 25.4 * DPI)


def _decode_failed() -> ImageRejected:
    return ImageRejected("IMAGE_CORRUPT", "图像数据损坏，无法解码")


@lru_cache(maxsize=64)
def _photo_cached(digest: str, data: bytes, w_mm: float, h_mm: float) -> tuple[bytes, int, int]:
    info = inspect(data)
    if (
        info.format == "JPEG"
        and info.mode in ("RGB", "L")
        and info.orientation == 1
        and info.width <= PASS_THROUGH_FACTOR * _px(w_mm)
        and info.height <= PASS_THROUGH_FACTOR * _px(h_mm)
    ):
        return data, info.width, info.height
    try:
        with Image.open(io.BytesIO(data)) as src:
            im = ImageOps.exif_transpose(src).convert("RGB")
            im = ImageOps.fit(im, (_px(w_mm), _px(h_mm)), method=Image.Resampling.LANCZOS)
            out = io.BytesIO()
            im.save(out, format="JPEG", quality=88, optimize=False, progressive=False)
            return out.getvalue(), im.width, im.height
    except (OSError, ValueError, SyntaxError, EOFError):
        raise _decode_failed() from None


def photo_jpeg(data: bytes, w_mm: float, h_mm: float) -> tuple[bytes, int, int]:
    """The JPEG to embed for a photo box (a 1-inch photo is 25 × 35 mm) and its pixel size: the file
    itself (module docstring), or a centre-crop to the box's aspect at 300 dpi."""
    return _photo_cached(hashlib.sha256(data).hexdigest(), data, w_mm, h_mm)


@lru_cache(maxsize=64)
def _mark_cached(digest: str, data: bytes, box_mm: float) -> bytes:
    inspect(data)
    try:
        with Image.open(io.BytesIO(data)) as src:
            im = ImageOps.exif_transpose(src).convert("RGBA")
            im.thumbnail((_px(box_mm), _px(box_mm)), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            im.save(out, format="PNG", optimize=False)
            return out.getvalue()
    except (OSError, ValueError, SyntaxError, EOFError):
        raise _decode_failed() from None


def mark_png(data: bytes, box_mm: float) -> bytes:
    """A seal or logo: keep transparency (the seal is stamped over the issuer line), fit a square box."""
    return _mark_cached(hashlib.sha256(data).hexdigest(), data, box_mm)


class _JpegReader(ImageReader):
    """A JPEG passes through into the PDF (DCTDecode) without decoding; reportlab only calls
    getRGBData() on it to name the XObject, so a content digest is enough (saves ~5 ms per photo)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self._key = b"jpeg:" + hashlib.sha256(data).digest()
        self._dataA = None

    def getRGBData(self) -> bytes:  # reportlab's API name
        return self._key


def jpeg_reader(data: bytes) -> ImageReader:
    return _JpegReader(data)


@lru_cache(maxsize=32)
def _mark_reader(digest: str, data: bytes) -> ImageReader:
    return ImageReader(io.BytesIO(data))


def mark_reader(data: bytes) -> ImageReader:
    """Seal/logo readers are shared (reportlab caches the decoded pixels on the reader), so a seal that
    appears on 10,000 badges is decoded once and embedded once per PDF."""
    return _mark_reader(hashlib.sha256(data).hexdigest(), data)


def size_of(data: bytes) -> tuple[int, int]:
    return mark_reader(data).getSize()
