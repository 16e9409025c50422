"""The HTTP/JSON API: every RPC reachable under /api/v1, the OpenAPI document valid and complete, errors as
RFC 9457 problem details with the same reason code as over gRPC, the caller's bearer token passed through
(the console adds no privilege), and the examples/ client runs with a client-credentials token over HTTPS."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest
import wf_helpers as h
from google.protobuf.descriptor_pool import Default
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from openapi_spec_validator import validate

from bjsv.registry.v1 import supervision_pb2 as spb
from services.console.transcode import SERVICES
from services.identity.config import IdentitySettings
from services.identity.issuer import Issuer
from tests.auth_support import token
from tests.console.conftest import INSTITUTION, Console

ROOT = Path(__file__).resolve().parents[2]
HAIDIAN = h.HAIDIAN
SV = "/api/v1/bjsv.registry.v1.SupervisionService"


def every_rpc() -> list[tuple[str, str]]:
    return [(s, m.name) for s in SERVICES for m in Default().FindServiceByName(s).methods]


@pytest.fixture(scope="module")
def api(console: Console) -> httpx.Client:
    return console.http(headers=bearer(HAIDIAN), timeout=60)


def bearer(who: tuple[str, ...]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(*who)}"}


def test_openapi_document_validates_and_documents_every_rpc_with_its_comment(api: httpx.Client) -> None:
    spec = api.get("/api/openapi.json").json()
    validate(spec)
    assert {tuple(p.split("/")[3:5]) for p in spec["paths"]} == set(every_rpc())
    create = spec["paths"][f"{SV}/CreateDispatch"]["post"]
    assert "第十四条" in create["description"]  # the proto comment, articles included
    plan = spec["components"]["schemas"]["bjsv.registry.v1.Plan"]["properties"]
    assert "D7" in plan["candidate_count"]["description"]


@pytest.mark.parametrize(("service", "method"), every_rpc())
def test_every_rpc_is_reachable(api: httpx.Client, service: str, method: str) -> None:
    """An empty request reaches the service: it answers or refuses, never 'no such method'."""
    streaming = Default().FindMethodByName(f"{service}.{method}").client_streaming
    resp = api.post(f"/api/v1/{service}/{method}", json=[] if streaming else {})
    if resp.status_code != 200:
        problem = resp.json()
        assert resp.headers["content-type"] == "application/problem+json"
        assert problem["grpc_status"] not in ("UNIMPLEMENTED", "INTERNAL") and problem["reason"] != "METHOD_NOT_FOUND"


def test_a_refusal_has_the_same_reason_and_findings_over_http_as_over_grpc(console: Console, api: httpx.Client) -> None:
    msg = h.plan_msg(INSTITUTION, dt.date(2026, 12, 1))
    req = spb.CreatePlanRequest(plan=msg, client_request_id="api-plan")
    plan = console.clients.sv.CreatePlan(req, metadata=h.md(h.HAIDIAN)).plan.name
    body = {
        "dispatch": {"plan": plan, "dispatching_agency": "agencies/08", "form": "SUPERVISION_FORM_ON_SITE"},
        "selection": "TEAM_SELECTION_MANUAL",
        "supervisors": ["supervisors/1"],
        "client_request_id": "api-1",
    }
    resp = api.post(f"{SV}/CreateDispatch", json=body)
    problem = resp.json()
    with pytest.raises(grpc.RpcError) as refused:
        req = spb.CreateDispatchRequest(
            dispatch=spb.Dispatch(plan=plan, dispatching_agency="agencies/08", form=spb.SUPERVISION_FORM_ON_SITE),
            selection=spb.TEAM_SELECTION_MANUAL, supervisors=["supervisors/1"], client_request_id="grpc-1",
        )  # fmt: skip
        console.clients.sv.CreateDispatch(req, metadata=h.md(h.HAIDIAN))
    status = rpc_status.from_call(refused.value)
    info, pf = error_details_pb2.ErrorInfo(), error_details_pb2.PreconditionFailure()
    for detail in status.details:
        for target in (info, pf):
            if detail.Is(target.DESCRIPTOR):
                detail.Unpack(target)
    assert resp.status_code == 400 and resp.headers["content-type"] == "application/problem+json"
    assert problem["grpc_status"] == refused.value.code().name == "FAILED_PRECONDITION"
    assert problem["reason"] == info.reason and problem["type"] == f"urn:bjsv:problem:{info.reason}"
    assert [v["type"] for v in problem["precondition_violations"]] == [v.type for v in pf.violations]
    assert any("第二十条" in v["description"] for v in problem["precondition_violations"])


def test_get_reads_take_query_parameters_and_bad_json_is_a_problem(api: httpx.Client) -> None:
    listed = api.get(f"{SV}/ListPlans", params={"district": "08", "page_size": "5"})
    assert (listed.status_code == 200 and "plans" in listed.json()) or listed.json() == {}
    assert api.get(f"{SV}/CreatePlan").json()["reason"] == "METHOD_NEEDS_POST"
    bad = api.post(f"{SV}/GetPlan", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["reason"] == "INVALID_JSON"
    unknown = api.post("/api/v1/bjsv.registry.v1.SupervisionService/Nope", json={})
    assert unknown.status_code == 404 and unknown.json()["reason"] == "METHOD_NOT_FOUND"


def test_the_callers_identity_goes_through_untouched(console: Console) -> None:
    """The console adds no privilege: the same call is refused or allowed as the caller's token says, a call
    without a token is UNAUTHENTICATED, and the former development headers grant nothing."""
    http = console.http(timeout=60)
    district = http.post(f"{SV}/RunSweep", json={}, headers=bearer(HAIDIAN))
    operator = http.post(f"{SV}/RunSweep", json={}, headers=bearer(h.OPERATOR))
    anonymous = http.post(f"{SV}/RunSweep", json={}, headers={"x-bjsv-org": "agencies/A", "x-bjsv-role": "operator"})
    assert district.status_code == 403 and district.json()["reason"] == "ROLE_NOT_AUTHORISED"
    assert operator.status_code == 200 and "as_of_date" in operator.json()
    assert anonymous.status_code == 401 and anonymous.json()["grpc_status"] == "UNAUTHENTICATED"


def test_the_example_client_runs(console: Console) -> None:
    """An integrator's system account (client credentials at the issuer), HTTPS verified with the stack's CA."""
    issuer = Issuer(IdentitySettings())
    with issuer.accounts.change() as accounts:
        accounts.pop("haidian-exam-system", None)
    _, secret = issuer.create_account("haidian-exam-system", "client", "agencies/08", ["district-agency"])
    args = ["--base", console.url, "--ca", console.ca, "--issuer", issuer.settings.issuer,
            "--client-id", "haidian-exam-system"]  # fmt: skip
    env = {**os.environ, "BJSV_CLIENT_SECRET": secret}
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "api_client.py"), *args],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "operations" in out.stdout and "海淀区" in out.stdout
    assert "refusal: HTTP 404 application/problem+json" in out.stdout
