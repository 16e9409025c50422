"""Settings of the documents service (env BJSV_*; see README Configuration)."""

from __future__ import annotations

from pydantic import Field

from common.config import Settings
from services.documents.domain.pdfkit import DEFAULT_CJK_PATH, DEFAULT_SYMBOL_PATH


class DocumentsSettings(Settings):
    documents_font_cjk: str = Field(
        default=DEFAULT_CJK_PATH, description="黑体-style CJK TrueType/TTC font (fonts-wqy-zenhei)"
    )
    documents_font_cjk_index: int = Field(default=0, description="face index inside a .ttc font collection")
    documents_font_symbol: str = Field(
        default=DEFAULT_SYMBOL_PATH, description="font with ☐/☑ (DejaVuSans, fonts-dejavu-core)"
    )
    documents_chunk_size: int = Field(default=256 * 1024, description="bytes per stored chunk and per streamed chunk")
    documents_volume_badges: int = Field(
        default=252, description="badges per print-sheet PDF (63 A4 sheets; bounds a render worker's memory)"
    )
    documents_registry_timeout: float = Field(default=10.0, description="seconds for a GetBadge call to the registry")
    documents_render_workers: int = Field(
        default=2, ge=1, description="render worker processes (print-run volumes render in parallel on them)"
    )
    documents_render_timeout: float = Field(
        default=60.0,
        gt=0,
        description="seconds a render job may run before its worker is killed (volumes: + 0.05 s a badge)",
    )
    documents_render_memory_mb: int = Field(
        default=1024, ge=0, description="address-space limit of each render worker in MB (RLIMIT_AS; 0 = none)"
    )
