"""What every role uses: display names, the workflow's "today", documents and the notification inbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from bjsv.documents.v1 import documents_pb2 as dpb
from bjsv.notify.v1 import notify_pb2 as npb
from bjsv.registry.v1 import registry_pb2 as rpb
from services.console.backend import Backend
from services.console.identity import Credentials

CITY_CENTRE = "agencies/A"


def district_of(org: str) -> str:
    """`agencies/08` -> "08"; the city centre (and anyone else) sees every district: ""."""
    return org.split("/", 1)[1] if org.startswith("agencies/") and org != CITY_CENTRE else ""


class Names:
    """Display names of agencies (the 17 districts of Table 3 and the city centre): reference data, read once
    per console process with the first user's credentials."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.agencies: dict[str, str] = {}

    async def load(self, creds: Credentials) -> dict[str, str]:
        if not self.agencies:
            resp = await self.backend.call(creds, self.backend.registry.ListAgencies, rpb.ListAgenciesRequest())
            self.agencies = {a.name: a.display_name for a in resp.agencies}
            self.agencies.update({f"district:{a.code}": a.district_name or a.display_name for a in resp.agencies})
        return self.agencies


class WorkflowDay:
    """The supervision workflow's "today" (its clock: Asia/Shanghai, or a test clock when one is fixed) as this
    console process last saw it in a ListOverdue answer. A page whose other calls need that date sends them in
    the same round as ListOverdue with this date, and sends them again only when the answer names another
    day (after midnight, or a test clock moved): one round of calls, and never the host's date."""

    def __init__(self) -> None:
        self.last = ""


@dataclass
class Download:
    file_name: str
    media_type: str
    content: bytes


async def documents(
    backend: Backend, creds: Credentials, subject: str, page_token: str = ""
) -> dpb.ListDocumentsResponse:
    req = dpb.ListDocumentsRequest(subject=subject, page_size=50, page_token=page_token)
    return await backend.call(creds, backend.documents.ListDocuments, req)


async def download(backend: Backend, creds: Credentials, name: str) -> Download:
    parts = await backend.stream(creds, backend.documents.GetDocument, dpb.GetDocumentRequest(name=name))
    doc = next(m.document for m in parts if m.WhichOneof("item") == "document")
    return Download(doc.file_name, doc.media_type, b"".join(m.chunk for m in parts if m.WhichOneof("item") == "chunk"))


BLANK_FORMS = {
    "ON_SITE": dpb.DOCUMENT_KIND_ON_SITE_RECORD,
    "RECORDS_REVIEW": dpb.DOCUMENT_KIND_RECORDS_REVIEW_RECORD,
    "FEEDBACK": dpb.DOCUMENT_KIND_FEEDBACK,
}


async def blank_form(backend: Backend, creds: Credentials, form: str) -> Download:
    """The blank Annex 3 / Annex 4 form as printed (the item texts of each checklist)."""
    req = dpb.RenderBlankFormRequest(kind=BLANK_FORMS[form], format=dpb.DOCUMENT_FORMAT_PDF, include_content=True)
    resp = await backend.call(creds, backend.documents.RenderBlankForm, req)
    return Download(resp.document.file_name, resp.document.media_type, resp.content)


async def inbox(backend: Backend, creds: Credentials, page_token: str = "") -> npb.ListNotificationsResponse:
    recipient = creds.principal.org  # a supervisor's token names the person (supervisors/N) as its org
    req = npb.ListNotificationsRequest(recipient=recipient, page_size=50, page_token=page_token)
    return await backend.call(creds, backend.notify.ListNotifications, req)


async def mark_all_read(backend: Backend, creds: Credentials) -> None:
    recipient = creds.principal.org
    await backend.call(creds, backend.notify.MarkRead, npb.MarkReadRequest(recipient=recipient, all_unread=True))


FORM_TOKENS = uuid.UUID("5b0f3a52-4c0e-4e55-9d1f-6f2a3c8e7d10")  # namespace of the console's form tokens


def request_id(form, *, required: bool = True) -> str:
    """The AIP-155 request_id of a form's submission: its hidden one-time token (rendered with the form, kept
    when the form comes back with errors) as a UUID, so a resubmitted form changes nothing twice."""
    token = form.text("client_request_id", "请求编号", required=required)
    return str(uuid.uuid5(FORM_TOKENS, token)) if token else ""
