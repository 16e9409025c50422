"""Composition root of the documents service: `python -m services.documents`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bjsv.documents.v1 import documents_pb2_grpc
from common.bus import Bus
from common.clock import Clock
from common.db import Database, StartupError
from common.server import Service, Servicer, run
from services.documents.api import DocumentsServicer
from services.documents.config import DocumentsSettings
from services.documents.domain.pdfkit import FontConfig, check_fonts
from services.documents.events import DocumentEvents
from services.documents.rendering import DocumentRenderer
from services.documents.storage import models
from services.documents.workers import RenderPool

SERVICE = "documents"


def build(settings: DocumentsSettings | None = None) -> Service:
    settings = settings or DocumentsSettings()
    fonts = FontConfig(
        cjk_path=settings.documents_font_cjk,
        cjk_subfont_index=settings.documents_font_cjk_index,
        symbol_path=settings.documents_font_symbol,
    )
    db = Database(
        settings,
        service=SERVICE,
        metadata=models.Base.metadata,
        migrations=Path(__file__).parent / "storage" / "migrations",
    )
    try:  # the render workers load the fonts; a missing file fails the start here, with one clear line
        check_fonts(fonts)
    except FileNotFoundError as e:
        raise StartupError(str(e)) from None
    pool = RenderPool(
        workers=settings.documents_render_workers,
        timeout=settings.documents_render_timeout,
        memory_mb=settings.documents_render_memory_mb,
        fonts=fonts,
    )
    renderer = DocumentRenderer(
        db,
        Clock(),
        pool=pool,
        chunk_size=settings.documents_chunk_size,
        volume_badges=settings.documents_volume_badges,
    )
    events = DocumentEvents(
        renderer, registry_target=settings.target("registry"), timeout=settings.documents_registry_timeout
    )

    async def start() -> None:
        pool.start()

    async def stop() -> None:
        await events.close()
        await asyncio.to_thread(pool.close)

    return Service(
        name=SERVICE,
        settings=settings,
        servicers=[
            Servicer(
                documents_pb2_grpc.add_DocumentsServiceServicer_to_server,
                DocumentsServicer(renderer, default_chunk=settings.documents_chunk_size),
                "bjsv.documents.v1.DocumentsService",
            )
        ],
        database=db,
        bus=Bus(settings, service=SERVICE),
        subscriptions=events.subscriptions(),
        on_start=[start],
        on_stop=[stop],
    )


if __name__ == "__main__":
    run(build)
