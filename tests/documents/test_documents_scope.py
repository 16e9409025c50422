"""Stored documents scoped to their owner (issue #12) over real gRPC: a district agency reads its own
district's Annex 3 records and Annex 4 feedback, not another district's; an institution the feedback about
it; a supervisor the records they submitted; the city centre and auditors everything. Out of scope is
PERMISSION_DENIED (OUT_OF_SCOPE), as in the registry; a missing document NOT_FOUND.

Badges (rendered from badge.issued with the registry's images) are covered with a whole stack in
tests/platform/test_authz_scope.py.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from test_documents_isolation import details
from test_documents_service import envelope, record_msg

from bjsv.documents.v1 import documents_pb2 as pb
from bjsv.documents.v1 import documents_pb2_grpc
from bjsv.registry.v1 import supervision_events_pb2, supervision_pb2
from tests import auth_support

D08 = ("agencies/08", "district-agency")
D05 = ("agencies/05", "district-agency")
INST08 = ("institutions/1100081001", "institution")
SUP81 = ("supervisors/81", "supervisor")
AUDITOR = ("auditors/audit-office", "auditor")
NOTIFY = ("services/notify", "service")


def stub(env, who: tuple[str, str]) -> tuple[documents_pb2_grpc.DocumentsServiceStub, grpc.aio.Channel]:
    channel = auth_support.aio_channel(env.target, who)
    return documents_pb2_grpc.DocumentsServiceStub(channel), channel


async def listed(env, who: tuple[str, str], page_size: int = 0) -> list[str]:
    """Every subject the caller lists, following the page tokens."""
    s, channel = stub(env, who)
    subjects, token = [], ""
    try:
        while True:
            resp = await s.ListDocuments(pb.ListDocumentsRequest(page_size=page_size, page_token=token))
            subjects += [d.subject for d in resp.documents]
            token = resp.next_page_token
            if not token:
                return subjects
    finally:
        await channel.close()


async def get_status(env, who: tuple[str, str], name: str) -> tuple[grpc.StatusCode, str]:
    s, channel = stub(env, who)
    try:
        async for _ in s.GetDocument(pb.GetDocumentRequest(name=name)):
            pass
        return grpc.StatusCode.OK, ""
    except grpc.aio.AioRpcError as e:
        return e.code(), details(e)[0]
    finally:
        await channel.close()


def record(name: str, district: str, submitted_by: str) -> supervision_pb2.SupervisionRecord:
    answers = [
        supervision_pb2.ChecklistAnswer(item_number=n, answer=supervision_pb2.ANSWER_VALUE_YES) for n in range(1, 18)
    ]
    return supervision_pb2.SupervisionRecord(
        name=name,
        form=supervision_pb2.SUPERVISION_FORM_ON_SITE,
        institution=f"institutions/1100{district}1001",
        institution_name="北京某某评价机构",
        plan_title="2026年第2期",
        answers=answers,
        district=district,
        dispatching_agency=f"agencies/{district}",
        submitted_by=submitted_by,
    )


def feedback(name: str, district: str) -> supervision_pb2.SupervisorFeedback:
    return supervision_pb2.SupervisorFeedback(
        name=name,
        supervisor="supervisors/81",
        supervisor_name="李四",
        institution=f"institutions/1100{district}1001",
        institution_name="某某学校",
        district=district,
        dispatching_agency=f"agencies/{district}",
    )


@pytest.fixture(scope="module")
async def rendered(docs_env):
    """Annex 3 and Annex 4 of districts 08 and 05, rendered from the registry's events; name by subject."""
    events = [
        (
            "record.submitted",
            supervision_events_pb2.RecordSubmitted(record=record("records/801", "08", "supervisors/81")),
        ),
        (
            "record.submitted",
            supervision_events_pb2.RecordSubmitted(record=record("records/501", "05", "supervisors/51")),
        ),
        ("feedback.submitted", supervision_events_pb2.FeedbackSubmitted(feedback=feedback("feedback/801", "08"))),
        ("feedback.submitted", supervision_events_pb2.FeedbackSubmitted(feedback=feedback("feedback/501", "05"))),
    ]
    for event_type, payload in events:
        subject = payload.record.name if event_type == "record.submitted" else payload.feedback.name
        env = envelope(event_type, subject, payload)
        await docs_env.js.publish(f"bjsv.registry.{event_type}", env.SerializeToString())
    names: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while len(names) < len(events) and loop.time() < deadline:
        for d in (await docs_env.stub.ListDocuments(pb.ListDocumentsRequest(page_size=100))).documents:
            names[d.subject] = d.name
        await asyncio.sleep(0.1)
    assert {"records/801", "records/501", "feedback/801", "feedback/501"} <= names.keys()
    return names


