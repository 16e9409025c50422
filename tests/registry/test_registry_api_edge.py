"""RegistryService over a real gRPC channel (registry process, SQLite, NATS), without the rules service:
organisations, registration and its validation errors, code parsing/validation, and UNAVAILABLE when
the rules service cannot be reached (never an appointment without a decision)."""

from __future__ import annotations

import grpc
import pytest
from registry_helpers import build_stack, call_error, photo_bytes, supervisor_msg

from bjsv.registry.v1 import registry_pb2 as pb
from common.clock import Clock


@pytest.fixture(scope="module")
def stub(tmp_path_factory, nats_server):
    stack = build_stack(tmp_path_factory.mktemp("edge"), nats_server.url, with_rules=False)
    yield stack.stub()
    stack.stop()


def test_agencies_are_the_city_centre_and_table3_districts(stub):
    agencies = stub.ListAgencies(pb.ListAgenciesRequest()).agencies
    assert [a.code for a in agencies][:3] == ["A", "01", "02"] and len(agencies) == 18
    assert agencies[0].display_name == "北京市职业技能鉴定管理中心" and agencies[0].city_centre
    seal = photo_bytes("PNG", (200, 200))
    updated = stub.UpdateAgency(pb.UpdateAgencyRequest(
        agency=pb.Agency(name="agencies/A", seal=seal), update_mask={"paths": ["seal"]})).agency  # fmt: skip
    assert updated.seal_sha256 and not updated.seal  # BASIC view: no bytes
    assert stub.GetAgency(pb.GetAgencyRequest(name="agencies/A", view=pb.VIEW_FULL)).agency.seal == seal


def test_institution_validation_and_duplicate_last_four_digits(stub):
    ok = stub.CreateInstitution(pb.CreateInstitutionRequest(institution=pb.Institution(
        number="1100017001", type=pb.INSTITUTION_TYPE_EMPLOYER, display_name="北京某某科技有限公司",
        district_code="08"))).institution  # fmt: skip
    assert ok.name == "institutions/1100017001" and ok.code_digits == "7001"
    err = call_error(stub.CreateInstitution, pb.CreateInstitutionRequest(institution=pb.Institution(
        number="1100027001", type=pb.INSTITUTION_TYPE_SOCIAL_ORGANIZATION, display_name="另一机构",
        district_code="05")))  # fmt: skip
    assert err["code"] == grpc.StatusCode.ALREADY_EXISTS and "后四位" in err["violations"][0][1]
    err = call_error(stub.CreateInstitution, pb.CreateInstitutionRequest(institution=pb.Institution(
        number="11000A", display_name="", district_code="03")))  # fmt: skip
    assert err["code"] == grpc.StatusCode.INVALID_ARGUMENT
    fields = {f for f, _ in err["violations"]}
    assert {"institution.number", "institution.type", "institution.display_name", "institution.district_code"} <= fields


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"id_number": "110108197005200010"}, "supervisor.id_number", "校验码"),
        ({"id_number": "11010819700520001"}, "supervisor.id_number", "18位"),
        ({"birth_date": "1970-05-21"}, "supervisor.birth_date", "不一致"),
        ({"gender": pb.GENDER_FEMALE}, "supervisor.gender", "第17位"),
        ({"district_code": "03"}, "supervisor.district_code", "表3"),
        ({"photo": b"GIF89a not really"}, "supervisor.photo", "JPEG或PNG"),
        ({"photo": photo_bytes("JPEG", (40, 40))}, "supervisor.photo", "过小"),
        ({"full_name": ""}, "supervisor.full_name", "姓名"),
        ({"type": pb.SUPERVISOR_TYPE_UNSPECIFIED}, "supervisor.type", "第五条"),
    ],
)
def test_bad_supervisor_input_is_invalid_argument_with_a_chinese_field_violation(stub, change, field, words):
    before = stub.ListSupervisors(pb.ListSupervisorsRequest()).total_size
    msg = supervisor_msg()
    for k, v in change.items():
        setattr(msg, k, v)
    err = call_error(stub.RegisterSupervisor, pb.RegisterSupervisorRequest(supervisor=msg))
    assert err["code"] == grpc.StatusCode.INVALID_ARGUMENT
    assert any(f == field and words in d for f, d in err["violations"]), err["violations"]
    assert stub.ListSupervisors(pb.ListSupervisorsRequest()).total_size == before  # no partial rows


