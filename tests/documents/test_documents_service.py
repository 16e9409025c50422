"""The documents service over a real gRPC channel: render, store with digest, stream back, verify, events."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import uuid

import docx
import grpc
import pytest
from documents_helpers import PT_PER_MM, lines_of, photo_bytes, plumber, seal_bytes
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from bjsv.documents.v1 import documents_pb2 as pb
from bjsv.documents.v1 import events_pb2 as doc_events
from bjsv.events.v1 import envelope_pb2
from bjsv.registry.v1 import supervision_events_pb2, supervision_pb2
from services.documents import events
from services.documents.domain import annex3, forms, signing

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def wait_until_handled(js, durable: str, stream_seq: int, limit: float = 30.0) -> None:
    """Wait until the consumer has acknowledged the message at `stream_seq`: "nothing more happened" is then
    an observed fact, not a guess after a fixed sleep."""
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        info = await js.consumer_info("BJSV_REGISTRY", durable)
        if info.ack_floor.stream_seq >= stream_seq:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{durable} did not handle message {stream_seq}"
        await asyncio.sleep(0.05)


def badge_msg(code="R1122A001", name="张三", **kw) -> pb.BadgeData:
    base = dict(
        code=code,
        holder_name=name,
        valid_from="2022-06",
        valid_until="2025-06",
        issuer="agencies/A",
        issuer_name="北京市职业技能鉴定管理中心",
        photo=photo_bytes(),
        issuer_seal=seal_bytes(),
    )
    base.update(kw)
    return pb.BadgeData(**base)


async def fetch(stub, name: str, chunk_size: int = 0) -> tuple[pb.Document, bytes, int]:
    meta, chunks = None, []
    async for item in stub.GetDocument(pb.GetDocumentRequest(name=name, chunk_size=chunk_size)):
        if item.HasField("document"):
            meta = item.document
        else:
            chunks.append(item.chunk)
    return meta, b"".join(chunks), len(chunks)


async def test_render_badge_stores_it_with_digest_and_get_document_streams_it_back_in_chunks(docs_env):
    resp = await docs_env.stub.RenderBadge(pb.RenderBadgeRequest(badge=badge_msg(), include_content=True))
    doc = resp.document
    assert doc.name.startswith("documents/") and doc.kind == pb.DOCUMENT_KIND_BADGE
    assert doc.subject == "badges/R1122A001" and doc.media_type == "application/pdf" and doc.page_count == 2
    assert doc.sha256 == hashlib.sha256(resp.content).hexdigest() and doc.size_bytes == len(resp.content)
    meta, content, n_chunks = await fetch(docs_env.stub, doc.name, chunk_size=10_000)
    assert content == resp.content and meta.sha256 == doc.sha256
    assert n_chunks == -(-len(content) // 10_000)
    page = plumber(content).pages[0]
    assert page.width / PT_PER_MM == pytest.approx(80) and page.height / PT_PER_MM == pytest.approx(110)
    assert "证卡编号：R1122A001" in [t for _, t in lines_of(page)]


async def test_same_badge_renders_to_the_same_stored_document(docs_env):
    a = await docs_env.stub.RenderBadge(pb.RenderBadgeRequest(badge=badge_msg(code="R1122A002")))
    b = await docs_env.stub.RenderBadge(pb.RenderBadgeRequest(badge=badge_msg(code="R1122A002")))
    assert a.document.name == b.document.name and a.document.sha256 == b.document.sha256
    assert a.verification_payload == b.verification_payload


async def test_document_rendered_event_carries_id_kind_subject_and_digest(docs_env):
    sub = await docs_env.js.subscribe(
        "bjsv.documents.document.rendered", stream="BJSV_DOCUMENTS", ordered_consumer=True
    )
    code = "R1122A0" + uuid.uuid4().hex[:2].upper()
    resp = await docs_env.stub.RenderBadge(pb.RenderBadgeRequest(badge=badge_msg(code=code)))
    deadline = asyncio.get_running_loop().time() + 10
    found = None
    while found is None and asyncio.get_running_loop().time() < deadline:
        msg = await sub.next_msg(timeout=5)
        env = envelope_pb2.EventEnvelope.FromString(msg.data)
        payload = doc_events.DocumentRendered()
        env.payload.Unpack(payload)
        if payload.document == resp.document.name:
            found = (env, payload)
    await sub.unsubscribe()
    env, payload = found
    assert env.type == "document.rendered" and env.source == "documents" and env.subject == resp.document.name
    assert (payload.kind, payload.subject, payload.sha256, payload.format) == (
        "badge",
        f"badges/{code}",
        resp.document.sha256,
        "pdf",
    )


async def test_badge_payload_verifies_by_rpc_and_offline_with_the_published_public_key(docs_env):
    resp = await docs_env.stub.RenderBadge(pb.RenderBadgeRequest(badge=badge_msg()))
    payload = resp.verification_payload
    v = await docs_env.stub.VerifyBadgePayload(pb.VerifyBadgePayloadRequest(payload=payload, holder_name="张三"))
    assert v.valid and (v.code, v.issuer, v.validity) == ("R1122A001", "agencies/A", "2022.06-2025.06")
    key = await docs_env.stub.GetIssuerPublicKey(pb.GetIssuerPublicKeyRequest(issuer="agencies/A"))
    assert key.key_id == v.key_id
    public = signing.load_public_key(key.public_key_pem)
    assert signing.verify_payload(payload, lambda issuer, kid: public).valid
    forged = payload[:-3] + ("AAA" if not payload.endswith("AAA") else "BBB")
    bad = await docs_env.stub.VerifyBadgePayload(pb.VerifyBadgePayloadRequest(payload=forged))
    assert not bad.valid and bad.reason in ("BAD_SIGNATURE", "MALFORMED")
    other = await docs_env.stub.VerifyBadgePayload(pb.VerifyBadgePayloadRequest(payload=payload, holder_name="李四"))
    assert other.reason == "NAME_MISMATCH"


async def test_each_issuer_gets_its_own_key_and_unknown_issuer_is_not_found(docs_env):
    await docs_env.stub.RenderBadge(
        pb.RenderBadgeRequest(
            badge=badge_msg(
                code="Y112001220001", issuer="institutions/1100012001", issuer_name="北京某某电力设备有限公司"
            )
        )
    )
    a = await docs_env.stub.GetIssuerPublicKey(pb.GetIssuerPublicKeyRequest(issuer="agencies/A"))
    b = await docs_env.stub.GetIssuerPublicKey(pb.GetIssuerPublicKeyRequest(issuer="institutions/1100012001"))
    assert a.key_id != b.key_id
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await docs_env.stub.GetIssuerPublicKey(pb.GetIssuerPublicKeyRequest(issuer="agencies/99"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


async def test_incomplete_badge_is_invalid_argument_with_field_violations(docs_env):
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await docs_env.stub.RenderBadge(pb.RenderBadgeRequest(badge=pb.BadgeData(code="R1122A001")))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(e.value)
    fields = set()
    for d in status.details:
        if d.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            d.Unpack(br)
            fields |= {v.field for v in br.field_violations}
    assert {"badge.holder_name", "badge.issuer", "badge.valid_from"} <= fields


async def test_unknown_document_is_not_found(docs_env):
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await fetch(docs_env.stub, "documents/nope")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


async def test_print_sheet_stream_returns_progress_and_one_document_per_volume(docs_env):
    subject = f"print-runs/{uuid.uuid4().hex[:8]}"

    async def requests():
        yield pb.RenderPrintSheetRequest(
            options=pb.PrintSheetOptions(title="测试批次", max_badges_per_volume=4, subject=subject)
        )
        for i in range(10):
            yield pb.RenderPrintSheetRequest(badge=badge_msg(code=f"R1122A{i + 1:03d}", name=f"督导员{i + 1}"))

    docs, progress = [], []
    async for resp in docs_env.stub.RenderPrintSheet(requests()):
        if resp.HasField("document"):
            docs.append(resp.document)
        else:
            progress.append((resp.progress.badges_done, resp.progress.sheets_done))
    assert len(docs) == 3 and all(d.kind == pb.DOCUMENT_KIND_PRINT_SHEET for d in docs)
    assert [d.page_count for d in docs] == [2, 2, 2]
    assert progress[-1] == (10, 3)
    listed = await docs_env.stub.ListDocuments(
        pb.ListDocumentsRequest(kind=pb.DOCUMENT_KIND_PRINT_SHEET, subject=subject)
    )
    assert {d.name for d in listed.documents} == {d.name for d in docs}
    paged, token = [], ""
    while True:
        page = await docs_env.stub.ListDocuments(
            pb.ListDocumentsRequest(subject=subject, page_size=2, page_token=token)
        )
        paged += [d.name for d in page.documents]
        token = page.next_page_token
        if not token:
            break
    assert sorted(paged) == sorted(d.name for d in docs) and len(paged) == 3
    _, content, _ = await fetch(docs_env.stub, docs[0].name)
    text = "".join(t for _, t in lines_of(plumber(content).pages[0]))
    assert "测试批次" in text and "R1122A001 – R1122A004" in text


async def test_print_sheet_rejects_a_stream_without_options_first(docs_env):
    async def requests():
        yield pb.RenderPrintSheetRequest(badge=badge_msg())

    with pytest.raises(grpc.aio.AioRpcError) as e:
        async for _ in docs_env.stub.RenderPrintSheet(requests()):
            pass
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_print_sheet_rejects_an_incomplete_badge_mid_stream(docs_env):
    async def requests():
        yield pb.RenderPrintSheetRequest(options=pb.PrintSheetOptions(subject="print-runs/bad"))
        yield pb.RenderPrintSheetRequest(badge=badge_msg())
        yield pb.RenderPrintSheetRequest(badge=pb.BadgeData(code="R1122A009"))

    with pytest.raises(grpc.aio.AioRpcError) as e:
        async for _ in docs_env.stub.RenderPrintSheet(requests()):
            pass
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def record_msg(name="records/17") -> pb.SupervisionRecordData:
    answers = [
        pb.ChecklistAnswer(item=n, compliant=n != 12, remark="两名考务人员未佩戴工作证卡" if n == 12 else "")
        for n in range(1, 18)
    ]
    return pb.SupervisionRecordData(
        name=name,
        form=pb.SUPERVISION_FORM_ON_SITE,
        institution_name="北京市海淀区某某职业技能培训学校",
        plan_name="2026年第3期电工",
        assessment_method="理论知识考试",
        answers=answers,
        problems="见备注",
        supervisor_names=["李四", "王五"],
        signed_date="2026-03-05",
        institution_head_name="赵六",
    )


async def test_record_renders_as_pdf_and_editable_docx(docs_env):
    pdf = await docs_env.stub.RenderSupervisionRecord(
        pb.RenderSupervisionRecordRequest(record=record_msg(), include_content=True)
    )
    assert pdf.document.kind == pb.DOCUMENT_KIND_ON_SITE_RECORD and pdf.document.page_count == 1
    page = plumber(pdf.content).pages[0]
    column = page.crop((forms.COL_CONTENT, 0, forms.COL_YES, page.height)).extract_text().replace("\n", "")
    assert all(item.numbered_text in column for item in annex3.ON_SITE.items)
    d = await docs_env.stub.RenderSupervisionRecord(
        pb.RenderSupervisionRecordRequest(record=record_msg(), format=pb.DOCUMENT_FORMAT_DOCX, include_content=True)
    )
    assert d.document.format == pb.DOCUMENT_FORMAT_DOCX and d.document.file_name == "records-17.docx"
    table = docx.Document(io.BytesIO(d.content)).tables[0]
    assert (table.rows[14].cells[3].text, table.rows[14].cells[4].text) == ("☐是", "☑否")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await docs_env.stub.RenderSupervisionRecord(
            pb.RenderSupervisionRecordRequest(
                record=pb.SupervisionRecordData(
                    name="records/1",
                    form=pb.SUPERVISION_FORM_RECORDS_REVIEW,
                    answers=[pb.ChecklistAnswer(item=17, compliant=True)],
                )
            )
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_feedback_blank_forms_and_report_render(docs_env):
    t0, t1 = Timestamp(), Timestamp()
    t0.FromJsonString("2026-03-05T00:30:00Z")
    t1.FromJsonString("2026-03-05T09:10:00Z")
    fb = await docs_env.stub.RenderFeedback(
        pb.RenderFeedbackRequest(
            feedback=pb.FeedbackData(
                name="feedback/5",
                reporting_unit="某某学校",
                supervisor_name="李四",
                entry_time=t0,
                exit_time=t1,
                badge_worn=True,
                duties_performed=True,
                integrity_kept=True,
            ),
            include_content=True,
        )
    )
    text = "".join(t for _, t in lines_of(plumber(fb.content).pages[0]))
    assert "2026年3月5日 08:30" in text and "2026年3月5日 17:10" in text  # shown in Beijing time
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await docs_env.stub.RenderFeedback(
            pb.RenderFeedbackRequest(feedback=pb.FeedbackData(name="feedback/6", entry_time=t1, exit_time=t0))
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for kind in (pb.DOCUMENT_KIND_ON_SITE_RECORD, pb.DOCUMENT_KIND_RECORDS_REVIEW_RECORD, pb.DOCUMENT_KIND_FEEDBACK):
        for fmt in (pb.DOCUMENT_FORMAT_PDF, pb.DOCUMENT_FORMAT_DOCX):
            r = await docs_env.stub.RenderBlankForm(pb.RenderBlankFormRequest(kind=kind, format=fmt))
            assert r.document.subject == "forms/blank" and r.document.kind == kind and r.document.format == fmt
    rep = await docs_env.stub.RenderDistrictReport(
        pb.RenderDistrictReportRequest(
            report=pb.DistrictReportData(
                name="reports/08/2026-03-1",
                district_code="08",
                district_name="海淀区",
                period_start="2026-03-01",
                period_end="2026-03-15",
                on_site_count=3,
                non_compliant_counts=[pb.ItemCount(form=pb.SUPERVISION_FORM_ON_SITE, item=12, count=2)],
                late_record_count=1,
            ),
            include_content=True,
        )
    )
    text = "".join(t for p in plumber(rep.content).pages for _, t in lines_of(p))
    assert "报告期：2026年3月1日—2026年3月15日" in text and "逾期提交督导记录表1份" in text


def envelope(event_type: str, subject: str, payload) -> envelope_pb2.EventEnvelope:
    env = envelope_pb2.EventEnvelope(event_id=str(uuid.uuid4()), type=event_type, source="registry", subject=subject)
    env.occurred_time.GetCurrentTime()
    env.payload.Pack(payload)
    return env


async def wait_for_document(stub, subject: str) -> list[pb.Document]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while loop.time() < deadline:
        listed = await stub.ListDocuments(pb.ListDocumentsRequest(subject=subject))
        if listed.documents:
            return list(listed.documents)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no document for {subject}")


async def test_submitted_record_event_renders_its_annex3_pdf_once(docs_env):
    name = f"records/{uuid.uuid4().int % 10**6}"
    answers = [
        supervision_pb2.ChecklistAnswer(item_number=n, answer=supervision_pb2.ANSWER_VALUE_YES) for n in range(1, 17)
    ]
    answers[11] = supervision_pb2.ChecklistAnswer(
        item_number=12, answer=supervision_pb2.ANSWER_VALUE_NO, remark="拒绝提供考场记录"
    )
    record = supervision_pb2.SupervisionRecord(
        name=name,
        version=1,
        form=supervision_pb2.SUPERVISION_FORM_RECORDS_REVIEW,
        institution_name="北京某某评价机构",
        plan_title="2026年第2期",
        certification_mode_text="理论知识考试",
        answers=answers,
        supervisor_signatures=["李四"],
        sign_date="2026-03-06",
    )
    env = envelope("record.submitted", name, supervision_events_pb2.RecordSubmitted(record=record))
    await docs_env.js.publish(
        "bjsv.registry.record.submitted", env.SerializeToString(), headers={"Nats-Msg-Id": env.event_id}
    )
    # a second delivery of the same content under another event id stores nothing new
    env2 = envelope("record.submitted", name, supervision_events_pb2.RecordSubmitted(record=record))
    second = await docs_env.js.publish(
        "bjsv.registry.record.submitted", env2.SerializeToString(), headers={"Nats-Msg-Id": env2.event_id}
    )
    docs = await wait_for_document(docs_env.stub, name)
    await wait_until_handled(docs_env.js, events.DURABLE_RECORD, second.seq)
    docs = (await docs_env.stub.ListDocuments(pb.ListDocumentsRequest(subject=name))).documents
    assert len(docs) == 1 and docs[0].kind == pb.DOCUMENT_KIND_RECORDS_REVIEW_RECORD
    _, content, _ = await fetch(docs_env.stub, docs[0].name)
    page = plumber(content).pages[0]
    text = "".join(t for _, t in lines_of(page))
    remarks = page.crop((forms.COL_REMARK, 0, forms.COL_END, page.height)).extract_text().replace("\n", "")
    assert "（事后认定材料督导）" in text and "拒绝提供考场记录" in remarks


async def test_feedback_and_period_closed_events_render_annex4_and_the_report(docs_env):
    fb = supervision_pb2.SupervisorFeedback(
        name="feedback/77",
        supervisor_name="李四",
        institution_name="某某学校",
        badge_worn=supervision_pb2.ANSWER_VALUE_YES,
        duties_performed=supervision_pb2.ANSWER_VALUE_NO,
        integrity_kept=supervision_pb2.ANSWER_VALUE_YES,
        signed_by="王五",
        submit_time=Timestamp(seconds=int(dt.datetime(2026, 3, 6, 16, 30, tzinfo=dt.UTC).timestamp())),
    )
    env = envelope("feedback.submitted", fb.name, supervision_events_pb2.FeedbackSubmitted(feedback=fb))
    await docs_env.js.publish("bjsv.registry.feedback.submitted", env.SerializeToString())
    report = supervision_pb2.DistrictReport(
        name="reports/05/2026-03-2",
        district="05",
        district_name="朝阳区",
        period_start="2026-03-16",
        period_end="2026-03-31",
        supervisions_by_form=[supervision_pb2.FormCount(form=supervision_pb2.SUPERVISION_FORM_ON_SITE, count=4)],
        no_counts=[supervision_pb2.ItemNoCount(form=supervision_pb2.SUPERVISION_FORM_ON_SITE, item_number=12, count=2)],
        late_records=1,
        cases_opened=1,
    )
    env = envelope("period.closed", report.name, supervision_events_pb2.PeriodClosed(report=report))
    await docs_env.js.publish("bjsv.registry.period.closed", env.SerializeToString())
    (fdoc,) = await wait_for_document(docs_env.stub, "feedback/77")
    _, content, _ = await fetch(docs_env.stub, fdoc.name)
    lines = [t for _, t in lines_of(plumber(content).pages[0])]
    assert any(t.startswith("2. 是否认真履行职责") and t.endswith("☐是☑否") for t in lines)
    # 附件4 填报单位（盖章/签字）: the signer and the Beijing date of submission (16:30 UTC is the next day there)
    assert "填报单位（盖章/签字）：某某学校（签字：王五　2026年3月7日）" in lines
    (rdoc,) = await wait_for_document(docs_env.stub, "reports/05/2026-03-2")
    assert rdoc.kind == pb.DOCUMENT_KIND_DISTRICT_REPORT
    _, content, _ = await fetch(docs_env.stub, rdoc.name)
    text = "".join(t for p in plumber(content).pages for _, t in lines_of(p))
    assert "朝阳区职业技能等级认定质量督导情况半月报" in text and "现场督导4" in text
