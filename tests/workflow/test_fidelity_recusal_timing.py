"""Issue #14 trap scenarios through the public API: session staff (考务人员) recused at dispatch and on
replacement (第十六条, D21); records and feedback before the session or with future times refused (第二十三条,
D20); a records review's deadline counts from the review."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
import wf_helpers as h
from wf_helpers import error_reason

from bjsv.registry.v1 import registry_pb2 as rpb
from bjsv.registry.v1 import supervision_pb2 as spb
from common.clock import SHANGHAI

D = dt.date


@pytest.fixture(scope="module")
def world(clients: h.Clients) -> dict:
    inst = h.institution(clients, "1100012002", "北京某某培训学校", "08")
    sups = {n: h.supervisor(clients, n)[0] for n in ("甲督导", "乙督导", "丙督导", "丁督导")}
    return {"inst": inst, "sups": sups}


def plan(c: h.Clients, world: dict, day: D, staff_sup: str = "", **kw) -> spb.Plan:
    msg = h.plan_msg(world["inst"], day, **kw)
    if staff_sup:
        msg.sessions[0].staff.append(h.person("丁督导", sup=staff_sup, role="考务人员"))
    req = spb.CreatePlanRequest(plan=msg, client_request_id=h.request_id("plan"))
    return c.sv.CreatePlan(req, metadata=h.md(h.HAIDIAN)).plan


def dispatch(c: h.Clients, p: spb.Plan, sups: list[str], **kw) -> spb.Dispatch:
    d = spb.Dispatch(plan=p.name, dispatching_agency="agencies/08", form=kw.get("form", spb.SUPERVISION_FORM_ON_SITE),
                     session_ids=kw.get("sessions", []))  # fmt: skip
    if "start" in kw:
        d.supervision_start_time.CopyFrom(kw["start"])
        d.supervision_end_time.CopyFrom(kw["end"])
    req = spb.CreateDispatchRequest(dispatch=d, selection=spb.TEAM_SELECTION_MANUAL, supervisors=sups,
                                    client_request_id=h.request_id("dispatch"))  # fmt: skip
    d = c.sv.CreateDispatch(req, metadata=h.md(h.HAIDIAN)).dispatch
    if kw.get("declared", True):
        h.declare(c, d.name, *sups)
    return d


def record(d: spb.Dispatch, sup: str, sign: str) -> spb.SubmitRecordRequest:
    rec = spb.SupervisionRecord(dispatch=d.name, submitted_by=sup, answers=h.answers(17), problems="无",
                                supervisor_signatures=["甲督导"], institution_head_signature="李主任",
                                sign_date=sign)  # fmt: skip
    return spb.SubmitRecordRequest(record=rec, client_request_id=h.request_id("rec"))


def feedback(
    d: spb.Dispatch, sup: str, day: D, entry: int, exit: int, *, no: bool = False
) -> spb.SubmitFeedbackRequest:
    fb = spb.SupervisorFeedback(
        dispatch=d.name, supervisor=sup, entry_time=h.at(day, entry), exit_time=h.at(day, exit),
        badge_worn=spb.ANSWER_VALUE_NO if no else spb.ANSWER_VALUE_YES, duties_performed=spb.ANSWER_VALUE_YES,
        integrity_kept=spb.ANSWER_VALUE_YES, signed_by="李主任",
    )  # fmt: skip
    return spb.SubmitFeedbackRequest(feedback=fb, client_request_id=h.request_id("fb"))


def test_external_supervisor_listed_as_session_staff_is_refused_at_dispatch_art16(clients, world):
    s = world["sups"]
    clients.set_clock(dt.datetime(2026, 4, 7, 9, tzinfo=SHANGHAI))
    p = plan(clients, world, D(2026, 4, 8), staff_sup=s["丁督导"])
    with pytest.raises(grpc.RpcError) as e:
        dispatch(clients, p, [s["甲督导"], s["丁督导"]], sessions=["S1"])
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    reason, texts = error_reason(e.value)
    assert reason == "TEAM_CHECK_FAILED"
    assert any(t.startswith("bj-2022.art16.") and "第十六条" in t for t in texts), texts


def employ(c: h.Clients, sup: str, institution: str, until: str = "") -> None:
    change = rpb.Supervisor(name=sup)
    change.affiliations.add(institution=institution, kind=rpb.AFFILIATION_KIND_EMPLOYER, from_date="2020-01-01",
                            until_date=until)  # fmt: skip
    c.registry.UpdateSupervisor(rpb.UpdateSupervisorRequest(supervisor=change, update_mask={"paths": ["affiliations"]}),
                                metadata=h.md(h.HAIDIAN))  # fmt: skip


def test_external_supervisor_employed_by_the_institution_is_refused_while_employed_art16(clients, world):
    s = world["sups"]
    clients.set_clock(dt.datetime(2026, 4, 7, 9, tzinfo=SHANGHAI))
    p = plan(clients, world, D(2026, 4, 10))
    employ(clients, s["丙督导"], world["inst"])
    with pytest.raises(grpc.RpcError) as e:
        dispatch(clients, p, [s["甲督导"], s["丙督导"]])
    assert any(t.startswith("bj-2022.art16.employer-or-affiliation|") for t in error_reason(e.value)[1])
    employ(clients, s["丙督导"], world["inst"], until="2026-03-31")  # left before the session: no recusal
    d = dispatch(clients, p, [s["甲督导"], s["丙督导"]])
    assert s["丙督导"] in [m.supervisor for m in d.members]


def test_replacing_a_member_by_the_sessions_staff_member_is_refused_art16(clients, world):
    s = world["sups"]
    clients.set_clock(dt.datetime(2026, 4, 7, 9, tzinfo=SHANGHAI))
    p = plan(clients, world, D(2026, 4, 9), staff_sup=s["丁督导"])
    d = dispatch(clients, p, [s["甲督导"], s["乙督导"]], sessions=["S1"])
    req = spb.ReplaceDispatchMemberRequest(
        name=d.name, supervisor=s["乙督导"], replacement=s["丁督导"], reason="身体不适"
    )
    with pytest.raises(grpc.RpcError) as e:
        clients.sv.ReplaceDispatchMember(req, metadata=h.md(h.HAIDIAN))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert any("第十六条" in t for t in error_reason(e.value)[1])


def test_record_before_the_session_started_is_refused_art23(clients, world):
    s = world["sups"]
    clients.set_clock(dt.datetime(2026, 4, 13, 16, tzinfo=SHANGHAI))
    p = plan(clients, world, D(2026, 4, 14))  # S1 09:00–11:30, S2 14:00–17:00
    d = dispatch(clients, p, [s["甲督导"], s["乙督导"]])
    clients.set_clock(dt.datetime(2026, 4, 14, 2, 30, tzinfo=SHANGHAI))
    with pytest.raises(grpc.RpcError) as e:
        clients.sv.SubmitRecord(record(d, s["甲督导"], "2026-04-14"), metadata=h.md(h.HAIDIAN))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    reason, texts = error_reason(e.value)
    assert reason == "SUPERVISION_NOT_STARTED" and any("第二十三条" in t for t in texts), texts
    clients.set_clock(dt.datetime(2026, 4, 14, 17, 30, tzinfo=SHANGHAI))
    done = clients.sv.SubmitRecord(record(d, s["甲督导"], "2026-04-14"), metadata=h.md(h.HAIDIAN)).record
    assert done.version == 1


def test_feedback_with_future_entry_and_exit_is_refused_and_opens_no_case_art23_art27(clients, world):
    s = world["sups"]
    clients.set_clock(dt.datetime(2026, 4, 15, 16, tzinfo=SHANGHAI))
    p = plan(clients, world, D(2026, 4, 16))
    d = dispatch(clients, p, [s["甲督导"], s["乙督导"]])
    clients.set_clock(dt.datetime(2026, 4, 16, 10, tzinfo=SHANGHAI))  # S1 running; entry/exit still to come
    with pytest.raises(grpc.RpcError) as e:
        clients.sv.SubmitFeedback(feedback(d, s["乙督导"], D(2026, 4, 16), 14, 17, no=True))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any("晚于当前时间" in t and "第二十三条" in t for t in error_reason(e.value)[1])
    cases = clients.sv.ListCases(spb.ListCasesRequest(subject=s["乙督导"])).cases
    assert not [c for c in cases if c.dispatch == d.name]


def test_feedback_before_the_session_and_entry_outside_it_are_refused_art23(clients, world):
    s = world["sups"]
    clients.set_clock(dt.datetime(2026, 4, 20, 16, tzinfo=SHANGHAI))
    p = plan(clients, world, D(2026, 4, 21))
    d = dispatch(clients, p, [s["甲督导"], s["乙督导"]])
    clients.set_clock(dt.datetime(2026, 4, 21, 7, tzinfo=SHANGHAI))
    with pytest.raises(grpc.RpcError) as e:
        clients.sv.SubmitFeedback(feedback(d, s["乙督导"], D(2026, 4, 20), 9, 10))
    assert error_reason(e.value)[0] == "SUPERVISION_NOT_STARTED"
    clients.set_clock(dt.datetime(2026, 4, 22, 9, tzinfo=SHANGHAI))
    with pytest.raises(grpc.RpcError) as e:
        clients.sv.SubmitFeedback(feedback(d, s["乙督导"], D(2026, 4, 21), 3, 17))  # 03:00: 6 h before 09:00
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any("不在本次督导时间" in t for t in error_reason(e.value)[1])
    ok = clients.sv.SubmitFeedback(feedback(d, s["乙督导"], D(2026, 4, 21), 8, 17)).feedback  # 1 h early: D20
    assert ok.supervisor == s["乙督导"]


def test_records_review_deadline_counts_from_the_review_not_the_examination_art23(clients, world):
    s = world["sups"]
    clients.set_clock(dt.datetime(2026, 3, 2, 9, tzinfo=SHANGHAI))
    p = plan(clients, world, D(2026, 3, 3))
    clients.set_clock(dt.datetime(2026, 4, 27, 9, tzinfo=SHANGHAI))  # weeks after the examination
    d = dispatch(clients, p, [s["甲督导"], s["乙督导"]], form=spb.SUPERVISION_FORM_RECORDS_REVIEW,
                 start=h.at(D(2026, 3, 4), 9), end=h.at(D(2026, 3, 4), 17))  # fmt: skip
    # Five working days (D5) from Monday 2026-04-27 end in May, not in March.
    assert d.record_due_date > "2026-05-01", d.record_due_date
    overdue = clients.sv.ListOverdue(spb.ListOverdueRequest()).items
    assert not [i for i in overdue if i.dispatch == d.name]


def declaration(d: spb.Dispatch, sup: str, *conflicts: spb.DeclaredConflict) -> spb.DeclareConflictsRequest:
    return spb.DeclareConflictsRequest(declaration=spb.ConflictDeclaration(dispatch=d.name, supervisor=sup,
                                                                           conflicts=conflicts))  # fmt: skip


def test_no_record_or_feedback_before_the_supervisors_declaration_art16(clients, world):
    s = world["sups"]
    clients.set_clock(dt.datetime(2026, 5, 5, 16, tzinfo=SHANGHAI))
    p = plan(clients, world, D(2026, 5, 6))
    d = dispatch(clients, p, [s["甲督导"], s["乙督导"]], declared=False)
    clients.set_clock(dt.datetime(2026, 5, 6, 17, 30, tzinfo=SHANGHAI))
    with pytest.raises(grpc.RpcError) as e:
        clients.sv.SubmitRecord(record(d, s["甲督导"], "2026-05-06"), metadata=h.md(h.HAIDIAN))
    reason, texts = error_reason(e.value)
    assert reason == "CONFLICTS_NOT_DECLARED" and any("第十六条" in t for t in texts), texts
    with pytest.raises(grpc.RpcError) as e:
        clients.sv.SubmitFeedback(feedback(d, s["乙督导"], D(2026, 5, 6), 9, 17))
    assert error_reason(e.value)[0] == "CONFLICTS_NOT_DECLARED"
    with pytest.raises(grpc.RpcError) as e:  # only a member declares, for themself: 丙 is not on the team
        clients.sv.DeclareConflicts(declaration(d, s["丙督导"]), metadata=h.md((s["丙督导"], "supervisor")))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    out = clients.sv.DeclareConflicts(
        declaration(d, s["甲督导"]), metadata=h.md((s["甲督导"], "supervisor"))
    ).declaration
    assert (out.supervisor, list(out.conflicts), len(out.rule_decisions)) == (s["甲督导"], [], 2)
    assert clients.sv.SubmitRecord(record(d, s["甲督导"], "2026-05-06"), metadata=h.md(h.HAIDIAN)).record.version == 1


def test_a_declared_relative_among_the_examiners_requires_recusal_art16(clients, world):
    s = world["sups"]
    examiner = h.new_id_number(dt.date(1981, 6, 6))
    clients.set_clock(dt.datetime(2026, 5, 11, 16, tzinfo=SHANGHAI))
    p = plan(clients, world, D(2026, 5, 12), examiners=[h.person("褚考评", examiner)])
    d = dispatch(clients, p, [s["甲督导"], s["乙督导"]])  # both declared none first
    relative = spb.DeclaredConflict(kind=spb.CONFLICT_KIND_RELATIVE_EXAMINER, counterpart=examiner, description="表兄")
    with pytest.raises(grpc.RpcError) as e:
        clients.sv.DeclareConflicts(declaration(d, s["乙督导"], relative), metadata=h.md((s["乙督导"], "supervisor")))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    reason, texts = error_reason(e.value)
    assert reason == "RECUSAL_REQUIRED" and any("bj-2022.art16.declared-conflict|" in t for t in texts), texts
    bad = spb.DeclaredConflict(kind=spb.CONFLICT_KIND_RELATIVE_CANDIDATE, counterpart="12345")
    with pytest.raises(grpc.RpcError) as e:
        clients.sv.DeclareConflicts(declaration(d, s["乙督导"], bad), metadata=h.md((s["乙督导"], "supervisor")))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any(t.startswith("declaration.conflicts[0].counterpart|") for t in error_reason(e.value)[1])
    clients.set_clock(dt.datetime(2026, 5, 12, 18, tzinfo=SHANGHAI))
    with pytest.raises(grpc.RpcError) as e:  # the refusal voided the earlier clean declaration
        clients.sv.SubmitFeedback(feedback(d, s["乙督导"], D(2026, 5, 12), 9, 17))
    assert error_reason(e.value)[0] == "CONFLICTS_NOT_DECLARED"
