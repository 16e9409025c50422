"""gRPC servicer of the documents service: thin, proto <-> domain (from_proto_* / to_proto_*)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_status import rpc_status

from bjsv.documents.v1 import documents_pb2 as pb
from bjsv.documents.v1 import documents_pb2_grpc
from common import api
from common.auth import scope
from common.context import current_caller
from common.errors import DomainError, FieldViolation, InvalidArgument, NotFound, to_status
from services.documents.domain import annex3, sheet, signing
from services.documents.domain.annex3 import ChecklistKind
from services.documents.domain.model import (
    Badge,
    ChecklistAnswer,
    DistrictReport,
    Feedback,
    ItemCount,
    LateSubmission,
    SupervisionRecord,
    SupervisorCategory,
)
from services.documents.rendering import (
    DOCX,
    KIND_FEEDBACK,
    KIND_RECORD,
    PDF,
    DocumentRenderer,
)
from services.documents.storage.repository import DocumentInfo

log = logging.getLogger(__name__)
SERVICE = "documents"
DEFAULT_CHUNK = 256 * 1024
MAX_CHUNK = 1024 * 1024

_KIND_TO_PROTO = {
    "badge": pb.DOCUMENT_KIND_BADGE,
    "print_sheet": pb.DOCUMENT_KIND_PRINT_SHEET,
    "on_site_record": pb.DOCUMENT_KIND_ON_SITE_RECORD,
    "records_review_record": pb.DOCUMENT_KIND_RECORDS_REVIEW_RECORD,
    "feedback": pb.DOCUMENT_KIND_FEEDBACK,
    "district_report": pb.DOCUMENT_KIND_DISTRICT_REPORT,
}
_KIND_FROM_PROTO = {v: k for k, v in _KIND_TO_PROTO.items()}
_FORM = {
    pb.SUPERVISION_FORM_ON_SITE: ChecklistKind.ON_SITE,
    pb.SUPERVISION_FORM_RECORDS_REVIEW: ChecklistKind.RECORDS_REVIEW,
}


# Free text printed on the forms; longer input is refused before any rendering (issue #13 item 4).


def _invalid(reason: str, field: str, description: str) -> InvalidArgument:
    return InvalidArgument(reason, [FieldViolation(field, description)])


def _format(value: int) -> str:
    return DOCX if value == pb.DOCUMENT_FORMAT_DOCX else PDF


def _month(value: str, field: str) -> str:
    """'YYYY-MM' (a full date 'YYYY-MM-DD' is accepted and cut to its month, D4)."""
    v = value[:7]
    try:
        dt.date.fromisoformat(v + "-01")
    except ValueError:
        raise _invalid("BAD_MONTH", field, f"月份格式应为 YYYY-MM：{value}") from None
    return v


def _rendered_for(relayed: scope.Owner | None = None) -> scope.Owner:
    """Issue #12: a document rendered over the API belongs to the caller's verified organisation, never to
    one named in the body; only a service relaying what an official decided passes the owner it knows."""
    caller = current_caller()
    if "service" in caller.roles:
        return relayed or scope.Owner()
    return scope.Owner.of(caller.org)


def _after(token: str) -> tuple[dt.datetime, str] | None:
    """The keyset position (created_at, id) of the last document of the previous page."""
    listing = "documents.ListDocuments"
    position = api.decode_page_token(token, listing=listing, kind=list)
    if position is None:
        return None
    try:
        created, doc_id = position
        return dt.datetime.fromisoformat(created), str(doc_id)
    except (TypeError, ValueError):
        raise _invalid(api.PAGE_TOKEN, "page_token", "分页标记无效：请使用上一页返回的next_page_token") from None


def to_proto_document(info: DocumentInfo) -> pb.Document:
    ts = Timestamp()
    ts.FromDatetime(info.created_at.astimezone(dt.UTC) if info.created_at.tzinfo else info.created_at)
    return pb.Document(
        name=info.name,
        kind=_KIND_TO_PROTO.get(info.kind, pb.DOCUMENT_KIND_UNSPECIFIED),
        format=pb.DOCUMENT_FORMAT_DOCX if info.format == DOCX else pb.DOCUMENT_FORMAT_PDF,
        subject=info.subject,
        media_type=info.media_type,
        size_bytes=info.size_bytes,
        sha256=info.sha256,
        page_count=info.page_count,
        create_time=ts,
        file_name=info.file_name,
    )


def from_proto_badge(m: pb.BadgeData, field: str = "badge") -> Badge:
    required = ["code", "holder_name", "issuer", "issuer_name"]
    if not m.validity_text:
        required += ["valid_from", "valid_until"]
    missing = [f for f in required if not getattr(m, f).strip()]
    if missing:
        raise InvalidArgument(
            "BADGE_INCOMPLETE", [FieldViolation(f"{field}.{f}", "证卡必填项为空（附件2）") for f in missing]
        )
    if "|" in m.code or "|" in m.issuer:
        raise _invalid("BAD_CHARACTER", f"{field}.code", "证卡编号或颁证机构含非法字符“|”")
    category = {
        pb.SUPERVISOR_CATEGORY_EXTERNAL: SupervisorCategory.EXTERNAL,
        pb.SUPERVISOR_CATEGORY_INTERNAL: SupervisorCategory.INTERNAL,
    }.get(m.category)
    validity = m.validity_text.strip()
    if validity and ("|" in validity or len(validity) > 40):
        raise _invalid("BAD_VALIDITY", f"{field}.validity_text", "有效期限格式应为 YYYY.MM-YYYY.MM（D4）")
    return Badge(
        code=m.code.strip(),
        holder_name=m.holder_name.strip(),
        valid_from=_month(m.valid_from, f"{field}.valid_from") if m.valid_from else "",
        valid_until=_month(m.valid_until, f"{field}.valid_until") if m.valid_until else "",
        issuer=m.issuer.strip(),
        issuer_name=m.issuer_name.strip(),
        category=category,
        level=m.level,
        photo=m.photo,
        issuer_seal=m.issuer_seal,
        issuer_logo=m.issuer_logo,
        validity=validity,
    )


def from_proto_record(m: pb.SupervisionRecordData) -> SupervisionRecord:
    kind = _FORM.get(m.form)
    if kind is None:
        raise _invalid("FORM_REQUIRED", "record.form", "请指明督导形式：现场督导或事后认定材料督导（第十九条）")
    if not m.name:
        raise _invalid("NAME_REQUIRED", "record.name", "督导记录表的资源名不能为空")
    checklist = annex3.CHECKLISTS[kind]
    answers = []
    for a in m.answers:
        if a.item not in checklist.numbers:
            raise _invalid("UNKNOWN_ITEM", "record.answers", f"第{a.item}项不在附件3{checklist.subtitle}的项目范围内")
        answers.append(ChecklistAnswer(a.item, a.compliant, a.remark))
    return SupervisionRecord(
        name=m.name,
        kind=kind,
        institution_name=m.institution_name,
        plan_name=m.plan_name,
        assessment_method=m.assessment_method,
        answers=tuple(answers),
        problems=m.problems,
        supervisor_names=tuple(m.supervisor_names),
        signed_date=api.parse_optional_date(m.signed_date, "record.signed_date"),
        institution_head_name=m.institution_head_name,
    )


def _time(ts: Timestamp, present: bool) -> dt.datetime | None:
    return ts.ToDatetime(tzinfo=dt.UTC) if present else None


def from_proto_feedback(m: pb.FeedbackData) -> Feedback:
    if not m.name:
        raise _invalid("NAME_REQUIRED", "feedback.name", "反馈表的资源名不能为空")
    entry = _time(m.entry_time, m.HasField("entry_time"))
    exit_ = _time(m.exit_time, m.HasField("exit_time"))
    if entry and exit_ and exit_ < entry:
        raise _invalid("EXIT_BEFORE_ENTRY", "feedback.exit_time", "外督员离场时间不得早于进场时间（D12）")
    return Feedback(
        name=m.name,
        reporting_unit=m.reporting_unit,
        supervisor_name=m.supervisor_name,
        entry_time=entry,
        exit_time=exit_,
        badge_worn=m.badge_worn,
        duties_performed=m.duties_performed,
        integrity_kept=m.integrity_kept,
        comments=m.comments,
        signed_by=m.signed_by,
        signed_date=api.parse_optional_date(m.signed_date, "feedback.signed_date"),
    )


def from_proto_report(m: pb.DistrictReportData) -> DistrictReport:
    if not m.name or not m.district_code:
        raise _invalid("NAME_REQUIRED", "report.name", "半月报的资源名和区划代码不能为空")
    start = api.parse_optional_date(m.period_start, "report.period_start")
    end = api.parse_optional_date(m.period_end, "report.period_end")
    if start is None or end is None or end < start:
        raise _invalid("BAD_PERIOD", "report.period_end", "报告期起止日期无效（D10）")
    counts = []
    for c in m.non_compliant_counts:
        kind = _FORM.get(c.form)
        if kind is None or c.item not in annex3.CHECKLISTS[kind].numbers:
            raise _invalid("UNKNOWN_ITEM", "report.non_compliant_counts", f"无效的督导项目：{c.form}/{c.item}")
        counts.append(ItemCount(kind, c.item, c.count))
    late = tuple(
        LateSubmission(
            s.record,
            s.institution_name,
            api.parse_optional_date(s.due_date, "report.late_submissions"),
            api.parse_optional_date(s.submitted_date, "report.late_submissions"),
        )
        for s in m.late_submissions
    )
    return DistrictReport(
        name=m.name,
        district_code=m.district_code,
        district_name=m.district_name,
        period_start=start,
        period_end=end,
        on_site_count=m.on_site_count,
        records_review_count=m.records_review_count,
        non_compliant_counts=tuple(counts),
        late_submissions=late,
        cases_opened=m.cases_opened,
        cases_decided=m.cases_decided,
        report_date=api.parse_optional_date(m.report_date, "report.report_date"),
        late_record_count=m.late_record_count,
        late_feedback_count=m.late_feedback_count,
        feedback_count=m.feedback_count,
        dispatches_created=m.dispatches_created,
    )


class DocumentsServicer(documents_pb2_grpc.DocumentsServiceServicer):
    def __init__(self, renderer: DocumentRenderer, *, default_chunk: int = DEFAULT_CHUNK) -> None:
        self.renderer = renderer
        self.default_chunk = default_chunk

    async def RenderBadge(self, request, context):
        # an institution renders the badges it issues itself (第十二条), the city centre any (第十一条)
        scope.require(scope.Owner.of(request.badge.issuer), request.badge.code or "badge")
        badge = from_proto_badge(request.badge)
        rendered, payload = await self.renderer.badge(badge, owner=_rendered_for(scope.Owner.of(badge.issuer)))
        return pb.RenderBadgeResponse(
            document=to_proto_document(rendered.stored),
            verification_payload=payload,
            content=rendered.content if request.include_content else b"",
        )

    async def RenderSupervisionRecord(self, request, context):
        r = await self.renderer.record(
            from_proto_record(request.record), _format(request.format), owner=_rendered_for()
        )
        return pb.RenderSupervisionRecordResponse(
            document=to_proto_document(r.stored), content=r.content if request.include_content else b""
        )

    async def RenderFeedback(self, request, context):
        r = await self.renderer.feedback(
            from_proto_feedback(request.feedback), _format(request.format), owner=_rendered_for()
        )
        return pb.RenderFeedbackResponse(
            document=to_proto_document(r.stored), content=r.content if request.include_content else b""
        )

    async def RenderBlankForm(self, request, context):
        kinds = {
            pb.DOCUMENT_KIND_ON_SITE_RECORD: KIND_RECORD[ChecklistKind.ON_SITE],
            pb.DOCUMENT_KIND_RECORDS_REVIEW_RECORD: KIND_RECORD[ChecklistKind.RECORDS_REVIEW],
            pb.DOCUMENT_KIND_FEEDBACK: KIND_FEEDBACK,
        }
        if request.kind not in kinds:
            raise _invalid("NOT_A_FORM", "kind", "空白表仅限附件3（两种督导记录表）和附件4")
        r = await self.renderer.blank(kinds[request.kind], _format(request.format), owner=_rendered_for())
        return pb.RenderBlankFormResponse(
            document=to_proto_document(r.stored), content=r.content if request.include_content else b""
        )

    async def RenderDistrictReport(self, request, context):
        report = from_proto_report(request.report)
        r = await self.renderer.report(report, owner=_rendered_for(scope.Owner.of(f"agencies/{report.district_code}")))
        return pb.RenderDistrictReportResponse(
            document=to_proto_document(r.stored), content=r.content if request.include_content else b""
        )

    async def GetDocument(self, request, context):
        doc_id = api.parse_name(request.name, "documents")
        if request.chunk_size < 0 or request.chunk_size > MAX_CHUNK:
            raise _invalid("BAD_CHUNK_SIZE", "chunk_size", "分块大小应在 1 字节至 1 MiB 之间")
        info = await self.renderer.read_document(doc_id)
        if info is None:
            raise NotFound(request.name)
        scope.require(info.owner, request.name)  # as the registry: missing → NOT_FOUND, not ours → PERMISSION_DENIED
        yield pb.GetDocumentResponse(document=to_proto_document(info))
        async for chunk in self.renderer.iter_chunks(info, request.chunk_size or self.default_chunk):
            yield pb.GetDocumentResponse(chunk=chunk)

    async def ListDocuments(self, request, context):
        size = api.page_size(request.page_size)
        # newest first, keyset-paged on (created_at, id) and filtered to the caller's scope in the query
        rows = await self.renderer.list_documents(
            kind=_KIND_FROM_PROTO.get(request.kind, ""),
            subject=request.subject,
            after=_after(request.page_token),
            limit=size + 1,
            limits=scope.list_scope(),
        )
        token = ""
        if len(rows) > size:
            rows, last = rows[:size], rows[size - 1]
            token = api.encode_page_token([last.created_at.isoformat(), last.id], listing="documents.ListDocuments")
        return pb.ListDocumentsResponse(documents=[to_proto_document(r) for r in rows], next_page_token=token)

    async def GetIssuerPublicKey(self, request, context):
        if not request.issuer:
            raise _invalid("ISSUER_REQUIRED", "issuer", "请指明颁证机构，如 agencies/A")
        info = await self.renderer.public_key(request.issuer)
        if info is None:
            raise NotFound(f"{request.issuer}/keys", f"颁证机构 {request.issuer} 尚未签发过证卡（无签名密钥）")
        return pb.GetIssuerPublicKeyResponse(
            issuer=info.issuer,
            public_key=info.public_key,
            public_key_pem=signing.public_pem(info.public_key),
            key_id=info.key_id,
        )

    async def VerifyBadgePayload(self, request, context):
        result = await self.renderer.verify(request.payload, holder_name=request.holder_name)
        f = result.fields
        return pb.VerifyBadgePayloadResponse(
            valid=result.valid,
            reason=result.reason,
            code=f.code if f else "",
            issuer=f.issuer if f else "",
            validity=f.validity if f else "",
            key_id=f.key_id if f else "",
        )

    async def RenderPrintSheet(self, request_iterator, context):
        """Bidirectional stream; the caller is authenticated by common.server's interceptor, this handler maps
        domain errors itself (same mapping)."""
        try:
            async for item in self._print_sheet(request_iterator):
                yield item
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except DomainError as e:
            await context.abort_with_status(rpc_status.to_status(to_status(e, service=SERVICE)))

    async def _print_sheet(self, request_iterator):
        first = await anext(aiter(request_iterator), None)
        if first is None or not first.HasField("options"):
            raise _invalid("OPTIONS_FIRST", "options", "第一条消息必须是打印选项（PrintSheetOptions）")
        options = first.options
        if options.max_badges_per_volume < 0:
            raise _invalid("BAD_VOLUME", "options.max_badges_per_volume", "每册证卡数不能为负数")

        async def badges():
            """Read lazily: gRPC flow control holds a fast client back while volumes render."""
            index = 0
            async for req in request_iterator:
                if not req.HasField("badge"):
                    raise _invalid("OPTIONS_ONCE", "options", "打印选项只能在第一条消息中发送一次")
                yield from_proto_badge(req.badge, field=f"badge[{index}]")
                index += 1

        progress: list[pb.PrintSheetProgress] = []
        run = self.renderer.print_run(
            badges(),
            title=options.title or sheet.DEFAULT_TITLE,
            subject=options.subject or "print-runs/adhoc",
            owner=_rendered_for(),
            volume_badges=options.max_badges_per_volume,
            on_progress=lambda done, sheets: progress.append(
                pb.PrintSheetProgress(badges_done=done, sheets_done=sheets)
            ),
        )
        async for info in run:
            while progress:
                yield pb.RenderPrintSheetResponse(progress=progress.pop(0))
            yield pb.RenderPrintSheetResponse(document=to_proto_document(info))


__all__ = ["DocumentsServicer", "from_proto_badge", "to_proto_document"]