def test_duplicate_id_number_is_already_exists(stub):
    msg = supervisor_msg(name="王五")
    sup = stub.RegisterSupervisor(pb.RegisterSupervisorRequest(supervisor=msg)).supervisor
    assert sup.status == pb.APPOINTMENT_STATUS_NOT_APPOINTED and "*" in sup.id_number
    err = call_error(stub.RegisterSupervisor, pb.RegisterSupervisorRequest(supervisor=msg))
    assert err["code"] == grpc.StatusCode.ALREADY_EXISTS
    assert err["violations"][0][0] == "supervisor.id_number" and "重复" in err["violations"][0][1]
    full = stub.GetSupervisor(pb.GetSupervisorRequest(name=sup.name, view=pb.VIEW_FULL)).supervisor
    assert full.id_number == msg.id_number and full.photo == msg.photo


def test_internal_supervisor_needs_a_registered_institution(stub):
    err = call_error(stub.RegisterSupervisor, pb.RegisterSupervisorRequest(
        supervisor=supervisor_msg(institution="institutions/9999999999")))  # fmt: skip
    assert err["code"] == grpc.StatusCode.FAILED_PRECONDITION and "未登记" in err["preconditions"][0][1]


def test_appointment_without_a_reachable_rules_service_is_unavailable_and_stores_nothing(stub):
    sup = stub.RegisterSupervisor(pb.RegisterSupervisorRequest(supervisor=supervisor_msg(name="赵六"))).supervisor
    err = call_error(stub.AppointSupervisor, pb.AppointSupervisorRequest(supervisor=sup.name))
    assert err["code"] == grpc.StatusCode.UNAVAILABLE
    again = stub.GetSupervisor(pb.GetSupervisorRequest(name=sup.name)).supervisor
    assert again.status == pb.APPOINTMENT_STATUS_NOT_APPOINTED and not again.current_appointment


@pytest.mark.parametrize(
    ("code", "category", "district", "institution", "year", "serial"),
    [
        ("R1122A001", pb.BADGE_CATEGORY_EXTERNAL_CITY, "A", "", 2022, 1),
        ("Y112001220001", pb.BADGE_CATEGORY_INTERNAL_EMPLOYER, "", "2001", 2022, 1),
        ("R11220801", pb.BADGE_CATEGORY_EXTERNAL_DISTRICT, "08", "", 2022, 1),
    ],
)
def test_parse_badge_code_rpc_returns_the_annex_examples_parts(stub, code, category, district, institution, year,
                                                               serial):  # fmt: skip
    p = stub.ParseBadgeCode(pb.ParseBadgeCodeRequest(code=code)).parts
    assert (p.category, p.district_code, p.institution_digits, p.year, p.serial, p.issuer_region) == (
        category, district, institution, year, serial, "11")  # fmt: skip


@pytest.mark.parametrize(
    ("code", "field", "words"),
    [("R1122A00", "code", "9位"), ("R11220301", "district_code", "表3"), ("R1122A000", "serial_digits", "001—999"),
     ("R11X2A001", "year_digits", "第4位"), ("", "code", "不能为空")],
)  # fmt: skip
def test_parse_badge_code_rpc_names_the_violation(stub, code, field, words):
    err = call_error(stub.ParseBadgeCode, pb.ParseBadgeCodeRequest(code=code))
    assert err["code"] == grpc.StatusCode.INVALID_ARGUMENT
    assert err["violations"][0][0] == field and words in err["violations"][0][1]


def test_validate_badge_code_checks_the_institution_type(stub):
    stub.CreateInstitution(pb.CreateInstitutionRequest(institution=pb.Institution(
        number="1100018002", type=pb.INSTITUTION_TYPE_SOCIAL_ORGANIZATION, display_name="某某培训评价中心",
        district_code="05")))  # fmt: skip
    r = stub.ValidateBadgeCode(pb.ValidateBadgeCodeRequest(code="Y118002220001"))
    assert not r.valid and r.violations[0].reason == "CATEGORY_MISMATCH"
    assert stub.ValidateBadgeCode(pb.ValidateBadgeCodeRequest(code="S118002220001")).valid
    r = stub.ValidateBadgeCode(pb.ValidateBadgeCodeRequest(code="S110000220001"))
    assert r.violations[0].reason == "UNKNOWN_INSTITUTION"
    year = (Clock().today().year + 2) % 100  # the service's Beijing year
    r = stub.ValidateBadgeCode(pb.ValidateBadgeCodeRequest(code=f"R11{year:02d}A001"))
    assert r.violations[0].reason == "YEAR_IN_FUTURE"
    assert stub.ValidateBadgeCode(pb.ValidateBadgeCodeRequest(code="R1122A0O1")).violations[0].field == "serial_digits"


