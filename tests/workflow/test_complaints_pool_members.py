"""Issue #15 over real gRPC: ListComplaints scoped by district (第二十二条(九)), the pool a team was drawn from
(ProposeDispatch, 第二十条 双随机) and "my dispatches" (ListDispatches `member`, a supervisor limited to their own)."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
import wf_helpers as h
from wf_helpers import error_reason

from bjsv.registry.v1 import supervision_pb2 as spb
from common.clock import SHANGHAI

D = dt.date
CHAOYANG = ("agencies/05", "district-agency")


def refused(call, request, who) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as e:
        call(request, metadata=h.md(who))
    return e.value.code()


def test_complaints_are_listed_newest_first_and_a_district_sees_only_its_own_art22_9(clients):
    c = clients
    c.set_clock(dt.datetime(2026, 11, 2, 9, tzinfo=SHANGHAI))
    haidian = h.institution(c, "1100016001", "北京某某烹饪学校", "08")
    chaoyang = h.institution(c, "1100016002", "北京某某美容美发学校", "05")
    sup = h.supervisor(c, "韩督导", district="08", badge=False)[0]
    received = []
    for i, (subject, content) in enumerate(
        [
            (haidian, "考场内有人代考"),
            (chaoyang, "考评员收取考生财物"),
            (sup, "督导员擅自离场"),
            (haidian, "考试时间被缩短"),
        ]
    ):
        complaint = spb.Complaint(source="来信" if i % 2 else "网上举报", subject=subject, content=content)
        req = spb.ReceiveComplaintRequest(complaint=complaint, client_request_id=f"list-cp-{i}")
        received.append(c.sv.ReceiveComplaint(req, metadata=h.md(h.CITY)).complaint.name)

    every = c.sv.ListComplaints(spb.ListComplaintsRequest(), metadata=h.md(h.CITY))
    assert [x.name for x in every.complaints] == received[::-1] and every.total_size == 4
    own = c.sv.ListComplaints(spb.ListComplaintsRequest(), metadata=h.md(h.HAIDIAN))
    assert {x.district for x in own.complaints} == {"08"} and own.total_size == 3
    assert refused(c.sv.ListComplaints, spb.ListComplaintsRequest(district="05"), h.HAIDIAN) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    for who in ((sup, "supervisor"), (haidian, "institution")):  # not theirs to see (policy.yaml)
        assert refused(c.sv.ListComplaints, spb.ListComplaintsRequest(), who) == grpc.StatusCode.PERMISSION_DENIED

    found = c.sv.ListComplaints(spb.ListComplaintsRequest(query="代考"), metadata=h.md(h.CITY)).complaints
    assert [x.name for x in found] == [received[0]]
    by_subject = c.sv.ListComplaints(spb.ListComplaintsRequest(subject=sup), metadata=h.md(h.CITY)).complaints
    assert [x.subject_name for x in by_subject] == ["韩督导"]
    first = c.sv.ListComplaints(spb.ListComplaintsRequest(page_size=2), metadata=h.md(h.CITY))
    rest = c.sv.ListComplaints(spb.ListComplaintsRequest(page_size=2, page_token=first.next_page_token),
                               metadata=h.md(h.CITY))  # fmt: skip
    assert [x.name for x in [*first.complaints, *rest.complaints]] == received[::-1] and not rest.next_page_token

    close = spb.RecordComplaintHandlingRequest(name=received[0], handling="调阅录像", result="举报属实", close=True)
    c.sv.RecordComplaintHandling(close, metadata=h.md(h.HAIDIAN))
    closed = spb.ListComplaintsRequest(state=spb.COMPLAINT_STATE_CLOSED)
    assert [x.name for x in c.sv.ListComplaints(closed, metadata=h.md(h.CITY)).complaints] == [received[0]]
    with pytest.raises(grpc.RpcError) as e:
        c.sv.ListComplaints(spb.ListComplaintsRequest(district="99"), metadata=h.md(h.CITY))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and error_reason(e.value)[1][0].startswith("district|")


def test_a_proposal_shows_the_pool_with_names_the_drawn_team_and_why_a_member_was_excluded_art20_art16(clients):
    c = clients
    inst = h.institution(c, "1100016003", "北京某某汽车维修学校", "05")
    pool = {n: h.supervisor(c, n, district="05")[0] for n in ("褚督导", "卫督导", "蒋督导")}
    c.set_clock(dt.datetime(2026, 11, 9, 9, tzinfo=SHANGHAI))
    msg = h.plan_msg(inst, D(2026, 11, 10), district="05", candidates=60)
    msg.sessions[0].examiners.append(h.person("蒋督导", sup=pool["蒋督导"]))  # an examiner may not supervise (第十六条)
    plan = c.sv.CreatePlan(spb.CreatePlanRequest(plan=msg, client_request_id=h.request_id("plan")),
                           metadata=h.md(CHAOYANG)).plan  # fmt: skip
    proposal = c.sv.ProposeDispatch(spb.ProposeDispatchRequest(
        plan=plan.name, dispatching_agency="agencies/05", form=spb.SUPERVISION_FORM_ON_SITE, team_size=2,
        seed="pool-shown"), metadata=h.md(CHAOYANG))  # fmt: skip
    by_name = {m.supervisor: m for m in proposal.pool}
    assert proposal.pool_size == len(proposal.pool) >= 3 and proposal.pool_digest
    assert {by_name[s].display_name for s in pool.values()} == set(pool)
    assert sorted(m.supervisor for m in proposal.pool if m.drawn) == sorted(proposal.supervisors)
    assert sorted(proposal.supervisors) == sorted([pool["褚督导"], pool["卫督导"]])
    assert by_name[pool["蒋督导"]].excluded_by and not by_name[pool["蒋督导"]].drawn
    assert not any(m.excluded_by for m in proposal.pool if m.drawn)
    assert proposal.evaluated_count >= 3


def test_my_dispatches_lists_only_the_members_own_and_a_supervisor_cannot_ask_for_anothers_art14(clients):
    c = clients
    inst = h.institution(c, "1100016004", "北京某某电子技术学校", "08")
    a, b, x, y = (h.supervisor(c, n, badge=False)[0] for n in ("杨督导", "朱督导", "秦督导", "尤督导"))
    c.set_clock(dt.datetime(2026, 11, 16, 9, tzinfo=SHANGHAI))
    names = []
    for team in ([a, b], [x, y]):
        plan = c.sv.CreatePlan(spb.CreatePlanRequest(plan=h.plan_msg(inst, D(2026, 11, 17), candidates=60),
                                                     client_request_id=h.request_id("plan")),
                               metadata=h.md(h.HAIDIAN)).plan  # fmt: skip
        names.append(c.sv.CreateDispatch(spb.CreateDispatchRequest(
            dispatch=spb.Dispatch(plan=plan.name, dispatching_agency="agencies/08",
                                  form=spb.SUPERVISION_FORM_ON_SITE),
            selection=spb.TEAM_SELECTION_MANUAL, supervisors=team, client_request_id=h.request_id("d")),
            metadata=h.md(h.HAIDIAN)).dispatch.name)  # fmt: skip

    def listed(who, member: str = "") -> list[str]:
        req = spb.ListDispatchesRequest(member=member, date="2026-11-17")
        return [d.name for d in c.sv.ListDispatches(req, metadata=h.md(who)).dispatches]

    assert listed(h.HAIDIAN) == names
    assert listed(h.HAIDIAN, member=a) == [names[0]] and listed(h.HAIDIAN, member=y) == [names[1]]
    assert listed((a, "supervisor")) == [names[0]]  # always limited to their own, asked or not
    assert listed((a, "supervisor"), member=a) == [names[0]]
    assert refused(c.sv.ListDispatches, spb.ListDispatchesRequest(member=x), (a, "supervisor")) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    assert refused(c.sv.ListDispatches, spb.ListDispatchesRequest(member="agencies/08"), h.HAIDIAN) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
