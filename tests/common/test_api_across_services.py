"""One mistake, one answer, in every service (common.api): a malformed name is RESOURCE_NAME, a bad date
DATE_FORMAT, a page token not handed out by that listing PAGE_TOKEN — over real gRPC to the four services."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from bjsv.documents.v1 import documents_pb2, documents_pb2_grpc
from bjsv.notify.v1 import notify_pb2, notify_pb2_grpc
from bjsv.registry.v1 import registry_pb2, registry_pb2_grpc
from bjsv.rules.v1 import rules_pb2, rules_pb2_grpc
from common import api
from tests import auth_support

STUBS = {
    "registry": registry_pb2_grpc.RegistryServiceStub,
    "rules": rules_pb2_grpc.RulesServiceStub,
    "documents": documents_pb2_grpc.DocumentsServiceStub,
    "notify": notify_pb2_grpc.NotifyServiceStub,
}
FOREIGN = api.encode_page_token(1, listing="somewhere.Else")


@pytest.fixture(scope="module")
def stubs(stack):
    channels = {name: auth_support.channel(stack.config.target(name)) for name in STUBS}
    yield {name: STUBS[name](ch) for name, ch in channels.items()}
    for ch in channels.values():
        ch.close()


def answer(call) -> tuple[grpc.StatusCode, str, str]:
    """(status code, ErrorInfo reason, first field violation) of a failing call."""
    with pytest.raises(grpc.RpcError) as e:
        result = call()
        if hasattr(result, "__next__"):  # server streaming: the error arrives with the first message
            next(result)
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


CASES = [
    ("registry", "GetSupervisor", registry_pb2.GetSupervisorRequest(name="supervisor/7"), api.RESOURCE_NAME, "name"),
    ("rules", "GetDecision", rules_pb2.GetDecisionRequest(name="decision/7"), api.RESOURCE_NAME, "name"),
    ("documents", "GetDocument", documents_pb2.GetDocumentRequest(name="docs/7"), api.RESOURCE_NAME, "name"),
    ("notify", "RetryDeadLetter", notify_pb2.RetryDeadLetterRequest(name="deadLetters/x"), api.RESOURCE_NAME,
     "name"),
    ("registry", "RunExpirySweep", registry_pb2.RunExpirySweepRequest(as_of_date="2026-13-01"), api.DATE_FORMAT,
     "as_of_date"),
    ("rules", "GetRuleSet", rules_pb2.GetRuleSetRequest(as_of_date="2026/01/01"), api.DATE_FORMAT, "as_of_date"),
    ("registry", "ListSupervisors", registry_pb2.ListSupervisorsRequest(page_token=FOREIGN), api.PAGE_TOKEN,
     "page_token"),
    ("rules", "ListDecisions", rules_pb2.ListDecisionsRequest(page_token="8"), api.PAGE_TOKEN, "page_token"),
    ("documents", "ListDocuments", documents_pb2.ListDocumentsRequest(page_token="OA=="), api.PAGE_TOKEN,
     "page_token"),
    ("notify", "ListNotifications",
     notify_pb2.ListNotificationsRequest(recipient="agencies/08", page_token=FOREIGN), api.PAGE_TOKEN, "page_token"),
    # A negative page size is outside the bounds declared in proto/ (common.validation, before any handler).
    ("documents", "ListDocuments", documents_pb2.ListDocumentsRequest(page_size=-1), "REQUEST_OUT_OF_BOUNDS",
     "page_size"),
    ("registry", "ListSupervisors", registry_pb2.ListSupervisorsRequest(page_size=-1), "REQUEST_OUT_OF_BOUNDS",
     "page_size"),
]  # fmt: skip


@pytest.mark.parametrize(("service", "rpc", "request_", "reason", "field"), CASES,
                         ids=[f"{c[0]}.{c[1]}-{c[3]}" for c in CASES])  # fmt: skip
def test_the_same_mistake_gets_the_same_reason_in_every_service(stubs, service, rpc, request_, reason, field):
    call = getattr(stubs[service], rpc)
    assert answer(lambda: call(request_, timeout=15)) == (grpc.StatusCode.INVALID_ARGUMENT, reason, field)
