"""The documents application service: render (pure domain functions, in one dedicated render thread),
sign (per-issuer Ed25519 keys kept in the DB), store with the digest and publish `document.rendered`.

Used by the gRPC servicer (api.py) and by the event handlers (events.py) alike. Rendering runs in a
single worker thread: reportlab is CPU-bound and keeps per-font subset state, so one render thread per
process is both safe and enough (scale out with processes/replicas).
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common.clock import Clock
from common.db import Database
from services.documents.domain import annex3, badge, docx_forms, forms, report, sheet, signing
from services.documents.domain.annex3 import ChecklistKind
from services.documents.domain.model import Badge, DistrictReport, Feedback, SupervisionRecord
from services.documents.domain.pdfkit import FontConfig, register_fonts
from services.documents.storage import repository
from services.documents.storage.repository import DocumentInfo, NewDocument

PDF = "pdf"
DOCX = "docx"
PDF_MEDIA_TYPE = "application/pdf"

KIND_BADGE = "badge"
KIND_PRINT_SHEET = "print_sheet"
KIND_RECORD = {ChecklistKind.ON_SITE: "on_site_record", ChecklistKind.RECORDS_REVIEW: "records_review_record"}
KIND_FEEDBACK = "feedback"
KIND_REPORT = "district_report"
BLANK_SUBJECT = "forms/blank"


def page_count(pdf: bytes) -> int:
    """Pages of a reportlab PDF: its page tree root carries /Count (no full parse needed)."""
    counts = [int(m) for m in re.findall(rb"/Count (\d+)", pdf)]
    return max(counts) if counts else 0


def _safe(name: str) -> str:
    return name.replace("/", "-")


@dataclass(frozen=True, slots=True)
class Rendered:
    info: DocumentInfo | None  # None: the event was handled before, nothing stored (store_document)
    content: bytes

    @property
    def document(self) -> DocumentInfo:
        """The stored document; API renders pass no `processed`, so they always have one."""
        if self.info is None:
            raise LookupError("a render for an event handled before stored no document")
        return self.info


class DocumentRenderer:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        chunk_size: int = 256 * 1024,
        fonts: FontConfig | None = None,
        volume_badges: int = sheet.DEFAULT_VOLUME,
    ) -> None:
        self.db = db
        self.clock = clock
        self.chunk_size = chunk_size
        self.fonts = fonts or FontConfig()
        self.volume_badges = volume_badges
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self._keys: dict[str, Ed25519PrivateKey] = {}
        self._public: dict[tuple[str, str], Ed25519PublicKey] = {}
        self._keys_lock = threading.Lock()

    def start(self) -> None:
        """Register the fonts once per process (fails fast with a clear message when a font is missing)."""
        register_fonts(self.fonts)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self, fn: Callable, *args):
        ctx = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._executor, ctx.run, fn, *args)

    async def _store(self, doc: NewDocument, processed: tuple[str, str] | None = None) -> Rendered:
        info, _created = await self.db.write(
            repository.store_document, doc, chunk_size=self.chunk_size, now=self.clock.now(), processed=processed
        )
        return Rendered(info, doc.content)

    # -- keys and payloads ----------------------------------------------------------------------------

    def private_key(self, issuer: str) -> Ed25519PrivateKey:
        """The issuer's signing key (generated and stored on first use); cached per process."""
        with self._keys_lock:
            key = self._keys.get(issuer)
        if key is None:
            info = self.db.write_sync(repository.issuer_key, issuer=issuer, now=self.clock.now())
            key = Ed25519PrivateKey.from_private_bytes(info.private_key)
            with self._keys_lock:
                self._keys[issuer] = key
        return key

    def payload_for(self, b: Badge) -> str:
        return signing.badge_payload(
            code=b.code,
            holder_name=b.holder_name,
            validity=b.validity_text,
            issuer=b.issuer,
            key=self.private_key(b.issuer),
        )

    async def public_key(self, issuer: str, *, create: bool = False) -> repository.KeyInfo | None:
        if create:
            return await self.db.write(repository.issuer_key, issuer=issuer, now=self.clock.now())
        return await self.db.read(repository.public_key, issuer=issuer)

    async def verify(self, payload: str, *, holder_name: str = "") -> signing.VerifyResult:
        try:
            fields = signing.parse_payload(payload)
        except (ValueError, UnicodeDecodeError):
            return signing.VerifyResult(False, "MALFORMED")
        key = self._public.get((fields.issuer, fields.key_id))
        if key is None:
            info = await self.public_key(fields.issuer)
            if info is not None and info.key_id == fields.key_id:
                key = Ed25519PublicKey.from_public_bytes(info.public_key)
                self._public[(fields.issuer, fields.key_id)] = key
        return signing.verify_payload(payload, lambda issuer, kid: key, holder_name=holder_name)

    # -- renderers --------------------------------------------------------------------------------------

    async def badge(self, b: Badge, *, processed: tuple[str, str] | None = None) -> tuple[Rendered, str]:
        payload = await asyncio.to_thread(self.payload_for, b)
        pdf = await self._run(badge.render_badge, b, payload)
        rendered = await self._store(
            NewDocument(KIND_BADGE, PDF, b.subject, PDF_MEDIA_TYPE, f"badge-{b.code}.pdf", pdf, 2), processed
        )
        return rendered, payload

    async def record(
        self, record: SupervisionRecord, fmt: str = PDF, *, processed: tuple[str, str] | None = None
    ) -> Rendered:
        checklist = annex3.CHECKLISTS[record.kind]
        if fmt == DOCX:
            data = await self._run(docx_forms.render_record_docx, checklist, record)
            doc = NewDocument(
                KIND_RECORD[record.kind],
                DOCX,
                record.name,
                docx_forms.DOCX_MEDIA_TYPE,
                f"{_safe(record.name)}.docx",
                data,
                0,
            )
        else:
            data = await self._run(forms.render_record, checklist, record)
            doc = NewDocument(
                KIND_RECORD[record.kind],
                PDF,
                record.name,
                PDF_MEDIA_TYPE,
                f"{_safe(record.name)}.pdf",
                data,
                page_count(data),
            )
        return await self._store(doc, processed)

    async def feedback(self, fb: Feedback, fmt: str = PDF, *, processed: tuple[str, str] | None = None) -> Rendered:
        if fmt == DOCX:
            data = await self._run(docx_forms.render_feedback_docx, fb)
            doc = NewDocument(
                KIND_FEEDBACK, DOCX, fb.name, docx_forms.DOCX_MEDIA_TYPE, f"{_safe(fb.name)}.docx", data, 0
            )
        else:
            data = await self._run(forms.render_feedback, fb)
            doc = NewDocument(
                KIND_FEEDBACK, PDF, fb.name, PDF_MEDIA_TYPE, f"{_safe(fb.name)}.pdf", data, page_count(data)
            )
        return await self._store(doc, processed)

    async def blank(self, kind: str, fmt: str = PDF) -> Rendered:
        """kind: on_site_record | records_review_record | feedback."""
        fn_pdf: Callable[..., bytes]
        fn_docx: Callable[..., bytes]
        args: tuple[Any, ...]
        if kind == KIND_FEEDBACK:
            fn_pdf, fn_docx, args = forms.render_feedback, docx_forms.render_feedback_docx, ()
        else:
            checklist = annex3.CHECKLISTS[next(k for k, v in KIND_RECORD.items() if v == kind)]
            fn_pdf, fn_docx, args = forms.render_record, docx_forms.render_record_docx, (checklist,)
        if fmt == DOCX:
            data = await self._run(fn_docx, *args)
            doc = NewDocument(kind, DOCX, BLANK_SUBJECT, docx_forms.DOCX_MEDIA_TYPE, f"blank-{kind}.docx", data, 0)
        else:
            data = await self._run(fn_pdf, *args)
            doc = NewDocument(kind, PDF, BLANK_SUBJECT, PDF_MEDIA_TYPE, f"blank-{kind}.pdf", data, page_count(data))
        return await self._store(doc)

    async def report(self, r: DistrictReport, *, processed: tuple[str, str] | None = None) -> Rendered:
        data = await self._run(report.render_report, r)
        return await self._store(
            NewDocument(KIND_REPORT, PDF, r.name, PDF_MEDIA_TYPE, f"{_safe(r.name)}.pdf", data, page_count(data)),
            processed,
        )

    # -- print runs -------------------------------------------------------------------------------------

    def print_run(
        self,
        badges: Iterable[Badge],
        *,
        title: str,
        subject: str,
        volume_badges: int = 0,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Iterator[DocumentInfo]:
        """Synchronous (call from a worker thread): render volumes lazily from `badges` and store each one
        as it is finished; yields the stored documents. Memory is bounded by one volume."""
        per_volume = volume_badges or self.volume_badges
        for vol in sheet.render_print_sheets(
            badges, self.payload_for, title=title, max_badges_per_volume=per_volume, on_progress=on_progress
        ):
            doc = NewDocument(
                KIND_PRINT_SHEET,
                PDF,
                subject,
                PDF_MEDIA_TYPE,
                f"{_safe(subject)}-vol{vol.number:03d}.pdf",
                vol.pdf,
                2 * vol.sheet_count,
            )
            info, _ = self.db.write_sync(
                repository.store_document, doc, chunk_size=self.chunk_size, now=self.clock.now()
            )
            if info is None:  # only with `processed`, which a print job does not pass
                raise LookupError(f"volume {vol.number} of a print job was not stored")
            yield info

    async def run_print_job(
        self, source: queue.Queue, emit: Callable[[object], None], *, title: str, subject: str, volume_badges: int = 0
    ) -> None:
        """Run `print_run` in the render thread, pulling badges from `source` (None ends the input, an
        exception aborts) and calling `emit` (thread-safe) with ("progress", done, sheets) / ("document",
        DocumentInfo) items."""

        def badges() -> Iterator[Badge]:
            while True:
                item = source.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item

        def work() -> None:
            for info in self.print_run(
                badges(),
                title=title,
                subject=subject,
                volume_badges=volume_badges,
                on_progress=lambda d, s: emit(("progress", d, s)),
            ):
                emit(("document", info))

        await self._run(work)

    async def list_documents(self, *, kind: str, subject: str, offset: int, limit: int):
        return await self.db.read(repository.list_documents, kind=kind, subject=subject, offset=offset, limit=limit)

    async def read_document(self, document_id: str) -> DocumentInfo | None:
        return await self.db.read(repository.get_document, document_id=document_id)

    async def iter_chunks(self, info: DocumentInfo, chunk_size: int) -> AsyncIterator[bytes]:
        """Re-chunk the stored chunks to `chunk_size`, reading a few stored chunks per DB round trip."""
        buffer = bytearray()
        seq = 0
        while seq < info.chunk_count:
            stored = await self.db.read(repository.read_chunks, document_id=info.id, from_seq=seq, limit=8)
            if not stored:
                break
            seq += len(stored)
            for data in stored:
                buffer.extend(data)
                while len(buffer) >= chunk_size:
                    yield bytes(buffer[:chunk_size])
                    del buffer[:chunk_size]
        if buffer:
            yield bytes(buffer)


__all__ = ["BLANK_SUBJECT", "DOCX", "PDF", "DocumentRenderer", "Rendered"]
