"""Badge print sheets (Annex 2 badges imposed on A4 for duplex printing): the district's active badges are
streamed to the documents service one at a time (photos are never all in memory) and its progress comes back
as it imposes them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from bjsv.documents.v1 import documents_pb2 as dpb
from bjsv.registry.v1 import registry_pb2 as rpb
from services.console.backend import Backend, Problem
from services.console.identity import Credentials, call_metadata
from services.console.usecases.shared import district_of

PRINT_TIMEOUT = 1800.0  # seconds: a city-wide run of several thousand badges


@dataclass
class Progress:
    done: int
    total: int
    documents: list[dpb.Document]


async def _badges(backend: Backend, creds: Credentials, district: str, title: str) -> AsyncIterator:
    yield dpb.RenderPrintSheetRequest(
        options=dpb.PrintSheetOptions(title=title, subject=f"print-runs/{district or 'A'}")
    )
    token = ""
    while True:
        req = rpb.ListBadgesRequest(district_code=district, status=rpb.BADGE_STATUS_ACTIVE, page_size=500,
                                    page_token=token)  # fmt: skip
        page = await backend.call(creds, backend.registry.ListBadges, req)
        for basic in page.badges:
            full = rpb.GetBadgeRequest(name=basic.name, view=rpb.VIEW_FULL)
            b = (await backend.call(creds, backend.registry.GetBadge, full)).badge
            internal = b.type == rpb.SUPERVISOR_TYPE_INTERNAL
            yield dpb.RenderPrintSheetRequest(badge=dpb.BadgeData(
                code=b.code, holder_name=b.holder_name, valid_from=b.valid_from, valid_until=b.valid_until,
                validity_text=b.validity_text, issuer=b.issuer, issuer_name=b.issuer_name, photo=b.photo,
                issuer_seal=b.issuer_seal, issuer_logo=b.issuer_logo,
                category=dpb.SUPERVISOR_CATEGORY_INTERNAL if internal else dpb.SUPERVISOR_CATEGORY_EXTERNAL,
            ))  # fmt: skip
        token = page.next_page_token
        if not token:
            return


async def active_badge_count(backend: Backend, creds: Credentials) -> int:
    req = rpb.ListBadgesRequest(district_code=district_of(creds.principal.org), status=rpb.BADGE_STATUS_ACTIVE,
                                page_size=1)  # fmt: skip
    return (await backend.call(creds, backend.registry.ListBadges, req)).total_size


async def print_sheets(backend: Backend, creds: Credentials, title: str) -> AsyncIterator[Progress]:
    """Yields progress (every 100 badges, as the documents service reports it) and, last, the volumes."""
    total = await active_badge_count(backend, creds)
    documents: list[dpb.Document] = []
    call = backend.documents.RenderPrintSheet(
        _badges(backend, creds, district_of(creds.principal.org), title),
        metadata=call_metadata(creds),
        timeout=PRINT_TIMEOUT,
    )
    try:
        async for resp in call:
            if resp.WhichOneof("item") == "progress":
                yield Progress(resp.progress.badges_done, total, documents)
            else:
                documents.append(resp.document)
    except grpc.aio.AioRpcError as e:
        raise Problem.from_rpc_error(e) from None
    yield Progress(total, total, documents)
