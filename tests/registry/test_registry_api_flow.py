"""The registry with the real rules service over gRPC (SQLite, NATS): appointment with an eligibility
decision (第九条, 第十条), badges and codes (附件1), filing (第十二条), VerifyBadge, suspension /
reinstatement / revocation (第二十七条), renewal and automatic expiry (第十三条), and the events."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from registry_helpers import call_error, photo_bytes, stream_events, supervisor_msg

from bjsv.registry.v1 import registry_pb2 as pb
from common.clock import Clock

# The service's "today" is a Beijing date (its Clock); the host's date differs from 16:00 to 24:00 UTC.
TODAY = Clock().today()
YY = f"{TODAY.year % 100:02d}"


@pytest.fixture(scope="module")
def stub(registry_stack):
    return registry_stack.stub()


def appointed(stub, **kw) -> tuple[pb.Supervisor, pb.Appointment]:
    sup = stub.RegisterSupervisor(pb.RegisterSupervisorRequest(supervisor=supervisor_msg(**kw))).supervisor
    appt = stub.AppointSupervisor(pb.AppointSupervisorRequest(supervisor=sup.name, appointed_by="张主任")).appointment
    return sup, appt


def test_appointment_stores_the_rules_decision_and_a_three_year_term_art10_art13(stub, registry_stack, nats_server):
    sup, appt = appointed(stub, name="陈明", district="05")
    assert appt.status == pb.APPOINTMENT_STATUS_ACTIVE
    term = appt.current_term
    assert term.eligibility_decision_id.startswith("decisions/")
    start = dt.date.fromisoformat(term.start_date)
    assert start == TODAY and term.end_date == (start.replace(year=start.year + 3) - dt.timedelta(days=1)).isoformat()
    assert term.validity_text == f"{start:%Y.%m}-{start.year + 3}.{start:%m}"  # D4
    assert appt.appointing_organization == "agencies/05"
    again = stub.GetSupervisor(pb.GetSupervisorRequest(name=sup.name)).supervisor
    assert again.status == pb.APPOINTMENT_STATUS_ACTIVE and again.current_appointment == appt.name
    events = [p for _, p in stream_events(nats_server.url, "appointment.started") if p.appointment == appt.name]
    assert events, "appointment.started not published"
    p = events[0]  # self-sufficient for notify: name, gender, birth date, term, appointing organisation
    assert (p.supervisor.full_name, p.supervisor.gender, p.supervisor.birth_date) == ("陈明", pb.GENDER_MALE,
                                                                                     "1970-05-20")  # fmt: skip
    assert p.term.end_date == term.end_date and p.appointing_organization.display_name.startswith("朝阳区")
    assert "*" in p.supervisor.id_number_masked


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"birth": dt.date(TODAY.year - 61, 1, 1), "male": False}, "第九条"),  # woman over 60 (D6)
        ({"attested": False}, "第九条"),
        ({"trained": False}, "第十条"),
    ],
)
def test_ineligible_people_are_not_appointed_failed_precondition(stub, kw, words):
    sup = stub.RegisterSupervisor(pb.RegisterSupervisorRequest(supervisor=supervisor_msg(**kw))).supervisor
    err = call_error(stub.AppointSupervisor, pb.AppointSupervisorRequest(supervisor=sup.name))
    assert err["code"] == grpc.StatusCode.FAILED_PRECONDITION, err
    assert err["preconditions"] and any(words in d for _, d in err["preconditions"]), err["preconditions"]
    assert stub.GetSupervisor(pb.GetSupervisorRequest(name=sup.name)).supervisor.status == (
        pb.APPOINTMENT_STATUS_NOT_APPOINTED
    )


def test_second_appointment_while_active_is_refused(stub):
    sup, _ = appointed(stub)
    err = call_error(stub.AppointSupervisor, pb.AppointSupervisorRequest(supervisor=sup.name))
    assert err["code"] == grpc.StatusCode.FAILED_PRECONDITION and "第十三条" in err["preconditions"][0][1]


def test_external_badge_code_validity_verify_and_status_changes_art11_art27(stub, registry_stack, nats_server):
    _, appt = appointed(stub, name="欧阳娜娜", district="29", male=False, birth=dt.date(1975, 1, 2))
    badge = stub.IssueBadge(pb.IssueBadgeRequest(appointment=appt.name)).badge
    assert badge.code.startswith(f"R11{YY}29") and len(badge.code) == 9
    assert badge.issuer == "agencies/A" and badge.issuer_name == "北京市职业技能鉴定管理中心"  # 第十一条
    assert badge.validity_text == appt.current_term.validity_text and badge.title == "质量督导员 (外督员)"
    full = stub.GetBadge(pb.GetBadgeRequest(name=badge.name, view=pb.VIEW_FULL)).badge
    assert full.photo and full.photo_mime_type == "image/jpeg" and full.holder_name == "欧阳娜娜"
    assert stub.GetBadge(pb.GetBadgeRequest(name=badge.name)).badge == badge  # IssueBadge answers what is stored
    created = badge.create_time.ToDatetime(dt.UTC)
    assert abs((created - dt.datetime.now(dt.UTC)).total_seconds()) < 120  # instants stored in UTC
    assert not stub.GetBadge(pb.GetBadgeRequest(name=badge.name)).badge.photo  # BASIC: no bytes

    v = stub.VerifyBadge(pb.VerifyBadgeRequest(code=badge.code.lower()))
    assert (v.status, v.holder_name_masked, v.message) == (pb.BADGE_STATUS_ACTIVE, "欧**娜", "有效")
    assert v.photo_sha256 == full.photo_sha256 and v.level == pb.SUPERVISOR_LEVEL_DISTRICT

    err = call_error(stub.SuspendAppointment, pb.SuspendAppointmentRequest(name=appt.name, reason=""))
    assert err["code"] == grpc.StatusCode.INVALID_ARGUMENT
    assert {f for f, _ in err["violations"]} == {"reason", "article"}
    stub.SuspendAppointment(pb.SuspendAppointmentRequest(name=appt.name, reason="未认真履行职责", article="第二十七条",
                                                         decided_by="市鉴定管理中心"))  # fmt: skip
    v = stub.VerifyBadge(pb.VerifyBadgeRequest(code=badge.code))
    assert v.status == pb.BADGE_STATUS_SUSPENDED and "第二十七条" in v.message
    err = call_error(stub.RenewAppointment, pb.RenewAppointmentRequest(name=appt.name))
    assert err["code"] == grpc.StatusCode.FAILED_PRECONDITION
    stub.ReinstateAppointment(pb.ReinstateAppointmentRequest(name=appt.name, reason="整改完毕"))
    assert stub.VerifyBadge(pb.VerifyBadgeRequest(code=badge.code)).status == pb.BADGE_STATUS_ACTIVE
    revoked = stub.RevokeAppointment(pb.RevokeAppointmentRequest(
        name=appt.name, reason="利用职务谋取私利", article="第二十七条")).appointment  # fmt: skip
    assert revoked.status == pb.APPOINTMENT_STATUS_REVOKED
    assert stub.VerifyBadge(pb.VerifyBadgeRequest(code=badge.code)).status == pb.BADGE_STATUS_REVOKED
    err = call_error(stub.IssueBadge, pb.IssueBadgeRequest(appointment=appt.name, replace_existing=True))
    assert err["code"] == grpc.StatusCode.FAILED_PRECONDITION
    revoked_events = stream_events(nats_server.url, "appointment.revoked")
    revoked_events = [p for _, p in revoked_events if p.appointment == appt.name]
    assert revoked_events and revoked_events[0].revoked_badge_codes == [badge.code]


def test_internal_badges_are_coded_by_institution_and_filed_with_the_city_centre_art12(stub, nats_server):
    seal, logo = photo_bytes("PNG", (300, 300)), photo_bytes("PNG", (200, 100))
    inst = stub.CreateInstitution(pb.CreateInstitutionRequest(institution=pb.Institution(
        number="1100016101", type=pb.INSTITUTION_TYPE_SOCIAL_ORGANIZATION, display_name="北京某某职业技能培训学校",
        district_code="12", seal=seal, logo=logo))).institution  # fmt: skip
    _, a1 = appointed(stub, institution=inst.name)
    _, a2 = appointed(stub, institution=inst.name)
    _, a3 = appointed(stub, institution=inst.name)
    assert a1.appointing_organization == inst.name
    explicit = stub.IssueBadge(pb.IssueBadgeRequest(appointment=a1.name, explicit_serial=7)).badge
    assert explicit.code == f"S116101{YY}0007" and explicit.filed and explicit.issuer_name == "北京某某职业技能培训学校"
    err = call_error(stub.IssueBadge, pb.IssueBadgeRequest(appointment=a2.name, explicit_serial=7))
    assert err["code"] == grpc.StatusCode.ALREADY_EXISTS and err["violations"][0][0] == "explicit_serial"
    assert stub.IssueBadge(pb.IssueBadgeRequest(appointment=a2.name)).badge.code == f"S116101{YY}0001"
    next_year = stub.IssueBadge(pb.IssueBadgeRequest(appointment=a3.name, issue_date=f"{TODAY.year + 1}-01-02")).badge
    assert next_year.code == f"S116101{(TODAY.year + 1) % 100:02d}0001"  # serials restart in a new year (D1/D3)
    assert stub.GetBadge(pb.GetBadgeRequest(name=explicit.name)).badge == explicit
    full = stub.GetBadge(pb.GetBadgeRequest(name=explicit.name, view=pb.VIEW_FULL)).badge
    assert (full.issuer_seal, full.issuer_logo) == (seal, logo)
    filings = stub.ListBadgeFilings(pb.ListBadgeFilingsRequest(institution=inst.name)).filings
    assert sorted(f.code for f in filings) == sorted([explicit.code, f"S116101{YY}0001", next_year.code])
    assert {f.filed_with for f in filings} == {"agencies/A"}
    filed = [p for _, p in stream_events(nats_server.url, "badge.filed") if p.code == explicit.code]
    assert filed and filed[0].institution.display_name == "北京某某职业技能培训学校"
    assert filed[0].institution.institution_number == "1100016101"
    issued = [p for _, p in stream_events(nats_server.url, "badge.issued") if p.code == explicit.code]
    assert issued[0].issuer_seal_sha256 == inst.seal_sha256 and issued[0].title == "质量督导员 (内督员)"
    assert issued[0].appointing_organization == inst.name  # whom the badge PDF belongs to (issue #12)
    v = stub.VerifyBadge(pb.VerifyBadgeRequest(code=explicit.code))
    assert v.institution == inst.name and "仅限" in v.message  # 内督证卡仅限本评价机构内部使用


def test_renewal_starts_a_new_term_with_a_new_decision_and_expiry_is_automatic_art13(stub, nats_server):
    _, appt = appointed(stub, district="11")
    later = TODAY + dt.timedelta(days=30)
    req = pb.RenewAppointmentRequest(name=appt.name, start_date=later.isoformat(), renewed_by="房山区鉴定管理机构")
    renewed = stub.RenewAppointment(req).appointment
    assert renewed.current_term.term_number == 2 and len(renewed.terms) == 2
    assert renewed.current_term.start_date == later.isoformat()
    assert renewed.current_term.eligibility_decision_id.startswith("decisions/")
    assert renewed.current_term.eligibility_decision_id != appt.current_term.eligibility_decision_id
    ev = [p for _, p in stream_events(nats_server.url, "appointment.renewed") if p.appointment == appt.name]
    assert ev and ev[0].previous_term.term_number == 1 and ev[0].term.term_number == 2
    end = dt.date.fromisoformat(renewed.current_term.end_date)
    assert appt.name not in stub.RunExpirySweep(pb.RunExpirySweepRequest(as_of_date=end.isoformat())).expired
    swept = stub.RunExpirySweep(pb.RunExpirySweepRequest(as_of_date=(end + dt.timedelta(days=1)).isoformat()))
    assert appt.name in swept.expired
    assert stub.GetAppointment(pb.GetAppointmentRequest(name=appt.name)).appointment.status == (
        pb.APPOINTMENT_STATUS_EXPIRED
    )
    expired = [p for _, p in stream_events(nats_server.url, "appointment.expired") if p.appointment == appt.name]
    assert expired and expired[0].supervisor.full_name and expired[0].term.term_number == 2


def test_badge_for_an_unknown_or_inactive_appointment(stub):
    err = call_error(stub.IssueBadge, pb.IssueBadgeRequest(appointment="appointments/999999"))
    assert err["code"] == grpc.StatusCode.NOT_FOUND
    err = call_error(stub.IssueBadge, pb.IssueBadgeRequest(appointment="supervisors/1"))
    assert err["code"] == grpc.StatusCode.INVALID_ARGUMENT
    _, appt = appointed(stub, district="09")
    stub.IssueBadge(pb.IssueBadgeRequest(appointment=appt.name))
    err = call_error(stub.IssueBadge, pb.IssueBadgeRequest(appointment=appt.name))
    assert err["code"] == grpc.StatusCode.ALREADY_EXISTS
    req = pb.IssueBadgeRequest(appointment=appt.name, explicit_serial=3, replace_existing=True)
    err = call_error(stub.IssueBadge, req)
    assert err["code"] == grpc.StatusCode.INVALID_ARGUMENT and "第十一条" in err["violations"][0][1]


def test_dashboard_counts_and_expiring_filter(stub):
    counts = stub.GetRegistryCounts(pb.GetRegistryCountsRequest())
    assert counts.total > 0 and all(c.district_name for c in counts.counts)
    far = (TODAY + dt.timedelta(days=365 * 4)).isoformat()
    expiring = stub.ListSupervisors(pb.ListSupervisorsRequest(expiring_before=far, status=pb.APPOINTMENT_STATUS_ACTIVE))
    assert expiring.total_size > 0 and all(s.term_end < far for s in expiring.supervisors)


def test_exhausted_district_range_is_resource_exhausted_with_details_D2(stub, registry_stack):
    import sqlite3

    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    _, appt = appointed(stub, district="17")
    prefix = f"R11{YY}17"
    with sqlite3.connect(registry_stack.data_dir / "registry" / "registry.db") as conn:  # the range is used up
        conn.execute("INSERT INTO badge_counter (prefix, last_serial) VALUES (?, 99) "
                     "ON CONFLICT (prefix) DO UPDATE SET last_serial = 99", (prefix,))  # fmt: skip
    with pytest.raises(grpc.RpcError) as e:
        stub.IssueBadge(pb.IssueBadgeRequest(appointment=appt.name))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "01—99" in e.value.details()
    info = error_details_pb2.ErrorInfo()
    next(d for d in rpc_status.from_call(e.value).details if d.Unpack(info))
    assert info.reason == "BADGE_SERIALS_EXHAUSTED" and info.metadata["prefix"] == prefix
    assert info.metadata["max_serial"] == "99"
    assert stub.ListBadges(pb.ListBadgesRequest(supervisor=appt.supervisor)).total_size == 0


def test_list_badges_and_appointments_by_status(stub):
    _, appt = appointed(stub, district="06")
    badge = stub.IssueBadge(pb.IssueBadgeRequest(appointment=appt.name)).badge
    sup = appt.supervisor
    active = stub.ListBadges(pb.ListBadgesRequest(supervisor=sup, status=pb.BADGE_STATUS_ACTIVE)).badges
    assert [b.code for b in active] == [badge.code]
    stub.SuspendAppointment(pb.SuspendAppointmentRequest(name=appt.name, reason="调查中", article="第二十七条"))
    assert not stub.ListBadges(pb.ListBadgesRequest(supervisor=sup, status=pb.BADGE_STATUS_ACTIVE)).badges
    suspended = stub.ListBadges(pb.ListBadgesRequest(supervisor=sup, status=pb.BADGE_STATUS_SUSPENDED)).badges
    assert [b.code for b in suspended] == [badge.code]
    appts = stub.ListAppointments(
        pb.ListAppointmentsRequest(status=pb.APPOINTMENT_STATUS_SUSPENDED, district_code="06")
    )
    assert appt.name in [a.name for a in appts.appointments]
    assert appts.appointments[0].status_article == "第二十七条"
    by_year = stub.ListBadges(pb.ListBadgesRequest(district_code="06", year=TODAY.year))
    assert badge.code in [b.code for b in by_year.badges]
