"""Helpers for the supervision workflow's integration and end-to-end tests: callers with an identity,
seeding through the registry's public API, and message builders for plans, records and feedback."""

from __future__ import annotations

import datetime as dt
import io
import itertools

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from PIL import Image

from bjsv.registry.v1 import registry_pb2 as rpb
from bjsv.registry.v1 import registry_pb2_grpc, supervision_pb2_grpc
from bjsv.registry.v1 import supervision_pb2 as spb
from common.clock import SHANGHAI
from services.registry.domain import id_number
from tests import auth_support

CITY = ("agencies/A", "city-centre")
HAIDIAN = ("agencies/08", "district-agency")
OPERATOR = ("agencies/A", "operator")


def workflow_env(**extra: str) -> dict[str, str]:
    """Service environment for workflow tests: test clock on, periodic sweeps off (tests run them)."""
    return {
        "BJSV_LOG_LEVEL": "WARNING",
        "BJSV_SUPERVISION_TEST_CLOCK": "1",
        "BJSV_SUPERVISION_SWEEP_INTERVAL": "0",
        "BJSV_REGISTRY_EXPIRY_SWEEP_INTERVAL": "0",
        "BJSV_SHUTDOWN_GRACE": "2",
        **extra,
    }


def md(who: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return auth_support.bearer(*who)


def at(day: dt.date, hour: int, minute: int = 0) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI))
    return ts


class Clients:
    def __init__(self, registry_target: str) -> None:
        self.channel = auth_support.channel(registry_target)
        self.registry = registry_pb2_grpc.RegistryServiceStub(self.channel)
        self.sv = supervision_pb2_grpc.SupervisionServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def set_clock(self, when: dt.datetime) -> None:
        ts = Timestamp()
        ts.FromDatetime(when if when.tzinfo else when.replace(tzinfo=SHANGHAI))
        self.sv.SetSupervisionClock(spb.SetSupervisionClockRequest(fixed_time=ts), metadata=md(OPERATOR))


_seq = itertools.count(1)
_used_ids: set[str] = set()


def new_id_number(birth: dt.date = dt.date(1972, 3, 4), male: bool = True) -> str:
    for region in range(110101, 119999):
        for seq in range(1 if male else 2, 1000, 2):
            n = id_number.compose(str(region), birth, seq)
            if n not in _used_ids:
                _used_ids.add(n)
                return n
    raise RuntimeError("exhausted")


def photo() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (295, 413), (90, 120, 200)).save(buf, "JPEG")
    return buf.getvalue()


ATTESTED = [
    rpb.Attestation(item=item, satisfied=True, attested_by="市鉴定管理中心", attested_date="2025-01-05")
    for item in (rpb.ATTESTATION_ITEM_PARTY_LINE, rpb.ATTESTATION_ITEM_POLICY_KNOWLEDGE, rpb.ATTESTATION_ITEM_INTEGRITY,
                 rpb.ATTESTATION_ITEM_ABILITY, rpb.ATTESTATION_ITEM_HEALTH)
]  # fmt: skip


def institution(c: Clients, number: str, name: str, district: str = "08") -> str:
    try:
        c.registry.CreateInstitution(rpb.CreateInstitutionRequest(institution=rpb.Institution(
            number=number, type=rpb.INSTITUTION_TYPE_EMPLOYER, display_name=name, district_code=district,
            contact="010-00000000")), metadata=md(CITY))  # fmt: skip
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
    return f"institutions/{number}"


def supervisor(
    c: Clients,
    name: str,
    *,
    level: str = "district",
    district: str = "08",
    start: str = "2025-06-01",
    id_no: str | None = None,
    badge: bool = True,
) -> tuple[str, str]:
    """Register, appoint (term from `start`) and badge an external supervisor; returns (name, badge code)."""
    lv = rpb.SUPERVISOR_LEVEL_CITY if level == "city" else rpb.SUPERVISOR_LEVEL_DISTRICT
    org = CITY if level == "city" else (f"agencies/{district}", "district-agency")
    number = id_no or new_id_number()
    sup = c.registry.RegisterSupervisor(rpb.RegisterSupervisorRequest(supervisor=rpb.Supervisor(
        full_name=name, gender=rpb.GENDER_MALE if int(number[16]) % 2 else rpb.GENDER_FEMALE,
        birth_date=f"{number[6:10]}-{number[10:12]}-{number[12:14]}", id_number=number,
        type=rpb.SUPERVISOR_TYPE_EXTERNAL, level=lv, district_code="" if level == "city" else district,
        phone="13800000000", photo=photo(), attestations=ATTESTED,
        training=rpb.TrainingAssessment(passed=True, assessed_by="市鉴定管理中心", assessed_date="2025-05-01"),
    )), metadata=md(org)).supervisor  # fmt: skip
    appt = c.registry.AppointSupervisor(rpb.AppointSupervisorRequest(
        supervisor=sup.name, start_date=start, appointed_by="主任 王某"), metadata=md(org)).appointment  # fmt: skip
    code = ""
    if badge:
        code = c.registry.IssueBadge(rpb.IssueBadgeRequest(appointment=appt.name), metadata=md(CITY)).badge.code
    return sup.name, code


