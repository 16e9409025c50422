"""The supervisor on a phone: my dispatches, the Annex 3 record of each (第二十三条), my badge."""

from __future__ import annotations

from bjsv.registry.v1 import registry_pb2 as rpb
from bjsv.registry.v1 import supervision_pb2 as spb
from common.catalogues import Checklist, annex3_checklists
from services.console.backend import Backend
from services.console.identity import Credentials
from services.console.usecases.forms import Form
from services.console.usecases.shared import request_id

# Annex 3's two checklists (17 on-site items, 16 records-review items), read from the one catalogue file the
# documents service prints and the workflow validates against.
CHECKLIST_KINDS = {spb.SUPERVISION_FORM_ON_SITE: "on_site", spb.SUPERVISION_FORM_RECORDS_REVIEW: "records_review"}


def checklist(form: spb.SupervisionForm) -> Checklist:
    return annex3_checklists()[CHECKLIST_KINDS[form]]


async def my_dispatches(backend: Backend, creds: Credentials) -> list[spb.Dispatch]:
    """Dispatches with the logged-in supervisor on the team still (a replaced member has nothing to fill in).
    The registry limits a supervisor to their own dispatches (`member`); a supervisor's token names the
    person (supervisors/N) as its org."""
    me = creds.principal.org
    req = spb.ListDispatchesRequest(member=me, page_size=500)
    resp = await backend.call(creds, backend.supervision.ListDispatches, req)
    return [d for d in resp.dispatches if any(m.supervisor == me and m.state == spb.MEMBER_STATE_ACTIVE
                                              for m in d.members)]  # fmt: skip


async def dispatch(backend: Backend, creds: Credentials, name: str) -> spb.Dispatch:
    return (await backend.call(creds, backend.supervision.GetDispatch, spb.GetDispatchRequest(name=name))).dispatch


def record_from_form(d: spb.Dispatch, form: Form, me: str) -> spb.SupervisionRecord:
    """Every item answered 是/否 (Annex 3 note 1); a remark on each 否 (D11)."""
    record = spb.SupervisionRecord(dispatch=d.name, submitted_by=me)
    for n in checklist(d.form).numbers:
        value = form.data.get(f"item_{n}", "")
        remark = form.text(f"remark_{n}", "备注", required=value == "NO", max_len=500)
        if value not in ("YES", "NO"):
            form.errors[f"item_{n}"] = f"第{n}项请选择“是”或“否”（附件3填表说明）"
        answer = spb.ANSWER_VALUE_YES if value == "YES" else spb.ANSWER_VALUE_NO
        if value == "NO" and not remark:
            form.errors[f"remark_{n}"] = f"第{n}项选“否”时须在备注中说明情况"
        record.answers.append(spb.ChecklistAnswer(item_number=n, answer=answer, remark=remark))
    record.problems = form.text("problems", "意见/存在问题", required=False, max_len=4000)
    record.supervisor_signatures.extend(s for s in form.text("signatures", "外督员签名").split() if s)
    record.institution_head_signature = form.text("institution_head_signature", "机构负责人签字")
    record.sign_date = form.date("sign_date", "签字日期")
    form.check()
    return record


async def submit_record(backend: Backend, creds: Credentials, name: str, form: Form) -> spb.SupervisionRecord:
    d = await dispatch(backend, creds, name)
    record = record_from_form(d, form, creds.principal.org)
    req = spb.SubmitRecordRequest(record=record, request_id=request_id(form))
    return (await backend.call(creds, backend.supervision.SubmitRecord, req)).record


CONFLICT_KINDS = {  # 第十六条: relatives among the examinees or staff, any other interest
    "RELATIVE_CANDIDATE": (spb.CONFLICT_KIND_RELATIVE_CANDIDATE, "考生中有本人亲属"),
    "RELATIVE_EXAMINER": (spb.CONFLICT_KIND_RELATIVE_EXAMINER, "考评人员中有本人亲属"),
    "OTHER_INTEREST": (spb.CONFLICT_KIND_OTHER_INTEREST, "与被督导机构存在其他利害关系"),
}
CONFLICT_ROWS = 3  # rows offered on the phone form; more are declared through the API


def declaration_from_form(name: str, form: Form, me: str) -> spb.ConflictDeclaration:
    """Either each relation or interest declared, or the explicit 无需回避 confirmation, never both or
    neither: an empty declaration is a statement, not a default (第十六条)."""
    declaration = spb.ConflictDeclaration(dispatch=name, supervisor=me)
    for i in range(1, CONFLICT_ROWS + 1):
        kind = form.data.get(f"kind_{i}", "")
        if not kind:
            continue
        if kind not in CONFLICT_KINDS:
            form.errors[f"kind_{i}"] = "请选择回避事项类别（第十六条）"
            continue
        counterpart = form.text(f"counterpart_{i}", "对象（身份证号或机构）")
        description = form.text(f"description_{i}", "情况说明", required=False, max_len=500)
        declaration.conflicts.append(
            spb.DeclaredConflict(kind=CONFLICT_KINDS[kind][0], counterpart=counterpart, description=description)
        )
    none = form.data.get("none") == "yes"
    if none == bool(declaration.conflicts) and not form.errors:
        form.errors["none"] = "请申报回避事项，或确认本人无需回避（第十六条）"
    form.check()
    return declaration


async def declare_conflicts(backend: Backend, creds: Credentials, name: str, form: Form) -> spb.ConflictDeclaration:
    declaration = declaration_from_form(name, form, creds.principal.org)
    req = spb.DeclareConflictsRequest(declaration=declaration)
    return (await backend.call(creds, backend.supervision.DeclareConflicts, req)).declaration


async def my_badge(backend: Backend, creds: Credentials) -> rpb.Badge | None:
    req = rpb.ListBadgesRequest(supervisor=creds.principal.org, page_size=50)
    badges = (await backend.call(creds, backend.registry.ListBadges, req)).badges
    active = [b for b in badges if b.status == rpb.BADGE_STATUS_ACTIVE] or list(badges)
    return active[-1] if active else None
