"""The term length (第十三条), the age limit (第九条（五）, D6) and the badge serial ranges (附件1, D1) come from the
rule set in force, as the rules service serves it: a deployment's override in BJSV_RULES_POLICY_FILE reaches
appointments, badges and their events without a registry or notify setting of its own."""

from __future__ import annotations

import asyncio
import datetime as dt

import grpc
import nats
import pytest
from registry_helpers import build_stack, call_error, supervisor_msg

from bjsv.events.v1 import envelope_pb2
from bjsv.registry.v1 import events_pb2
from bjsv.registry.v1 import registry_pb2 as pb
from common import pki
from common.clock import Clock


@pytest.fixture(scope="module")
def stub(tmp_path_factory, nats_server):
    tmp = tmp_path_factory.mktemp("policy")
    policy = tmp / "policy.yaml"
    policy.write_text(
        "rulesets:\n  bj-2022:\n    appointment.term_years: 4\n    eligibility.max_age_male: 64\n"
        "    badge.district_serial_max: 1\n    appointment.max_backdate_days: 100\n",
        encoding="utf-8",
    )
    stack = build_stack(tmp, nats_server.url, rules_env={"BJSV_RULES_POLICY_FILE": str(policy)})
    try:
        yield stack.stub()
    finally:
        stack.stop()


def test_an_overridden_term_length_reaches_appointment_and_validity_text_art13_d4(stub):
    sup = stub.RegisterSupervisor(pb.RegisterSupervisorRequest(supervisor=supervisor_msg(name="周四年"))).supervisor
    start = (Clock().today() - dt.timedelta(days=30)).replace(day=15)  # a recent start, no 29 February
    appt = stub.AppointSupervisor(
        pb.AppointSupervisorRequest(supervisor=sup.name, start_date=start.isoformat(), appointed_by="张主任")
    ).appointment
    four_years = start.replace(year=start.year + 4)
    assert appt.current_term.end_date == (four_years - dt.timedelta(days=1)).isoformat()
    assert appt.current_term.validity_text == f"{start:%Y.%m}-{four_years:%Y.%m}"


async def test_the_appointment_event_carries_the_age_limit_in_force_for_notices_art9_d6(stub, nats_server):
    sup = stub.RegisterSupervisor(pb.RegisterSupervisorRequest(supervisor=supervisor_msg(name="吴六四"))).supervisor
    appt = stub.AppointSupervisor(pb.AppointSupervisorRequest(supervisor=sup.name)).appointment
    nc = await nats.connect(nats_server.url, tls=pki.ssl_context())
    try:
        js = nc.jetstream()
        for _ in range(100):  # the relay publishes right after the commit
            try:
                msg = await js.get_last_msg("BJSV_REGISTRY", "bjsv.registry.appointment.started")
            except nats.js.errors.NotFoundError:
                msg = None
            if msg is not None and appt.name.encode() in msg.data:
                break
            await asyncio.sleep(0.05)
    finally:
        await nc.close()
    env = envelope_pb2.EventEnvelope.FromString(msg.data)
    started = events_pb2.AppointmentStarted()
    env.payload.Unpack(started)
    assert started.appointment == appt.name and started.age_limit_years == 64  # male, overridden from 65


def test_an_overridden_district_serial_range_bounds_badge_issuance_annex1_d1(stub):
    appointments = []
    for name in ("郑一号", "郑二号"):
        msg = supervisor_msg(name=name, district="16")
        sup = stub.RegisterSupervisor(pb.RegisterSupervisorRequest(supervisor=msg)).supervisor
        appointments.append(stub.AppointSupervisor(pb.AppointSupervisorRequest(supervisor=sup.name)).appointment)
    first = stub.IssueBadge(pb.IssueBadgeRequest(appointment=appointments[0].name)).badge
    assert first.code.endswith("1601")
    with pytest.raises(grpc.RpcError) as e:  # the rule set allows 01—01 only
        stub.IssueBadge(pb.IssueBadgeRequest(appointment=appointments[1].name))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "01—01" in e.value.details()


def test_an_overridden_backdating_bound_refuses_an_older_term_start_art10_d22(stub):
    sup = stub.RegisterSupervisor(pb.RegisterSupervisorRequest(supervisor=supervisor_msg(name="郑回溯"))).supervisor
    too_early = (Clock().today() - dt.timedelta(days=200)).isoformat()  # within the shipped 730, over the 100
    request = pb.AppointSupervisorRequest(supervisor=sup.name, start_date=too_early, appointed_by="张主任")
    refused = call_error(stub.AppointSupervisor, request)
    assert refused["code"] == grpc.StatusCode.INVALID_ARGUMENT
    assert any("100" in text for _, text in refused["violations"]), refused
