"""The documents application service: render (pure domain functions, in render worker processes with a
time and memory limit per job, `workers.RenderPool`), sign (per-issuer Ed25519 keys kept in the DB), store
with the digest and publish `document.rendered`.

Used by the gRPC servicer (api.py) and by the event handlers (events.py) alike. Print runs sign each
volume's QR payloads in one batch here and render volumes in parallel on the workers, storing them in
order as they finish.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
import threading
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common.auth.scope import ListScope, Owner
from common.clock import Clock
from common.db import Database
from services.documents.domain import annex3, sheet, signing
from services.documents.domain.annex3 import ChecklistKind
from services.documents.domain.model import Badge, DistrictReport, Feedback, SupervisionRecord
from services.documents.storage import repository
from services.documents.storage.repository import DocumentInfo, NewDocument
from services.documents.workers import RenderPool

PDF = "pdf"
DOCX = "docx"
PDF_MEDIA_TYPE = "application/pdf"
DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

# Render jobs run in the workers and are named here, not imported: the service process then never loads
# python-docx, docxtpl, Jinja2 and lxml (~15 MB), which only the workers need.
_DOMAIN = "services.documents.domain"
BADGE_PDF = f"{_DOMAIN}.badge:render_badge"
VOLUME_PDF = f"{_DOMAIN}.sheet:render_volume"
RECORD_PDF = f"{_DOMAIN}.forms:render_record"
RECORD_DOCX = f"{_DOMAIN}.docx_forms:render_record_docx"
FEEDBACK_PDF = f"{_DOMAIN}.forms:render_feedback"
FEEDBACK_DOCX = f"{_DOMAIN}.docx_forms:render_feedback_docx"
REPORT_PDF = f"{_DOMAIN}.report:render_report"

KIND_BADGE = "badge"
KIND_PRINT_SHEET = "print_sheet"
KIND_RECORD = {ChecklistKind.ON_SITE: "on_site_record", ChecklistKind.RECORDS_REVIEW: "records_review_record"}
KIND_FEEDBACK = "feedback"
KIND_REPORT = "district_report"
BLANK_SUBJECT = "forms/blank"
# A print volume's time limit grows with its size: the job limit plus this much per badge (≈ 15× the
# ~3 ms a badge takes on a loaded 2-core machine).
VOLUME_SECONDS_PER_BADGE = 0.05


def page_count(pdf: bytes) -> int:
    """Pages of a reportlab PDF: its page tree root carries /Count (no full parse needed)."""
    counts = [int(m) for m in re.findall(rb"/Count (\d+)", pdf)]
    return max(counts) if counts else 0


def _safe(name: str) -> str:
    return name.replace("/", "-")


@dataclass(frozen=True, slots=True)
class Rendered:
    info: DocumentInfo | None  # None: rendered for an event already handled (`processed`), nothing stored
    content: bytes

    @property
    def stored(self) -> DocumentInfo:
        """The stored document: always there for a render without `processed` (the API's)."""
        if self.info is None:
            raise RuntimeError("the document was rendered for an event already handled and not stored")
        return self.info


class DocumentRenderer:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        pool: RenderPool,
        chunk_size: int = 256 * 1024,
        volume_badges: int = sheet.DEFAULT_VOLUME,
    ) -> None:
        self.db = db
        self.clock = clock
        self.pool = pool
        self.chunk_size = chunk_size
        self.volume_badges = volume_badges
        self._keys: dict[str, Ed25519PrivateKey] = {}
        self._public: dict[tuple[str, str], Ed25519PublicKey] = {}
        self._keys_lock = threading.Lock()

    async def _store(self, doc: NewDocument, owner: Owner, processed: tuple[str, str] | None = None) -> Rendered:
        doc = dataclasses.replace(doc, owner=owner)
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

    async def badge(self, b: Badge, *, owner: Owner, processed: tuple[str, str] | None = None) -> tuple[Rendered, str]:
        payload = await asyncio.to_thread(self.payload_for, b)
        pdf = await self.pool.run(BADGE_PDF, b, payload)
        rendered = await self._store(
            NewDocument(KIND_BADGE, PDF, b.subject, PDF_MEDIA_TYPE, f"badge-{b.code}.pdf", pdf, 2), owner, processed
        )
        return rendered, payload

    async def record(
        self, record: SupervisionRecord, fmt: str = PDF, *, owner: Owner, processed: tuple[str, str] | None = None
    ) -> Rendered:
        checklist = annex3.CHECKLISTS[record.kind]
        if fmt == DOCX:
            data = await self.pool.run(RECORD_DOCX, checklist, record)
            doc = NewDocument(
                KIND_RECORD[record.kind],
                DOCX,
                record.name,
                DOCX_MEDIA_TYPE,
                f"{_safe(record.name)}.docx",
                data,
                0,
            )
        else:
            data = await self.pool.run(RECORD_PDF, checklist, record)
            doc = NewDocument(
                KIND_RECORD[record.kind],
                PDF,
                record.name,
                PDF_MEDIA_TYPE,
                f"{_safe(record.name)}.pdf",
                data,
                page_count(data),
            )
        return await self._store(doc, owner, processed)

    async def feedback(
        self, fb: Feedback, fmt: str = PDF, *, owner: Owner, processed: tuple[str, str] | None = None
    ) -> Rendered:
        if fmt == DOCX:
            data = await self.pool.run(FEEDBACK_DOCX, fb)
            doc = NewDocument(KIND_FEEDBACK, DOCX, fb.name, DOCX_MEDIA_TYPE, f"{_safe(fb.name)}.docx", data, 0)
        else:
            data = await self.pool.run(FEEDBACK_PDF, fb)
            doc = NewDocument(
                KIND_FEEDBACK, PDF, fb.name, PDF_MEDIA_TYPE, f"{_safe(fb.name)}.pdf", data, page_count(data)
            )
        return await self._store(doc, owner, processed)

    async def blank(self, kind: str, fmt: str = PDF, *, owner: Owner) -> Rendered:
        """kind: on_site_record | records_review_record | feedback."""
        args: tuple[annex3.Checklist, ...]
        if kind == KIND_FEEDBACK:
            fn_pdf, fn_docx, args = FEEDBACK_PDF, FEEDBACK_DOCX, ()
        else:
            checklist = annex3.CHECKLISTS[next(k for k, v in KIND_RECORD.items() if v == kind)]
            fn_pdf, fn_docx, args = RECORD_PDF, RECORD_DOCX, (checklist,)
        if fmt == DOCX:
            data = await self.pool.run(fn_docx, *args)
            doc = NewDocument(kind, DOCX, BLANK_SUBJECT, DOCX_MEDIA_TYPE, f"blank-{kind}.docx", data, 0)
        else:
            data = await self.pool.run(fn_pdf, *args)
            doc = NewDocument(kind, PDF, BLANK_SUBJECT, PDF_MEDIA_TYPE, f"blank-{kind}.pdf", data, page_count(data))
        return await self._store(doc, owner)

    async def report(self, r: DistrictReport, *, owner: Owner, processed: tuple[str, str] | None = None) -> Rendered:
        data = await self.pool.run(REPORT_PDF, r)
        return await self._store(
            NewDocument(KIND_REPORT, PDF, r.name, PDF_MEDIA_TYPE, f"{_safe(r.name)}.pdf", data, page_count(data)),
            owner,
            processed,
        )

    # -- print runs -------------------------------------------------------------------------------------

    def _payloads(self, badges: list[Badge]) -> list[str]:
        """One volume's QR payloads, signed in one batch (the key lookup may touch the DB: a worker thread)."""
        return [self.payload_for(b) for b in badges]

    async def _render_volume(self, badges: list[Badge], *, title: str, number: int, first: int) -> sheet.Volume:
        payloads = await asyncio.to_thread(self._payloads, badges)
        return await self.pool.run(
            VOLUME_PDF,
            badges,
            payloads,
            title=title,
            number=number,
            first_badge=first,
            time_limit=self.pool.timeout + VOLUME_SECONDS_PER_BADGE * len(badges),
        )

    async def _store_volume(self, vol: sheet.Volume, subject: str, owner: Owner) -> DocumentInfo:
        doc = NewDocument(
            KIND_PRINT_SHEET,
            PDF,
            subject,
            PDF_MEDIA_TYPE,
            f"{_safe(subject)}-vol{vol.number:03d}.pdf",
            vol.pdf,
            2 * vol.sheet_count,
            owner,
        )
        info, _ = await self.db.write(repository.store_document, doc, chunk_size=self.chunk_size, now=self.clock.now())
        if info is None:  # store_document returns None only for an event already handled (`processed`)
            raise RuntimeError("print sheet volume not stored")
        return info

    async def print_run(
        self,
        badges: AsyncIterable[Badge],
        *,
        title: str,
        subject: str,
        owner: Owner,
        volume_badges: int = 0,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> AsyncIterator[DocumentInfo]:
        """Render and store volumes of `badges` (read one volume at a time), yielding each stored document
        in order. Up to one volume per worker renders at once, so memory is bounded by a few volumes, and
        other documents wait for one volume at most (jobs queue in order);
        `on_progress(badges_done, sheets_done)` after each stored volume."""
        per_volume = sheet.volume_size(volume_badges or self.volume_badges)
        running: deque[asyncio.Task[sheet.Volume]] = deque()
        done = 0

        async def finish_oldest() -> DocumentInfo:
            nonlocal done
            vol = await running.popleft()
            info = await self._store_volume(vol, subject, owner)
            done += vol.badge_count
            if on_progress:
                on_progress(done, -(-done // sheet.PER_SHEET))
            return info

        chunk: list[Badge] = []
        first = number = 0
        try:
            async for badge in badges:
                chunk.append(badge)
                if len(chunk) < per_volume:
                    continue
                number += 1
                running.append(asyncio.create_task(self._render_volume(chunk, title=title, number=number, first=first)))
                first += len(chunk)
                chunk = []
                if len(running) >= self.pool.workers:
                    yield await finish_oldest()
            if chunk:
                number += 1
                running.append(asyncio.create_task(self._render_volume(chunk, title=title, number=number, first=first)))
            while running:
                yield await finish_oldest()
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def list_documents(
        self, *, kind: str, subject: str, after: tuple[dt.datetime, str] | None, limit: int, limits: ListScope
    ) -> list[DocumentInfo]:
        return await self.db.read(
            repository.list_documents, kind=kind, subject=subject, after=after, limit=limit, limits=limits
        )

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
