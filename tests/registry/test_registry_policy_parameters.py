"""The term length (第十三条) comes from the rule set in force, as the rules service serves it: a deployment's
override in BJSV_RULES_POLICY_FILE reaches appointments without a registry setting of its own."""

from __future__ import annotations

import datetime as dt

import pytest
from registry_helpers import build_stack, supervisor_msg

from bjsv.registry.v1 import registry_pb2 as pb


@pytest.fixture(scope="module")
def stub(tmp_path_factory, nats_server):
    tmp = tmp_path_factory.mktemp("policy")
    policy = tmp / "policy.yaml"
    policy.write_text("rulesets:\n  bj-2022:\n    appointment.term_years: 4\n", encoding="utf-8")
    stack = build_stack(tmp, nats_server.url, rules_env={"BJSV_RULES_POLICY_FILE": str(policy)})
    try:
        yield stack.stub()
    finally:
        stack.stop()


def test_an_overridden_term_length_reaches_appointment_and_validity_text_art13_d4(stub):
    sup = stub.RegisterSupervisor(pb.RegisterSupervisorRequest(supervisor=supervisor_msg(name="周四年"))).supervisor
    start = (dt.date.today() - dt.timedelta(days=30)).replace(day=15)  # a recent start, no 29 February
    appt = stub.AppointSupervisor(pb.AppointSupervisorRequest(supervisor=sup.name, start_date=start.isoformat(),
                                                              appointed_by="张主任")).appointment
    four_years = start.replace(year=start.year + 4)
    assert appt.current_term.end_date == (four_years - dt.timedelta(days=1)).isoformat()
    assert appt.current_term.validity_text == f"{start:%Y.%m}-{four_years:%Y.%m}"