async def test_a_district_agency_lists_and_reads_its_own_annex3_and_annex4_but_not_another_districts(
    docs_env, rendered
):
    assert set(await listed(docs_env, D05)) == {"records/501", "feedback/501"}
    assert set(await listed(docs_env, D08)) == {"records/801", "feedback/801"}
    for subject in ("records/801", "feedback/801"):
        assert await get_status(docs_env, D05, rendered[subject]) == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
        assert await get_status(docs_env, D08, rendered[subject]) == (grpc.StatusCode.OK, "")
    assert await get_status(docs_env, D05, rendered["records/501"]) == (grpc.StatusCode.OK, "")


async def test_an_institution_sees_the_feedback_about_it_and_a_supervisor_the_records_they_submitted(
    docs_env, rendered
):
    assert await listed(docs_env, INST08) == ["feedback/801"]
    assert await get_status(docs_env, INST08, rendered["feedback/801"]) == (grpc.StatusCode.OK, "")
    assert (await get_status(docs_env, INST08, rendered["records/801"]))[0] == grpc.StatusCode.PERMISSION_DENIED
    assert (await get_status(docs_env, INST08, rendered["feedback/501"]))[0] == grpc.StatusCode.PERMISSION_DENIED
    assert await listed(docs_env, SUP81) == ["records/801"]
    assert await get_status(docs_env, SUP81, rendered["records/801"]) == (grpc.StatusCode.OK, "")
    assert (await get_status(docs_env, SUP81, rendered["feedback/801"]))[0] == grpc.StatusCode.PERMISSION_DENIED
    assert (await get_status(docs_env, SUP81, rendered["records/501"]))[0] == grpc.StatusCode.PERMISSION_DENIED


async def test_the_auditor_sees_everything_and_a_missing_document_is_not_found(docs_env, rendered):
    assert set(rendered) <= set(await listed(docs_env, AUDITOR))
    assert (await get_status(docs_env, D05, "documents/doesnotexist"))[0] == grpc.StatusCode.NOT_FOUND


async def test_a_document_rendered_over_the_api_belongs_to_the_callers_verified_organisation(docs_env, rendered):
    s, channel = stub(docs_env, D08)
    try:
        doc = (
            await s.RenderSupervisionRecord(pb.RenderSupervisionRecordRequest(record=record_msg("records/802")))
        ).document
    finally:
        await channel.close()
    assert await get_status(docs_env, D08, doc.name) == (grpc.StatusCode.OK, "")
    assert (await get_status(docs_env, D05, doc.name))[0] == grpc.StatusCode.PERMISSION_DENIED
    # the notify service relays a district report (第二十四条): it belongs to the district it is about
    s, channel = stub(docs_env, NOTIFY)
    try:
        report = pb.DistrictReportData(
            name="reports/05/2026-04-1",
            district_code="05",
            district_name="朝阳区",
            period_start="2026-04-01",
            period_end="2026-04-15",
        )
        resp = await s.RenderDistrictReport(pb.RenderDistrictReportRequest(report=report))
    finally:
        await channel.close()
    assert await get_status(docs_env, D05, resp.document.name) == (grpc.StatusCode.OK, "")
    assert (await get_status(docs_env, D08, resp.document.name))[0] == grpc.StatusCode.PERMISSION_DENIED


async def test_scoped_pages_of_one_return_exactly_the_callers_documents_newest_first(docs_env, rendered):
    one_by_one = await listed(docs_env, D05, page_size=1)
    assert one_by_one == await listed(docs_env, D05) and len(one_by_one) == len(set(one_by_one)) >= 2