def person(name: str, id_no: str = "", sup: str = "", role: str = "考评员") -> spb.SessionPerson:
    return spb.SessionPerson(display_name=name, id_number=id_no, supervisor=sup, role=role)


def plan_msg(
    inst: str,
    day: dt.date,
    *,
    title: str = "2025年第三期电工（四级）职业技能等级认定",
    candidates: int = 250,
    examiners: list[spb.SessionPerson] | None = None,
    district: str = "08",
) -> spb.Plan:
    return spb.Plan(
        institution=inst, title=title, district=district, candidate_count=candidates, occupation="电工（四级/中级工）",
        certification_modes=[spb.CERTIFICATION_MODE_THEORY_EXAM, spb.CERTIFICATION_MODE_SKILL_OPERATION],
        sessions=[
            spb.PlanSession(session_id="S1", start_time=at(day, 9), end_time=at(day, 11, 30), venue="第一考场",
                            examiners=examiners or [person("钱考评", new_id_number(dt.date(1980, 1, 1)))],
                            staff=[person("孙考务", new_id_number(dt.date(1985, 2, 2), male=False), role="考务人员")]),
            spb.PlanSession(session_id="S2", start_time=at(day, 14), end_time=at(day, 17), venue="实操车间",
                            examiners=[person("李考评", new_id_number(dt.date(1979, 7, 7)))]),
        ],
    )  # fmt: skip


def answers(n: int, no: dict[int, str] | None = None) -> list[spb.ChecklistAnswer]:
    no = no or {}
    return [
        spb.ChecklistAnswer(item_number=i, answer=spb.ANSWER_VALUE_NO if i in no else spb.ANSWER_VALUE_YES,
                            remark=no.get(i, ""))
        for i in range(1, n + 1)
    ]  # fmt: skip


def request_id(prefix: str) -> str:
    return f"{prefix}-{next(_seq)}"


def internal_supervisor(c: Clients, name: str, institution_name: str, start: str = "2025-06-01") -> str:
    """Register and appoint an internal supervisor (内督员) of an institution (第八条, 第十二条)."""
    number = new_id_number(dt.date(1978, 8, 8))
    org = (institution_name, "institution")
    sup = c.registry.RegisterSupervisor(rpb.RegisterSupervisorRequest(supervisor=rpb.Supervisor(
        full_name=name, gender=rpb.GENDER_MALE, birth_date="1978-08-08", id_number=number,
        type=rpb.SUPERVISOR_TYPE_INTERNAL, level=rpb.SUPERVISOR_LEVEL_INSTITUTION, institution=institution_name,
        phone="13900000000", photo=photo(), attestations=ATTESTED,
        training=rpb.TrainingAssessment(passed=True, assessed_by=institution_name, assessed_date="2025-05-01"),
    )), metadata=md(org)).supervisor  # fmt: skip
    c.registry.AppointSupervisor(rpb.AppointSupervisorRequest(supervisor=sup.name, start_date=start,
                                                              appointed_by="机构负责人"), metadata=md(org))  # fmt: skip
    return sup.name


def error_reason(e: grpc.RpcError) -> tuple[str, list[str]]:
    st = rpc_status.from_call(e)
    reason, texts = "", []
    for d in st.details:
        for cls in (error_details_pb2.ErrorInfo, error_details_pb2.PreconditionFailure, error_details_pb2.BadRequest):
            if d.Is(cls.DESCRIPTOR):
                m = cls()
                d.Unpack(m)
                if isinstance(m, error_details_pb2.ErrorInfo):
                    reason = m.reason
                elif isinstance(m, error_details_pb2.PreconditionFailure):
                    texts += [f"{v.type}|{v.description}" for v in m.violations]
                else:
                    texts += [f"{v.field}|{v.description}" for v in m.field_violations]
    return reason, texts


def declare(c: Clients, dispatch: str, *supervisors: str) -> None:
    """Each supervisor declares no relative or interest (第十六条) before acting on the dispatch."""
    for sup in supervisors:
        d = spb.ConflictDeclaration(dispatch=dispatch, supervisor=sup)
        c.sv.DeclareConflicts(spb.DeclareConflictsRequest(declaration=d), metadata=md((sup, "supervisor")))
