"""Template environment: Beijing time, Chinese labels for enums, display names instead of resource names."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from bjsv.documents.v1 import documents_pb2 as dpb
from bjsv.registry.v1 import registry_pb2 as rpb
from bjsv.registry.v1 import supervision_pb2 as spb
from services.console.timefmt import beijing, local_input
from services.console.usecases.agency import RUNGS

# keyed by each kind's protobuf enum (all ints at run time)
LABELS: dict[str, dict[Any, str]] = {
    "form": {spb.SUPERVISION_FORM_ON_SITE: "现场督导", spb.SUPERVISION_FORM_RECORDS_REVIEW: "事后认定资料督导"},
    "dispatch_state": {spb.DISPATCH_STATE_ACTIVE: "已委派", spb.DISPATCH_STATE_CANCELLED: "已取消"},
    "case_state": {
        spb.CASE_STATE_OPEN: "待决定",
        spb.CASE_STATE_AWAITING_CORRECTION: "整改中",
        spb.CASE_STATE_ESCALATED: "逾期未改正（已升级）",
        spb.CASE_STATE_CLOSED: "已结案",
    },
    "subject_kind": {spb.CASE_SUBJECT_KIND_INSTITUTION: "评价机构", spb.CASE_SUBJECT_KIND_SUPERVISOR: "外督员"},
    "rung": RUNGS,
    "answer": {spb.ANSWER_VALUE_YES: "是", spb.ANSWER_VALUE_NO: "否"},
    "badge_status": {
        rpb.BADGE_STATUS_ACTIVE: "有效",
        rpb.BADGE_STATUS_EXPIRED: "已过期",
        rpb.BADGE_STATUS_SUSPENDED: "已暂停",
        rpb.BADGE_STATUS_REVOKED: "已注销",
        rpb.BADGE_STATUS_UNKNOWN_CODE: "无此证卡",
    },
    "appointment_status": {
        rpb.APPOINTMENT_STATUS_NOT_APPOINTED: "未聘任",
        rpb.APPOINTMENT_STATUS_ACTIVE: "聘期内",
        rpb.APPOINTMENT_STATUS_EXPIRED: "聘期届满",
        rpb.APPOINTMENT_STATUS_SUSPENDED: "暂停督导工作",
        rpb.APPOINTMENT_STATUS_REVOKED: "已解聘",
    },
    "doc_kind": {
        dpb.DOCUMENT_KIND_BADGE: "质量督导员证卡",
        dpb.DOCUMENT_KIND_PRINT_SHEET: "证卡打印页",
        dpb.DOCUMENT_KIND_ON_SITE_RECORD: "督导记录表（现场督导）",
        dpb.DOCUMENT_KIND_RECORDS_REVIEW_RECORD: "督导记录表（事后认定资料督导）",
        dpb.DOCUMENT_KIND_FEEDBACK: "外督员情况反馈表",
        dpb.DOCUMENT_KIND_DISTRICT_REPORT: "半月督导情况报告",
    },
    "doc_format": {dpb.DOCUMENT_FORMAT_PDF: "PDF", dpb.DOCUMENT_FORMAT_DOCX: "DOCX"},
    "severity": {spb.FINDING_SEVERITY_BLOCKING: "不予委派", spb.FINDING_SEVERITY_ADVISORY: "提示"},
}


def label(value: int, kind: str) -> str:
    return LABELS[kind].get(value, "")


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["html"]),
        auto_reload=False,  # templates ship with the code: no stat() per page
    )
    env.filters.update(
        beijing=beijing, local_input=local_input, label=label, b64=lambda b: base64.b64encode(b).decode()
    )
    return env
