"""Dated training records (第十条–第十二条, D22) and dated employer/affiliations (第十六条) through the
registry's public gRPC API, with the real rules service deciding eligibility."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from registry_helpers import call_error, supervisor_msg

from bjsv.registry.v1 import registry_pb2 as pb
from common.clock import Clock


@pytest.fixture(scope="module")
def stub(registry_stack):
    return registry_stack.stub()


def today() -> dt.date:
    return Clock().today()  # the service's Beijing date


def ago(days: int) -> str:
    return (today() - dt.timedelta(days=days)).isoformat()


def untrained(stub, **kw) -> pb.Supervisor:
    msg = supervisor_msg(**kw)
    msg.ClearField("training")
    return stub.RegisterSupervisor(pb.RegisterSupervisorRequest(supervisor=msg)).supervisor


def training(
    trainer: str, day: str, *, passed: bool = True, cert: str = "BJ-PX-0001", course: str = "质量督导员岗前培训"
):
    return pb.TrainingAssessment(course=course, assessed_by=trainer, assessed_date=day, passed=passed,
                                 certificate_number=cert)  # fmt: skip


def test_a_term_cannot_start_before_the_passed_training_art10_d22(stub):
    sup = untrained(stub, name="周培训", district="08")
    err = call_error(stub.AppointSupervisor, pb.AppointSupervisorRequest(supervisor=sup.name, start_date=ago(5)))
    assert err["code"] == grpc.StatusCode.FAILED_PRECONDITION
    assert any("第十条" in d for _, d in err["preconditions"]), err
    stub.RecordTraining(pb.RecordTrainingRequest(supervisor=sup.name, training=training("agencies/08", ago(10))))
    err = call_error(stub.AppointSupervisor, pb.AppointSupervisorRequest(supervisor=sup.name, start_date=ago(20)))
    assert err["code"] == grpc.StatusCode.FAILED_PRECONDITION
    assert any("早于培训考核合格日期" in d and "第十条" in d for _, d in err["preconditions"]), err
    appt = stub.AppointSupervisor(pb.AppointSupervisorRequest(supervisor=sup.name, start_date=ago(5))).appointment
    assert appt.current_term.start_date == ago(5)
    shown = stub.GetSupervisor(pb.GetSupervisorRequest(name=sup.name)).supervisor.training
    assert (shown.course, shown.certificate_number, shown.assessed_date) == (
        "质量督导员岗前培训",
        "BJ-PX-0001",
        ago(10),
    )


def test_a_failed_assessment_does_not_qualify_art10(stub):
    sup = untrained(stub, name="吴未过", district="08")
    failed = training("agencies/A", ago(30), passed=False, cert="")
    stub.RecordTraining(pb.RecordTrainingRequest(supervisor=sup.name, training=failed))
    err = call_error(stub.AppointSupervisor, pb.AppointSupervisorRequest(supervisor=sup.name))
    assert err["code"] == grpc.StatusCode.FAILED_PRECONDITION
    listed = stub.ListTrainings(pb.ListTrainingsRequest(supervisor=sup.name)).trainings
    assert [(t.passed, t.assessed_by) for t in listed] == [(False, "agencies/A")]


def test_trainer_must_be_an_agency_for_externals_art11_and_the_own_institution_for_internals_art12(stub):
    ext = untrained(stub, name="郑外督", district="08")
    err = call_error(stub.RecordTraining, pb.RecordTrainingRequest(
        supervisor=ext.name, training=training("institutions/1100012001", ago(3))))  # fmt: skip
    assert err["code"] == grpc.StatusCode.INVALID_ARGUMENT
    assert any(f == "training.assessed_by" and "第十一条" in d for f, d in err["violations"]), err
    err = call_error(stub.RecordTraining, pb.RecordTrainingRequest(
        supervisor=ext.name, training=training("agencies/08", ago(3), cert="", course="")))  # fmt: skip
    assert {f for f, _ in err["violations"]} == {"training.course", "training.certificate_number"}
    stub.CreateInstitution(pb.CreateInstitutionRequest(institution=pb.Institution(
        number="1100017007", type=pb.INSTITUTION_TYPE_EMPLOYER, display_name="北京某某培训中心", district_code="08",
        contact="010-00000000")))  # fmt: skip
    internal = untrained(stub, name="冯内督", institution="institutions/1100017007")
    err = call_error(stub.RecordTraining, pb.RecordTrainingRequest(
        supervisor=internal.name, training=training("agencies/08", ago(3))))  # fmt: skip
    assert any("第十二条" in d for _, d in err["violations"]), err
    ok = stub.RecordTraining(pb.RecordTrainingRequest(
        supervisor=internal.name, training=training("institutions/1100017007", ago(3)))).training  # fmt: skip
    assert ok.name.startswith(f"{internal.name}/trainings/") and ok.passed


def test_backdating_a_term_start_is_bounded_d22(stub):
    sup = untrained(stub, name="陈倒签", district="08")
    stub.RecordTraining(pb.RecordTrainingRequest(supervisor=sup.name, training=training("agencies/08", ago(900))))
    err = call_error(stub.AppointSupervisor, pb.AppointSupervisorRequest(supervisor=sup.name, start_date=ago(800)))
    assert err["code"] == grpc.StatusCode.INVALID_ARGUMENT
    assert any(f == "start_date" and "730" in d for f, d in err["violations"]), err


def test_employer_and_affiliations_are_dated_and_replaced_on_update_art16(stub):
    msg = supervisor_msg(name="蒋任职", district="08")
    msg.affiliations.add(institution="institutions/1100012001", kind=pb.AFFILIATION_KIND_EMPLOYER,
                         from_date="2020-01-01", until_date="2024-12-31")  # fmt: skip
    msg.affiliations.add(institution="institutions/1100013002", kind=pb.AFFILIATION_KIND_OTHER, from_date="2023-05-01")
    sup = stub.RegisterSupervisor(pb.RegisterSupervisorRequest(supervisor=msg)).supervisor
    assert [(a.institution, a.kind, a.until_date) for a in sup.affiliations] == [
        ("institutions/1100012001", pb.AFFILIATION_KIND_EMPLOYER, "2024-12-31"),
        ("institutions/1100013002", pb.AFFILIATION_KIND_OTHER, ""),
    ]
    change = pb.Supervisor(name=sup.name)
    change.affiliations.add(institution="institutions/1100019009", kind=pb.AFFILIATION_KIND_EMPLOYER,
                            from_date="2025-01-01")  # fmt: skip
    out = stub.UpdateSupervisor(pb.UpdateSupervisorRequest(supervisor=change, update_mask={"paths": ["affiliations"]}))
    assert [a.institution for a in out.supervisor.affiliations] == ["institutions/1100019009"]
    bad = pb.Supervisor(name=sup.name)
    bad.affiliations.add(institution="1100019009", kind=pb.AFFILIATION_KIND_UNSPECIFIED, from_date="2025-01-01",
                         until_date="2024-01-01")  # fmt: skip
    req = pb.UpdateSupervisorRequest(supervisor=bad, update_mask={"paths": ["affiliations"]})
    err = call_error(stub.UpdateSupervisor, req)
    assert {f for f, _ in err["violations"]} == {
        "supervisor.affiliations[0].institution", "supervisor.affiliations[0].kind",
        "supervisor.affiliations[0].until_date",
    }  # fmt: skip