@pytest.mark.parametrize("typed", ["r1122a001", " R1122A001", "Ｒ１１２２Ａ００１"])
def test_non_canonical_badge_code_is_invalid_and_named_canonical_annex1(stub, typed):
    r = stub.ValidateBadgeCode(pb.ValidateBadgeCodeRequest(code=typed))
    assert not r.valid and r.canonical_code == "R1122A001"
    (v,) = [v for v in r.violations if v.reason == "NOT_CANONICAL"]
    assert v.field == "code" and "R1122A001" in v.description and "大写英文字母" in v.description
    parsed = stub.ParseBadgeCode(pb.ParseBadgeCodeRequest(code=typed))
    assert parsed.normalised and parsed.parts.code == "R1122A001"
    exact = stub.ParseBadgeCode(pb.ParseBadgeCodeRequest(code="R1122A001"))
    assert not exact.normalised
    assert stub.ValidateBadgeCode(pb.ValidateBadgeCodeRequest(code="R1122A001")).canonical_code == "R1122A001"


def test_verify_unknown_and_malformed_codes(stub):
    assert stub.VerifyBadge(pb.VerifyBadgeRequest(code="R1122A001")).status == pb.BADGE_STATUS_UNKNOWN_CODE
    assert stub.VerifyBadge(pb.VerifyBadgeRequest(code="hello")).status == pb.BADGE_STATUS_UNKNOWN_CODE


def test_list_filters_and_page_tokens(stub):
    for i in range(3):
        stub.RegisterSupervisor(pb.RegisterSupervisorRequest(supervisor=supervisor_msg(name=f"分页{i}", district="30")))
    first = stub.ListSupervisors(pb.ListSupervisorsRequest(page_size=2, district_code="30"))
    assert len(first.supervisors) == 2 and first.total_size == 3 and first.next_page_token
    rest = stub.ListSupervisors(pb.ListSupervisorsRequest(page_size=2, district_code="30",
                                                          page_token=first.next_page_token))  # fmt: skip
    assert [s.full_name for s in rest.supervisors] == ["分页2"] and not rest.next_page_token
    assert stub.ListSupervisors(pb.ListSupervisorsRequest(name_query="分页")).total_size == 3
    err = call_error(stub.ListSupervisors, pb.ListSupervisorsRequest(district_code="99"))
    assert err["code"] == grpc.StatusCode.INVALID_ARGUMENT
    counts = stub.GetRegistryCounts(pb.GetRegistryCountsRequest(district_code="30"))
    assert counts.total == 3 and counts.counts[0].district_name == "北京经济技术开发区"


def test_update_supervisor_attestations_training_photo_and_publishes_updated(stub):
    sup = stub.RegisterSupervisor(
        pb.RegisterSupervisorRequest(supervisor=supervisor_msg(name="孙七", attested=False, photo=False))
    ).supervisor
    assert not sup.attestations and not sup.photo_sha256
    new = pb.Supervisor(
        name=sup.name, full_name="孙七七", phone="010-1234", photo=photo_bytes("PNG"),
        attestations=[pb.Attestation(item=pb.ATTESTATION_ITEM_HEALTH, satisfied=True, attested_by="体检中心",
                                     attested_date="2026-03-01")],
        training=pb.TrainingAssessment(passed=True, assessed_by="agencies/08", assessed_date="2026-03-02"),
    )  # fmt: skip
    mask = {"paths": ["full_name", "phone", "photo", "attestations", "training"]}
    out = stub.UpdateSupervisor(pb.UpdateSupervisorRequest(supervisor=new, update_mask=mask)).supervisor
    assert (out.full_name, out.phone, out.photo_mime_type) == ("孙七七", "010-1234", "image/png")
    assert [(a.item, a.attested_by) for a in out.attestations] == [(pb.ATTESTATION_ITEM_HEALTH, "体检中心")]
    assert out.training.assessed_by == "agencies/08" and out.training.passed
    party_line = pb.Attestation(item=pb.ATTESTATION_ITEM_PARTY_LINE, satisfied=True)
    bad = pb.Supervisor(name=sup.name, attestations=[party_line])
    err = call_error(
        stub.UpdateSupervisor, pb.UpdateSupervisorRequest(supervisor=bad, update_mask={"paths": ["attestations"]})
    )
    assert err["code"] == grpc.StatusCode.INVALID_ARGUMENT
    assert {f for f, _ in err["violations"]} >= {"supervisor.attestations[0].attested_by"}
    err = call_error(
        stub.UpdateSupervisor, pb.UpdateSupervisorRequest(supervisor=bad, update_mask={"paths": ["id_number"]})
    )
    assert err["code"] == grpc.StatusCode.INVALID_ARGUMENT and err["violations"][0][0] == "update_mask"
    err = call_error(stub.GetSupervisor, pb.GetSupervisorRequest(name="supervisors/99999"))
    assert err["code"] == grpc.StatusCode.NOT_FOUND


