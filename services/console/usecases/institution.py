"""The evaluation institution: its plans, Annex 4 feedback on each external supervisor who came, and the
badge check at the door (第十七条: supervisors wear their badge)."""

from __future__ import annotations

from bjsv.registry.v1 import registry_pb2 as rpb
from bjsv.registry.v1 import supervision_pb2 as spb
from services.console.backend import Backend
from services.console.identity import Credentials
from services.console.usecases.forms import Form
from services.console.usecases.shared import request_id

YES_NO = {"YES": spb.ANSWER_VALUE_YES, "NO": spb.ANSWER_VALUE_NO}


PLANS_PER_PAGE = 5


async def plans(
    backend: Backend, creds: Credentials, page_token: str = ""
) -> tuple[list[spb.GetPlanStatusResponse], str]:
    """The institution's plans (newest first, a page at a time) with their dispatches and the feedback still
    missing; returns (statuses, next page token). Two calls whatever the page size: the page, then the
    statuses of its plans in one batch."""
    sv = backend.supervision
    req = spb.ListPlansRequest(institution=creds.principal.org, page_size=PLANS_PER_PAGE, page_token=page_token)
    listed = await backend.call(creds, sv.ListPlans, req)
    if not listed.plans:
        return [], listed.next_page_token
    batch = spb.BatchGetPlanStatusesRequest(plans=[p.name for p in listed.plans])
    return list((await backend.call(creds, sv.BatchGetPlanStatuses, batch)).statuses), listed.next_page_token


def _answer(form: Form, name: str, label: str) -> spb.AnswerValue:
    value = YES_NO.get(form.data.get(name, ""), spb.ANSWER_VALUE_UNSPECIFIED)
    if not value:
        form.errors[name] = f"请选择{label}"
    return value


async def submit_feedback(backend: Backend, creds: Credentials, dispatch: str, supervisor: str,
                          form: Form) -> spb.SupervisorFeedback:  # fmt: skip
    """Annex 4; any 否 opens a review case on the supervisor (第二十七条, D12)."""
    fb = spb.SupervisorFeedback(
        dispatch=dispatch,
        supervisor=supervisor,
        entry_time=form.instant("entry_time", "进场时间"),
        exit_time=form.instant("exit_time", "离场时间"),
        badge_worn=_answer(form, "badge_worn", "是否佩戴证卡"),
        duties_performed=_answer(form, "duties_performed", "是否认真履行职责"),
        integrity_kept=_answer(form, "integrity_kept", "是否遵守廉洁纪律"),
        comments=form.text("comments", "工作反馈情况", required=False, max_len=2000),
        signed_by=form.text("signed_by", "签字"),
    )
    form.check()
    req = spb.SubmitFeedbackRequest(feedback=fb, request_id=request_id(form))
    return (await backend.call(creds, backend.supervision.SubmitFeedback, req)).feedback


async def verify_badge(backend: Backend, creds: Credentials, code: str) -> rpb.VerifyBadgeResponse:
    req = rpb.VerifyBadgeRequest(code=code.strip())
    return await backend.call(creds, backend.registry.VerifyBadge, req)
