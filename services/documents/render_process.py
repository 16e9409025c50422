"""Start-up of a render worker process (`workers.RenderPool`). Kept apart from workers.py so that a
worker imports the rendering domain only — no gRPC, protobuf or SQLAlchemy (about 60 MB per worker)."""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
from collections.abc import Callable
from typing import TypeVar

from services.documents.domain.pdfkit import FontConfig, use_fonts


def init(fonts: FontConfig, memory_bytes: int) -> None:
    """Cap the worker's address space (a job over it fails with MemoryError) and name the fonts, which
    the first job loads (pdfkit.new_canvas registers them once per process)."""
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    use_fonts(fonts)


T = TypeVar("T")
_libc = ctypes.CDLL(ctypes.util.find_library("c"))


def run(fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    """Run one job, then hand the memory it freed back to the OS (glibc keeps freed heap pages otherwise,
    so a worker would stay at the size of its largest volume for the rest of its life)."""
    try:
        return fn(*args, **kwargs)
    finally:
        _libc.malloc_trim(0)
