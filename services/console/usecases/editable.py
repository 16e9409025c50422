"""Editable DOCX copies of Annex 3 records and Annex 4 feedback: the stored record, rendered by the documents
service on request (the PDF is rendered and kept when the record is submitted)."""

from __future__ import annotations

from typing import cast

from bjsv.documents.v1 import documents_pb2 as dpb
from bjsv.registry.v1 import supervision_pb2 as spb
from services.console.backend import Backend
from services.console.identity import Credentials
from services.console.usecases.shared import Download


def _record_data(r: spb.SupervisionRecord) -> dpb.SupervisionRecordData:
    return dpb.SupervisionRecordData(
        name=r.name,
        # the two packages number SupervisionForm alike (ON_SITE = 1, RECORDS_REVIEW = 2)
        form=cast(dpb.SupervisionForm, r.form),
        institution_name=r.institution_name,
        plan_name=r.plan_title,
        assessment_method=r.certification_mode_text,
        answers=[
            dpb.ChecklistAnswer(item=a.item_number, compliant=a.answer == spb.ANSWER_VALUE_YES, remark=a.remark)
            for a in r.answers
        ],
        problems=r.problems,
        supervisor_names=list(r.supervisor_signatures),
        signed_date=r.sign_date,
        institution_head_name=r.institution_head_signature,
    )


def _feedback_data(f: spb.SupervisorFeedback) -> dpb.FeedbackData:
    return dpb.FeedbackData(
        name=f.name, reporting_unit=f.institution_name, supervisor_name=f.supervisor_name,
        entry_time=f.entry_time, exit_time=f.exit_time, badge_worn=f.badge_worn == spb.ANSWER_VALUE_YES,
        duties_performed=f.duties_performed == spb.ANSWER_VALUE_YES,
        integrity_kept=f.integrity_kept == spb.ANSWER_VALUE_YES, comments=f.comments,
    )  # fmt: skip


async def record_docx(backend: Backend, creds: Credentials, name: str) -> Download:
    record = (await backend.call(creds, backend.supervision.GetRecord, spb.GetRecordRequest(name=name))).record
    req = dpb.RenderSupervisionRecordRequest(
        record=_record_data(record), format=dpb.DOCUMENT_FORMAT_DOCX, include_content=True
    )
    resp = await backend.call(creds, backend.documents.RenderSupervisionRecord, req)
    return Download(resp.document.file_name, resp.document.media_type, resp.content)


async def feedback_docx(backend: Backend, creds: Credentials, name: str) -> Download:
    fb = (await backend.call(creds, backend.supervision.GetFeedback, spb.GetFeedbackRequest(name=name))).feedback
    req = dpb.RenderFeedbackRequest(feedback=_feedback_data(fb), format=dpb.DOCUMENT_FORMAT_DOCX, include_content=True)
    resp = await backend.call(creds, backend.documents.RenderFeedback, req)
    return Download(resp.document.file_name, resp.document.media_type, resp.content)
