"""Start-up of a render worker process (`workers.RenderPool`). Kept apart from workers.py so that a
worker imports the rendering domain only — no gRPC, protobuf or SQLAlchemy (about 60 MB per worker)."""

from __future__ import annotations

import resource

from services.documents.domain.pdfkit import FontConfig, register_fonts


def init(fonts: FontConfig, memory_bytes: int) -> None:
    """Cap the worker's address space (a job over it fails with MemoryError) and load the fonts once."""
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    register_fonts(fonts)
