"""Start-up of a render worker process (`workers.RenderPool`). Kept apart from workers.py so that a
worker imports the rendering domain only — no gRPC, protobuf or SQLAlchemy (about 60 MB per worker)."""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import resource

from services.documents.domain.pdfkit import FontConfig, use_fonts

_libc = ctypes.CDLL(ctypes.util.find_library("c"))
_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def init(fonts: FontConfig, memory_bytes: int) -> None:
    """Cap the worker's address space (a job over it fails with MemoryError) and name the fonts, which
    the first job loads (pdfkit.new_canvas registers them once per process)."""
    keep_large_buffers_off_the_heap()
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    use_fonts(fonts)


def keep_large_buffers_off_the_heap() -> None:
    """glibc serves allocations of 128 KiB and more with mmap and unmaps them on free, until freeing one
    raises that threshold (dynamically, up to 32 MiB); from then on the megabyte-sized PDF and image buffers
    of print runs stay on the heap and each process keeps ~30 MB more. A fixed threshold keeps them off it.
    Called in the service process (RenderPool.start) and in every worker."""
    _libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


def run(job: str, args: tuple, kwargs: dict):
    """Run one job ("module:function"), then hand the memory it freed back to the OS (glibc keeps freed
    heap pages otherwise, so a worker would stay at the size of its largest volume for the rest of its life)."""
    module, _, name = job.partition(":")
    try:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)
    finally:
        _libc.malloc_trim(0)
