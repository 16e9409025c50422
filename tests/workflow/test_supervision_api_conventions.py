"""Issue #11 item 3: the SupervisionService answers a malformed resource name, a bad date and a page token it
did not hand out exactly as the RegistryService in the same process does (common.api): RESOURCE_NAME,
DATE_FORMAT, PAGE_TOKEN, PAGE_SIZE — over real gRPC to the registry process with the real rules service."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
import wf_helpers as h
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from bjsv.registry.v1 import registry_pb2 as rpb
from bjsv.registry.v1 import supervision_pb2 as spb
from common import api
from common.clock import SHANGHAI

BAD = grpc.StatusCode.INVALID_ARGUMENT


def answer(call) -> tuple[grpc.StatusCode, str, str]:
    """(status code, ErrorInfo reason, first field violation) of a failing call."""
    with pytest.raises(grpc.RpcError) as e:
        call()
    reason, field = "", ""
    for d in rpc_status.from_call(e.value).details:
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            d.Unpack(info)
            reason = info.reason
        elif d.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            d.Unpack(bad)
            field = bad.field_violations[0].field
    return e.value.code(), reason, field


def tampered(token: str) -> str:
    """The token with one character of its body changed (still valid base64url, so only the checksum tells)."""
    body, _, check = token.partition(".")
    return f"{'A' if body[0] != 'A' else 'B'}{body[1:]}.{check}"


@pytest.fixture(scope="module")
def plans(clients: h.Clients) -> tuple[str, list[str]]:
    """Three plans of one institution, so ListPlans pages with page_size=1 (and a second institution, so the
    registry's ListInstitutions does too)."""
    clients.set_clock(dt.datetime(2026, 3, 2, 9, tzinfo=SHANGHAI))
    inst = h.institution(clients, "1100017001", "北京某某汽车维修职业技能培训学校", "08")
    h.institution(clients, "1100017002", "北京某某烹饪职业技能培训学校", "08")
    names = [
        clients.sv.CreatePlan(
            spb.CreatePlanRequest(plan=h.plan_msg(inst, dt.date(2026, 3, 10 + i)), client_request_id=h.request_id("p")),
            metadata=h.md(h.HAIDIAN),
        ).plan.name
        for i in range(3)
    ]
    return inst, names


def test_a_malformed_name_is_resource_name_in_both_services(clients):
    registry = answer(lambda: clients.registry.GetSupervisor(rpb.GetSupervisorRequest(name="supervisor/7")))
    assert registry == (BAD, api.RESOURCE_NAME, "name")
    md = h.md(h.CITY)
    for call in (
        lambda: clients.sv.GetPlan(spb.GetPlanRequest(name="plan/7"), metadata=md),
        lambda: clients.sv.GetCase(spb.GetCaseRequest(name="cases/x7"), metadata=md),
        lambda: clients.sv.GetRecord(spb.GetRecordRequest(name="records/0"), metadata=md),
        lambda: clients.sv.GetDistrictReport(spb.GetDistrictReportRequest(name="reports/08"), metadata=md),
        lambda: clients.sv.GetDistrictReport(spb.GetDistrictReportRequest(name="reports/08/x/y"), metadata=md),
    ):
        assert answer(call) == registry
    plan = answer(lambda: clients.sv.ListCases(spb.ListCasesRequest(plan="plans/-1"), metadata=md))
    assert plan == (BAD, api.RESOURCE_NAME, "plan")


def test_a_bad_date_is_date_format_in_both_services(clients):
    registry = answer(lambda: clients.registry.RunExpirySweep(rpb.RunExpirySweepRequest(as_of_date="2026-13-01")))
    assert registry == (BAD, api.DATE_FORMAT, "as_of_date")
    md = h.md(h.CITY)
    listing = answer(lambda: clients.sv.ListDispatches(spb.ListDispatchesRequest(date="2026-13-01"), metadata=md))
    assert listing == (BAD, api.DATE_FORMAT, "date")
    close = answer(lambda: clients.sv.ClosePeriod(spb.ClosePeriodRequest(date=""), metadata=h.md(h.OPERATOR)))
    assert close == (BAD, api.DATE_FORMAT, "date")  # required: empty is DATE_FORMAT too
    decision = spb.CaseDecision(rung=spb.PENALTY_RUNG_CRITICISM_AND_CORRECTION, correction_deadline="2026/04/01")
    request = spb.RecordCaseDecisionRequest(name="cases/1", decision=decision)
    assert answer(lambda: clients.sv.RecordCaseDecision(request, metadata=md)) == (
        BAD,
        api.DATE_FORMAT,
        "decision.correction_deadline",
    )


def test_a_page_token_not_handed_out_is_page_token_in_both_services(clients, plans):
    inst, _ = plans
    first = clients.registry.ListInstitutions(rpb.ListInstitutionsRequest(page_size=1), metadata=h.md(h.CITY))
    assert first.next_page_token
    edited = rpb.ListInstitutionsRequest(page_size=1, page_token=tampered(first.next_page_token))
    registry = answer(lambda: clients.registry.ListInstitutions(edited, metadata=h.md(h.CITY)))
    assert registry == (BAD, api.PAGE_TOKEN, "page_token")
    md = h.md(h.CITY)
    page = clients.sv.ListPlans(spb.ListPlansRequest(institution=inst, page_size=1), metadata=md)
    for token in ("OA==", "8", tampered(page.next_page_token), first.next_page_token):  # raw, edited, foreign
        assert answer(lambda t=token: clients.sv.ListPlans(spb.ListPlansRequest(page_token=t), metadata=md)) == registry
        assert answer(lambda t=token: clients.sv.ListCases(spb.ListCasesRequest(page_token=t), metadata=md)) == registry
        request = spb.ListDispatchesRequest(page_token=token)
        assert answer(lambda r=request: clients.sv.ListDispatches(r, metadata=md)) == registry
    # a ListPlans token is not a ListCases token either
    foreign = spb.ListCasesRequest(page_token=page.next_page_token)
    assert answer(lambda: clients.sv.ListCases(foreign, metadata=md)) == registry
    size = answer(lambda: clients.sv.ListPlans(spb.ListPlansRequest(page_size=-1), metadata=md))
    assert size == (BAD, "REQUEST_OUT_OF_BOUNDS", "page_size")  # the bounds declared in proto/, before any handler


def test_list_plans_pages_through_with_opaque_tokens(clients, plans):
    inst, names = plans
    md, seen, token = h.md(h.CITY), [], ""
    for _ in range(len(names)):
        page = clients.sv.ListPlans(spb.ListPlansRequest(institution=inst, page_size=1, page_token=token), metadata=md)
        assert page.total_size == len(names) and len(page.plans) == 1
        seen.append(page.plans[0].name)
        token = page.next_page_token
        assert not token.isdigit() and token not in ("MQ==", "Mg==")  # not the raw offset (or its base64)
    assert token == "" and sorted(seen) == sorted(names)
