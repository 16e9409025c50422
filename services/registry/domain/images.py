"""Photo / seal / logo checks: real JPEG or PNG (decoded, not just by extension), size-limited."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image

from .policy import DEFAULT_POLICY, RegistryPolicy
from .problems import Problem, ProblemsError

MIME = {"JPEG": "image/jpeg", "PNG": "image/png"}


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    mime_type: str
    width: int
    height: int
    sha256: str


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest() if data else ""


def check_image(
    data: bytes,
    *,
    field: str,
    what: str,
    max_bytes: int,
    min_size: tuple[int, int] | None = None,
    max_side: int = DEFAULT_POLICY.photo_max_side,
) -> CheckedImage:
    """Decode the image header and pixels; refuse anything that is not a sane JPEG/PNG."""
    if len(data) > max_bytes:
        raise ProblemsError(
            [Problem(field, "IMAGE_TOO_LARGE", f"{what}文件过大（{len(data)}字节），不得超过{max_bytes}字节")]
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format
                width, height = img.size
                if fmt not in MIME:
                    raise ProblemsError([Problem(field, "IMAGE_FORMAT", f"{what}须为JPEG或PNG格式，实为{fmt}")])
                if max(width, height) > max_side:
                    raise ProblemsError(
                        [
                            Problem(
                                field,
                                "IMAGE_DIMENSIONS",
                                f"{what}尺寸{width}×{height}像素过大，每边不得超过{max_side}像素",
                            )
                        ]
                    )
                img.load()  # decode fully: truncated / corrupt files fail here
    except ProblemsError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ProblemsError([Problem(field, "IMAGE_UNREADABLE", f"{what}无法识别为有效的JPEG或PNG图片")]) from None
    if min_size and (width < min_size[0] or height < min_size[1]):
        raise ProblemsError(
            [
                Problem(
                    field,
                    "IMAGE_DIMENSIONS",
                    f"{what}尺寸{width}×{height}像素过小，至少{min_size[0]}×{min_size[1]}像素（附件2：彩色1寸照片）",
                )
            ]
        )
    return CheckedImage(data, MIME[fmt], width, height, sha256_hex(data))


def check_photo(data: bytes, policy: RegistryPolicy = DEFAULT_POLICY, field: str = "photo") -> CheckedImage:
    return check_image(
        data,
        field=field,
        what="照片",
        max_bytes=policy.photo_max_bytes,
        min_size=policy.photo_min_size,
        max_side=policy.photo_max_side,
    )


def check_seal_or_logo(data: bytes, field: str, policy: RegistryPolicy = DEFAULT_POLICY) -> CheckedImage:
    what = "机构公章图片" if "seal" in field else "机构标识图片"
    return check_image(data, field=field, what=what, max_bytes=policy.image_max_bytes, max_side=policy.photo_max_side)
