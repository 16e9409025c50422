"""Input bounds declared in proto/ are enforced for every RPC before its handler (issue 13): each request
below returned INTERNAL, grew a worker to 3.4 GB, or was stored although it should not have been. Now each
is INVALID_ARGUMENT with a BadRequest field violation in Chinese, and nothing changes. Real stack."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from bjsv.documents.v1 import documents_pb2, documents_pb2_grpc
from bjsv.notify.v1 import notify_pb2, notify_pb2_grpc
from bjsv.registry.v1 import registry_pb2, registry_pb2_grpc
from bjsv.rules.v1 import rules_pb2, rules_pb2_grpc
from tests import auth_support

MIB = "字" * (1 << 20)


@pytest.fixture(scope="module")
def channels(stack):
    chans = {name: auth_support.channel(stack.config.target(name)) for name in stack.services}  # city centre + operator
    yield chans
    for ch in chans.values():
        ch.close()


def refused(call, request) -> dict[str, str]:
    """The field violations of an INVALID_ARGUMENT refusal (fails the test on any other outcome)."""
    with pytest.raises(grpc.RpcError) as e:
        call(request, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.value.code(), e.value.details())
    out = {}
    for detail in rpc_status.from_call(e.value).details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.update({v.field: v.description for v in bad.field_violations})
    assert out, "no BadRequest field violations"
    return out


def test_set_clock_to_year_10000_is_refused_and_the_clock_is_unchanged(channels):
    notify = notify_pb2_grpc.NotifyServiceStub(channels["notify"])
    before = notify.GetClock(notify_pb2.GetClockRequest(), timeout=10)
    request = notify_pb2.SetClockRequest()
    request.fixed_time.seconds = 253_402_300_800  # 10000-01-01
    assert "1900-01-01至2200-01-01" in refused(notify.SetClock, request)["fixed_time"]
    request.fixed_time.seconds, request.fixed_time.nanos = 0, 1_000_000_000
    assert "fixed_time" in refused(notify.SetClock, request)
    after = notify.GetClock(notify_pb2.GetClockRequest(), timeout=10)
    assert after.mode == before.mode
    assert abs(after.now.seconds - before.now.seconds) < 60


def test_unknown_enum_numbers_are_refused(channels):
    notify = notify_pb2_grpc.NotifyServiceStub(channels["notify"])
    timers = notify_pb2.ListTimersRequest()
    timers.state = 7
    assert "有效取值" in refused(notify.ListTimers, timers)["state"]
    letters = notify_pb2.ListDeadLettersRequest()
    letters.channel = 999
    assert "channel" in refused(notify.ListDeadLetters, letters)


def test_propose_team_with_a_huge_team_size_is_refused_citing_article_20(channels):
    rules = rules_pb2_grpc.RulesServiceStub(channels["rules"])
    violation = refused(rules.ProposeTeam, rules_pb2.ProposeTeamRequest(team_size=2_147_483_646))["team_size"]
    assert "0至50" in violation and "第二十条" in violation


def test_undecodable_bytes_are_refused_not_internal(channels):
    garbage = channels["rules"].unary_unary("/bjsv.rules.v1.RulesService/ProposeTeam")
    assert "无法解析" in refused(garbage, b"\x2a\x03\xff\xfe\xfd\x0a")[""]


def test_a_one_mib_reason_or_phone_is_refused_before_it_reaches_the_registry(channels):
    registry = registry_pb2_grpc.RegistryServiceStub(channels["registry"])
    request = registry_pb2.SuspendAppointmentRequest(name="appointments/1", reason=MIB)
    assert "不得超过500个字符" in refused(registry.SuspendAppointment, request)["reason"]
    update = registry_pb2.UpdateSupervisorRequest()
    update.supervisor.name = "supervisors/1"
    update.supervisor.phone = MIB
    assert "supervisor.phone" in refused(registry.UpdateSupervisor, update)


def test_a_resource_id_beyond_64_bits_is_refused(channels):
    registry = registry_pb2_grpc.RegistryServiceStub(channels["registry"])
    request = registry_pb2.ListBadgesRequest(supervisor="supervisors/99999999999999999999999999")
    assert "资源编号超出范围" in refused(registry.ListBadges, request)["supervisor"]


def test_an_out_of_range_timestamp_in_a_nested_message_is_refused(channels):
    documents = documents_pb2_grpc.DocumentsServiceStub(channels["documents"])
    request = documents_pb2.RenderFeedbackRequest()
    fields = {f.name: f for f in request.DESCRIPTOR.fields}
    data = getattr(request, next(n for n, f in fields.items() if f.message_type is not None))
    stamp = next(f for f in data.DESCRIPTOR.fields if f.message_type and f.message_type.name == "Timestamp")
    getattr(data, stamp.name).seconds = -62_135_596_801
    assert any(field.endswith(stamp.name) for field in refused(documents.RenderFeedback, request))


def test_a_drawn_pool_member_outside_its_bounds_is_refused_naming_its_index(channels):
    """ProposeTeam checks a pool member when the draw reaches it (the pool may hold 10,000; see
    validation.parse): every member here is drawn, and the third one's employer is 600 characters long."""
    rules = rules_pb2_grpc.RulesServiceStub(channels["rules"])
    pool = [
        rules_pb2.SupervisorFacts(
            name=f"supervisors/{i}",
            person_id=f"P{i}",
            gender=1,
            birth_date="1970-05-20",
            kind=1,
            level=2,
            district_code="08",
            status=1,
            term_start_date="2024-01-01",
            employer="institutions/1" if i != 2 else "x" * 600,
        )
        for i in range(3)
    ]
    request = rules_pb2.ProposeTeamRequest(
        dispatching_agency="agencies/08",
        plan=rules_pb2.PlanFacts(name="plans/1", institution="institutions/7", district_code="08", candidate_count=50),
        session=rules_pb2.SessionFacts(name="plans/1/sessions/1", date="2024-06-03"),
        pool=pool,
        as_of_date="2024-06-03",
        team_size=2,
        seed="bounds",
    )
    assert "不得超过500个字符" in refused(rules.ProposeTeam, request)["pool[2].employer"]
