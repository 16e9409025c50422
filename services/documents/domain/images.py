"""Image normalisation for badges: decode once, crop/scale to the printed size at 300 dpi, re-encode
deterministically (same input bytes → same output bytes), so PDFs stay byte-identical and small."""

from __future__ import annotations

import hashlib
import io
from functools import lru_cache

from PIL import Image, ImageOps
from reportlab.lib.utils import ImageReader

DPI = 300


def _px(mm_size: float) -> int:
    return round(mm_size / 25.4 * DPI)


@lru_cache(maxsize=64)
def _photo_cached(digest: str, data: bytes, w_mm: float, h_mm: float) -> bytes:
    with Image.open(io.BytesIO(data)) as source:
        im = ImageOps.exif_transpose(source).convert("RGB")
        im = ImageOps.fit(im, (_px(w_mm), _px(h_mm)), method=Image.Resampling.LANCZOS)
        out = io.BytesIO()
        im.save(out, format="JPEG", quality=88, optimize=False, progressive=False)
        return out.getvalue()


def photo_jpeg(data: bytes, w_mm: float, h_mm: float) -> bytes:
    """Centre-crop to the box's aspect (a 1-inch photo is 25 × 35 mm) and scale to 300 dpi."""
    return _photo_cached(hashlib.sha256(data).hexdigest(), data, w_mm, h_mm)


@lru_cache(maxsize=64)
def _mark_cached(digest: str, data: bytes, box_mm: float) -> bytes:
    with Image.open(io.BytesIO(data)) as source:
        im = ImageOps.exif_transpose(source).convert("RGBA")
        im.thumbnail((_px(box_mm), _px(box_mm)), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        im.save(out, format="PNG", optimize=False)
        return out.getvalue()


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