def test_update_and_list_institutions(stub):
    inst = pb.Institution(
        number="1100019301", type=pb.INSTITUTION_TYPE_EMPLOYER, display_name="北京某某集团", district_code="13"
    )
    stub.CreateInstitution(pb.CreateInstitutionRequest(institution=inst))
    logo = photo_bytes("PNG", (120, 120))
    out = stub.UpdateInstitution(pb.UpdateInstitutionRequest(
        institution=pb.Institution(name="institutions/1100019301", display_name="北京某某集团有限公司", logo=logo),
        update_mask={"paths": ["display_name", "logo"]})).institution  # fmt: skip
    assert out.display_name == "北京某某集团有限公司" and out.logo_sha256 and not out.logo
    full = stub.GetInstitution(pb.GetInstitutionRequest(name="institutions/1100019301", view=pb.VIEW_FULL)).institution
    assert full.logo == logo
    listed = stub.ListInstitutions(pb.ListInstitutionsRequest(district_code="13", type=pb.INSTITUTION_TYPE_EMPLOYER))
    assert [i.number for i in listed.institutions] == ["1100019301"]
    bad = pb.Institution(name="institutions/1100019301", logo=b"nope")
    err = call_error(
        stub.UpdateInstitution, pb.UpdateInstitutionRequest(institution=bad, update_mask={"paths": ["logo"]})
    )
    assert err["code"] == grpc.StatusCode.INVALID_ARGUMENT and err["violations"][0][0] == "institution.logo"


@pytest.mark.parametrize(
    ("call", "request_", "reason", "field"),
    [
        ("GetSupervisor", pb.GetSupervisorRequest(name="supervisor/1"), "RESOURCE_NAME", "name"),
        ("GetSupervisor", pb.GetSupervisorRequest(name="supervisors/abc"), "RESOURCE_NAME", "name"),
        ("GetSupervisor", pb.GetSupervisorRequest(name=f"supervisors/{2**63}"), "REQUEST_OUT_OF_BOUNDS", "name"),
        ("IssueBadge", pb.IssueBadgeRequest(appointment="appointments/"), "RESOURCE_NAME", "appointment"),
        ("ListBadges", pb.ListBadgesRequest(supervisor="supervisors/x"), "RESOURCE_NAME", "supervisor"),
        ("ListAppointments", pb.ListAppointmentsRequest(expiring_before="2026-02-30"), "DATE_FORMAT",
         "expiring_before"),
        ("RunExpirySweep", pb.RunExpirySweepRequest(as_of_date="20260101"), "DATE_FORMAT", "as_of_date"),
        ("ListSupervisors", pb.ListSupervisorsRequest(page_token="OA=="), "PAGE_TOKEN", "page_token"),
        ("ListSupervisors", pb.ListSupervisorsRequest(page_size=-1), "REQUEST_OUT_OF_BOUNDS", "page_size"),
    ],
)  # fmt: skip
def test_malformed_names_dates_and_page_tokens_get_the_common_api_reasons(stub, call, request_, reason, field):
    err = call_error(getattr(stub, call), request_)
    assert err["code"] == grpc.StatusCode.INVALID_ARGUMENT and err["reason"] == reason
    assert err["violations"][0][0] == field


def test_a_page_token_resumes_only_the_listing_that_handed_it_out(stub):
    for i in range(3):
        stub.RegisterSupervisor(pb.RegisterSupervisorRequest(supervisor=supervisor_msg(name=f"令牌{i}", district="29")))
    token = stub.ListSupervisors(pb.ListSupervisorsRequest(page_size=1, district_code="29")).next_page_token
    assert token and "=" not in token  # opaque, not base64 of an id
    err = call_error(stub.ListAppointments, pb.ListAppointmentsRequest(page_token=token))
    assert err["reason"] == "PAGE_TOKEN"
    body, _, check = token.partition(".")
    forged = ("A" if body[0] != "A" else "B") + body[1:] + "." + check
    assert call_error(stub.ListSupervisors, pb.ListSupervisorsRequest(page_token=forged))["reason"] == "PAGE_TOKEN"
