"""RegistryService gRPC servicer: the API edge. Each RPC parses its request (common.api for names, dates and
page tokens; the domain's validators for the rest), calls one use case (services/registry/usecases), and
builds the response with the `to_proto_*` converters below, which the use case runs inside its transaction
so lazily loaded columns are at hand. Domain errors become gRPC statuses in `edge`.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging

from bjsv.registry.v1 import registry_pb2 as pb
from bjsv.registry.v1 import registry_pb2_grpc
from common import api
from common.auth import scope
from common.clock import Clock
from common.db import Database
from common.errors import FieldViolation, InvalidArgument, NotFound
from common.idempotency import idempotent
from common.policy import PolicyParameters
from services.registry import access
from services.registry import events as ev
from services.registry.domain import badge_codes as bc
from services.registry.domain import badges, id_number, images, institutions, terms
from services.registry.domain.districts import CITY_CODE, DISTRICTS, district_name, is_district
from services.registry.domain.policy import RegistryPolicy
from services.registry.domain.problems import Conflict, ProblemsError, Refused
from services.registry.domain.supervisors import (
    SupervisorInput,
    validate_affiliations,
    validate_attestations,
    validate_name,
    validate_supervisor,
    validate_training,
)
from services.registry.domain.training import TrainingInput
from services.registry.eligibility import RulesEligibility
from services.registry.storage import models as m
from services.registry.storage import repository as repo
from services.registry.usecases.appointments import Appointments
from services.registry.usecases.badges import Badges, IssuePlan, code_parts_message
from services.registry.usecases.context import Listing, RegistryContext
from services.registry.usecases.errors import as_error
from services.registry.usecases.organisations import Organisations
from services.registry.usecases.supervisors import Supervisors
from services.registry.verify import VerifyReader

log = logging.getLogger(__name__)

STATUS_TO_PB = {
    "not_appointed": pb.APPOINTMENT_STATUS_NOT_APPOINTED,
    "active": pb.APPOINTMENT_STATUS_ACTIVE,
    "expired": pb.APPOINTMENT_STATUS_EXPIRED,
    "suspended": pb.APPOINTMENT_STATUS_SUSPENDED,
    "revoked": pb.APPOINTMENT_STATUS_REVOKED,
}
STATUS_FROM_PB = {v: k for k, v in STATUS_TO_PB.items()}
BADGE_STATUS_TO_PB = {
    "active": pb.BADGE_STATUS_ACTIVE,
    "expired": pb.BADGE_STATUS_EXPIRED,
    "suspended": pb.BADGE_STATUS_SUSPENDED,
    "revoked": pb.BADGE_STATUS_REVOKED,
}
BADGE_STATUS_FROM_PB = {v: k for k, v in BADGE_STATUS_TO_PB.items()}
TYPE_FROM_PB = {pb.SUPERVISOR_TYPE_EXTERNAL: "external", pb.SUPERVISOR_TYPE_INTERNAL: "internal"}
LEVEL_FROM_PB = {
    pb.SUPERVISOR_LEVEL_CITY: "city",
    pb.SUPERVISOR_LEVEL_DISTRICT: "district",
    pb.SUPERVISOR_LEVEL_INSTITUTION: "institution",
}
INST_TYPE_FROM_PB = {pb.INSTITUTION_TYPE_EMPLOYER: "Y", pb.INSTITUTION_TYPE_SOCIAL_ORGANIZATION: "S"}
ITEM_FROM_PB = {
    pb.ATTESTATION_ITEM_PARTY_LINE: "art9_1",
    pb.ATTESTATION_ITEM_POLICY_KNOWLEDGE: "art9_2",
    pb.ATTESTATION_ITEM_INTEGRITY: "art9_3",
    pb.ATTESTATION_ITEM_ABILITY: "art9_4",
    pb.ATTESTATION_ITEM_HEALTH: "health",
}
ITEM_TO_PB = {v: k for k, v in ITEM_FROM_PB.items()}
AFFILIATION_FROM_PB = {pb.AFFILIATION_KIND_EMPLOYER: "employer", pb.AFFILIATION_KIND_OTHER: "other"}
AFFILIATION_TO_PB = {True: pb.AFFILIATION_KIND_EMPLOYER, False: pb.AFFILIATION_KIND_OTHER}
CATEGORY_FROM_PB = {
    pb.BADGE_CATEGORY_EXTERNAL_CITY: "external_city",
    pb.BADGE_CATEGORY_EXTERNAL_DISTRICT: "external_district",
    pb.BADGE_CATEGORY_INTERNAL_EMPLOYER: "internal_employer",
    pb.BADGE_CATEGORY_INTERNAL_SOCIAL_ORGANIZATION: "internal_social",
}
VERIFY_MESSAGES = {
    "active": "有效",
    "expired": "证卡已过有效期或聘期届满（第十三条）",
    "suspended": "已暂停督导工作（第二十七条）",
    "revoked": "证卡已作废或已取消资格（第二十七条）",
    "unknown": "查无此证卡编号（附件1）",
}


def edge(fn):
    """Map domain errors raised anywhere in a handler (validation, refusals, conflicts) to gRPC statuses."""

    @functools.wraps(fn)
    async def wrapper(self, request, context):
        try:
            return await fn(self, request, context)
        except (ProblemsError, Refused, Conflict) as e:
            raise as_error(e) from None

    return wrapper


def _ts(msg, when: dt.datetime | None) -> None:
    if when is not None:
        msg.FromDatetime(when if when.tzinfo else when.replace(tzinfo=dt.UTC))


def _district_filter(code: str, field: str = "district_code") -> str:
    if code and code not in DISTRICTS:
        raise InvalidArgument(
            "UNKNOWN_DISTRICT", [FieldViolation(field, f"区代码“{code}”不在北京市行政区划代码表中（附件1表3）")]
        )
    return code


def _page(request, listing: str, kind: type) -> api.Page:
    return api.page_request(request.page_size, request.page_token, listing=listing, kind=kind)


def _token(found: Listing, listing: str) -> str:
    return api.token_after(found.after, listing=listing)


# ============================================================================ converters (inside a session)


def to_proto_agency(a: m.Agency, full: bool) -> pb.Agency:
    out = pb.Agency(
        name=api.format_name("agencies", a.code), code=a.code, district_name=a.district_name,
        display_name=a.display_name, contact=a.contact, seal_sha256=a.seal_sha256, logo_sha256=a.logo_sha256,
        city_centre=a.code == CITY_CODE,
    )  # fmt: skip
    if full:
        out.seal, out.logo = a.seal or b"", a.logo or b""
    return out


def to_proto_institution(i: m.Institution, full: bool) -> pb.Institution:
    out = pb.Institution(
        name=api.format_name("institutions", i.number), number=i.number, type=ev.INSTITUTION_TYPE[i.type_letter],
        display_name=i.display_name, district_code=i.district_code, district_name=district_name(i.district_code),
        contact=i.contact, seal_sha256=i.seal_sha256, logo_sha256=i.logo_sha256, code_digits=i.code_digits,
    )  # fmt: skip
    _ts(out.create_time, i.created_at)
    if full:
        out.seal, out.logo = i.seal or b"", i.logo or b""
    return out


def to_proto_supervisor(session, s: m.Supervisor, full: bool) -> pb.Supervisor:
    org, org_name = ev.supervisor_organization(session, s)
    inst = session.get(m.Institution, s.institution_id) if s.institution_id else None
    out = pb.Supervisor(
        name=api.format_name("supervisors", s.id), full_name=s.full_name, gender=ev.GENDER[s.male],
        birth_date=s.birth_date.isoformat(), id_number=s.id_number if full else id_number.mask(s.id_number),
        type=ev.TYPE[s.type], level=ev.LEVEL[s.level], district_code=s.district_code,
        institution=f"institutions/{inst.number}" if inst else "", phone=s.phone, photo_sha256=s.photo_sha256,
        photo_mime_type=s.photo_mime, status=STATUS_TO_PB[s.status],
        current_appointment=f"appointments/{s.current_appointment_id}" if s.current_appointment_id else "",
        term_end=api.format_date(s.term_end), organization=org, organization_name=org_name,
        district_name=district_name(s.district_code),
    )  # fmt: skip
    details = repo.details_of(session, s.id)  # prefetched for a whole list page
    for a in details.attestations:
        out.attestations.add(item=ITEM_TO_PB[a.item], satisfied=a.satisfied, attested_by=a.attested_by,
                             attested_date=a.attested_date.isoformat())  # fmt: skip
    records = details.trainings
    if shown := ([r for r in records if r.passed] or records):  # the latest passed training, else the latest
        out.training.CopyFrom(to_proto_training(shown[-1]))
    for f in details.affiliations:
        out.affiliations.add(institution=f.institution, kind=AFFILIATION_TO_PB[f.employer],
                             from_date=f.from_date.isoformat(), until_date=api.format_date(f.until_date))  # fmt: skip
    _ts(out.create_time, s.created_at)
    _ts(out.update_time, s.updated_at)
    if full:
        out.photo = s.photo or b""
    return out


def to_proto_training(r: m.TrainingRecord) -> pb.TrainingAssessment:
    out = pb.TrainingAssessment(
        name=f"supervisors/{r.supervisor_id}/trainings/{r.id}", passed=r.passed, assessed_by=r.trainer,
        assessed_date=r.assessed_date.isoformat(), course=r.course, certificate_number=r.certificate_number,
    )  # fmt: skip
    _ts(out.record_time, r.recorded_at)
    return out


def to_proto_term(t: m.AppointmentTerm) -> pb.AppointmentTerm:
    return ev.term_message(t, terms.validity_text(t.start_date, t.end_date))


def to_proto_appointment(session, a: m.Appointment) -> pb.Appointment:
    sup = session.get(m.Supervisor, a.supervisor_id)
    all_terms = repo.terms_of(session, appointment_id=a.id)
    org_name = ev.organization_snapshot(session, a.organization).display_name
    out = pb.Appointment(
        name=api.format_name("appointments", a.id), supervisor=api.format_name("supervisors", a.supervisor_id),
        supervisor_name=sup.full_name,
        appointing_organization=a.organization, appointing_organization_name=org_name, status=STATUS_TO_PB[a.status],
        terms=[to_proto_term(t) for t in all_terms], status_reason=a.status_reason,
        status_article=a.status_article, status_decided_by=a.status_decided_by, type=ev.TYPE[sup.type],
        level=ev.LEVEL[sup.level], district_code=sup.district_code,
        institution=a.organization if a.organization.startswith("institutions/") else "",
    )  # fmt: skip
    cur = [t for t in all_terms if t.term_number == a.term_number]
    if cur:
        out.current_term.CopyFrom(to_proto_term(cur[0]))
    _ts(out.create_time, a.created_at)
    _ts(out.update_time, a.updated_at)
    return out


def _door_status(b: m.Badge, appt: m.Appointment, today: dt.date) -> str:
    return badges.door_status(b.revoked, b.valid_until, appt.status, today)


def to_proto_badge(session, b: m.Badge, *, today: dt.date, full: bool, policy: RegistryPolicy) -> pb.Badge:
    sup = session.get(m.Supervisor, b.supervisor_id)
    appt = session.get(m.Appointment, b.appointment_id)
    if (issuer := repo.issuer_row(session, b.issuer)) is None:
        raise NotFound(b.issuer)
    inst = session.get(m.Institution, b.institution_id) if b.institution_id else None
    out = pb.Badge(
        name=api.format_name("badges", b.code), code=b.code, parts=code_parts_message(bc.parse(b.code, policy)),
        supervisor=f"supervisors/{sup.id}", appointment=f"appointments/{appt.id}", term_number=b.term_number,
        holder_name=sup.full_name, type=ev.TYPE[sup.type], level=ev.LEVEL[sup.level], issuer=b.issuer,
        issuer_name=issuer.display_name, validity_text=b.validity_text,
        valid_from=b.valid_from.isoformat(), valid_until=b.valid_until.isoformat(),
        issue_date=b.issue_date.isoformat(), status=BADGE_STATUS_TO_PB[_door_status(b, appt, today)],
        revoke_reason=b.revoke_reason, photo_sha256=sup.photo_sha256, photo_mime_type=sup.photo_mime,
        filed=inst is not None and repo.is_filed(session, code=b.code),
        institution=f"institutions/{inst.number}" if inst else "", title=badges.title(sup.type),
        issuer_seal_sha256=issuer.seal_sha256, issuer_logo_sha256=issuer.logo_sha256,
    )  # fmt: skip
    _ts(out.create_time, b.created_at)
    if full:
        out.photo = sup.photo or b""
        out.issuer_seal, out.issuer_logo = issuer.seal or b"", issuer.logo or b""
    return out


def to_proto_filing(session, f: m.BadgeFiling, today: dt.date) -> pb.BadgeFiling:
    b = session.get(m.Badge, f.badge_code)
    inst = session.get(m.Institution, f.institution_id)
    sup = session.get(m.Supervisor, b.supervisor_id)
    appt = session.get(m.Appointment, b.appointment_id)
    out = pb.BadgeFiling(
        name=api.format_name("filings", f.id), code=b.code, institution=f"institutions/{inst.number}",
        institution_name=inst.display_name, supervisor=f"supervisors/{sup.id}", holder_name=sup.full_name,
        validity_text=b.validity_text, filed_with=f.filed_with,
        badge_status=BADGE_STATUS_TO_PB[_door_status(b, appt, today)],
    )  # fmt: skip
    _ts(out.filed_time, f.filed_at)
    return out


# ============================================================================ request → domain


def _attestations_in(items) -> list[tuple[str, bool, str, str]]:
    return [(ITEM_FROM_PB.get(a.item, "?"), a.satisfied, a.attested_by, a.attested_date) for a in items]


def _training_in(s: pb.Supervisor):
    if not s.HasField("training"):
        return None
    t = s.training
    return (t.passed, t.assessed_by, t.assessed_date)


def _affiliations_in(items) -> list[tuple[str, str, str, str]]:
    return [(a.institution, AFFILIATION_FROM_PB.get(a.kind, "?"), a.from_date, a.until_date) for a in items]


def _image_in(data: bytes, field: str, policy: RegistryPolicy, photo: bool = False):
    if not data:
        return None
    return images.check_photo(data, policy, field) if photo else images.check_seal_or_logo(data, field, policy)


def _mask_paths(paths) -> list[str]:
    if not paths:
        raise InvalidArgument("UPDATE_MASK_REQUIRED", [FieldViolation("update_mask", "须指定要修改的字段")])
    return list(paths)


def _unsupported_path(p: str) -> InvalidArgument:
    return InvalidArgument("UPDATE_MASK_PATH", [FieldViolation("update_mask", f"不支持修改字段“{p}”")])


def _org_changes(msg, paths, prefix: str, text_fields: tuple[str, ...], policy: RegistryPolicy) -> dict:
    """The fields an UpdateAgency / UpdateInstitution mask names, checked (附件1表3 for district codes)."""
    changes = {}
    for p in _mask_paths(paths):
        if p in text_fields:
            value = getattr(msg, p).strip()
            if p == "display_name" and not value:
                raise InvalidArgument("NAME_REQUIRED", [FieldViolation(f"{prefix}.display_name", "名称不能为空")])
            if p == "district_code" and not is_district(value):
                why = f"所在区代码“{value}”不在北京市行政区划代码表中（附件1表3）"
                raise InvalidArgument("UNKNOWN_DISTRICT", [FieldViolation(f"{prefix}.district_code", why)])
            changes[p] = value
        elif p in ("seal", "logo"):
            try:
                changes[p] = _image_in(getattr(msg, p), p, policy)
            except ProblemsError as e:
                raise as_error(e, f"{prefix}.") from None
        else:
            raise _unsupported_path(p)
    return changes


def _supervisor_changes(s: pb.Supervisor, paths, today: dt.date, policy: RegistryPolicy) -> dict:
    """The fields an UpdateSupervisor mask names, validated like a registration (第九条)."""
    changes: dict = {}
    for p in _mask_paths(paths):
        problems: list = []
        if p == "full_name":
            problems, changes[p] = validate_name(s.full_name), s.full_name.strip()
        elif p == "phone":
            changes[p] = s.phone.strip()[:50]
        elif p == "photo":
            changes[p] = _image_in(s.photo, "photo", policy, photo=True)
        elif p == "attestations":
            items, problems = validate_attestations(_attestations_in(s.attestations), today)
            changes[p] = tuple(items)
        elif p == "training":
            changes[p], problems = validate_training(_training_in(s), today)
        elif p == "affiliations":
            changes[p] = tuple(validate_affiliations(_affiliations_in(s.affiliations)))
        else:
            raise _unsupported_path(p)
        if problems:
            raise ProblemsError(problems)
    return changes


def _supervisor_input(s: pb.Supervisor) -> SupervisorInput:
    institution = api.parse_name(s.institution, "institutions", field="supervisor.institution") if s.institution else ""
    return SupervisorInput(
        full_name=s.full_name,
        gender={pb.GENDER_MALE: "male", pb.GENDER_FEMALE: "female"}.get(s.gender, ""),
        birth_date=s.birth_date, id_number=s.id_number, type=TYPE_FROM_PB.get(s.type, "?"),
        level=LEVEL_FROM_PB.get(s.level, ""), district_code=s.district_code, institution_number=institution,
        phone=s.phone, attestations=_attestations_in(s.attestations), training=_training_in(s),
        affiliations=_affiliations_in(s.affiliations),
    )  # fmt: skip


def _agency_code(name: str, field: str = "name") -> str:
    code = api.parse_name(name, "agencies", field=field)
    if code not in DISTRICTS:
        raise InvalidArgument(
            "UNKNOWN_DISTRICT", [FieldViolation(field, f"“{code}”不在北京市行政区划代码表中（附件1表3）")]
        )
    return code


def _optional_id(name: str, collection: str, field: str) -> int | None:
    return api.parse_id(name, collection, field=field) if name else None


def _optional_institution(name: str, field: str = "institution") -> str:
    return api.parse_name(name, "institutions", field=field) if name else ""


def _bad_code_response(e: ProblemsError) -> pb.ValidateBadgeCodeResponse:
    return pb.ValidateBadgeCodeResponse(
        valid=False,
        violations=[pb.FieldError(field=p.field, reason=p.reason, description=p.description) for p in e.problems],
    )


# ============================================================================ servicer


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        rules: RulesEligibility,
        parameters: PolicyParameters,
        policy: RegistryPolicy,
    ) -> None:
        self.db, self.clock, self.policy = db, clock, policy  # db: scope reads and idempotency keys
        ctx = RegistryContext(db, clock=clock, policy=policy)
        self.organisations = Organisations(ctx)
        self.supervisors = Supervisors(ctx)
        self.appointments = Appointments(ctx, rules=rules, parameters=parameters)
        self.badges = Badges(ctx, parameters=parameters)
        self.verifier = VerifyReader(db)

    async def sweep(self, as_of: dt.date) -> list[int]:
        """聘期届满自动解聘 (第十三条), for the periodic task of the composition root."""
        return await self.appointments.sweep(as_of)

    # ------------------------------------------------------------------ agencies

    @edge
    async def GetAgency(self, request, context):
        full = request.view == pb.VIEW_FULL
        agency = await self.organisations.agency(_agency_code(request.name), lambda s, a: to_proto_agency(a, full))
        return pb.GetAgencyResponse(agency=agency)

    @edge
    async def ListAgencies(self, request, context):
        full = request.view == pb.VIEW_FULL
        return pb.ListAgenciesResponse(
            agencies=await self.organisations.agencies(lambda s, a: to_proto_agency(a, full))
        )

    @edge
    async def UpdateAgency(self, request, context):
        code = _agency_code(request.agency.name, "agency.name")
        scope.require(scope.Owner.of(f"agencies/{code}"), f"agencies/{code}")
        changes = _org_changes(request.agency, request.update_mask.paths, "agency", ("display_name", "contact"),
                               self.policy)  # fmt: skip
        agency = await self.organisations.update_agency(code, changes, lambda s, a: to_proto_agency(a, False))
        return pb.UpdateAgencyResponse(agency=agency)

    # ------------------------------------------------------------------ institutions

    @edge
    @idempotent(
        pb.CreateInstitutionResponse, "institutions", "GetInstitution", pb.GetInstitutionRequest,
        name_of=lambda r: api.format_name("institutions", r.institution.number),
    )  # fmt: skip
    async def CreateInstitution(self, request, context):
        i = request.institution
        try:
            draft = institutions.validate_institution(
                i.number, INST_TYPE_FROM_PB.get(i.type, ""), i.display_name, i.district_code, i.contact
            )
            seal = _image_in(i.seal, "seal", self.policy)
            logo = _image_in(i.logo, "logo", self.policy)
        except ProblemsError as e:
            raise as_error(e, "institution.") from None
        scope.require(scope.Owner.of(f"agencies/{draft.district_code}"), f"institutions/{draft.number}")
        out = await self.organisations.create_institution(
            draft, seal, logo, lambda s, r: to_proto_institution(r, False)
        )
        return pb.CreateInstitutionResponse(institution=out)

    @edge
    async def GetInstitution(self, request, context):
        number = api.parse_name(request.name, "institutions")
        full = request.view == pb.VIEW_FULL
        out = await self.organisations.institution(number, lambda s, r: to_proto_institution(r, full))
        return pb.GetInstitutionResponse(institution=out)

    @edge
    async def ListInstitutions(self, request, context):
        page = _page(request, "registry.ListInstitutions", int)
        found = await self.organisations.institutions(
            page, lambda s, r: to_proto_institution(r, False), district_code=_district_filter(request.district_code),
            type_letter=INST_TYPE_FROM_PB.get(request.type, ""), name_query=request.name_query,
        )  # fmt: skip
        return pb.ListInstitutionsResponse(institutions=found.items, total_size=found.total,
                                           next_page_token=_token(found, "registry.ListInstitutions"))  # fmt: skip

    @edge
    async def UpdateInstitution(self, request, context):
        number = api.parse_name(request.institution.name, "institutions", field="institution.name")
        await self.db.read(access.institution, number)
        changes = _org_changes(request.institution, request.update_mask.paths, "institution",
                               ("display_name", "contact", "district_code"), self.policy)  # fmt: skip
        out = await self.organisations.update_institution(number, changes, lambda s, r: to_proto_institution(r, False))
        return pb.UpdateInstitutionResponse(institution=out)

    # ------------------------------------------------------------------ supervisors

    @edge
    @idempotent(pb.RegisterSupervisorResponse, "supervisors", "GetSupervisor", pb.GetSupervisorRequest)
    async def RegisterSupervisor(self, request, context):
        try:
            draft = validate_supervisor(_supervisor_input(request.supervisor), self.clock.today())
            photo = _image_in(request.supervisor.photo, "photo", self.policy, photo=True)
        except ProblemsError as e:
            raise as_error(e, "supervisor.") from None
        org = f"institutions/{draft.institution_number}" if draft.institution_number else ""
        org = org or f"agencies/{draft.district_code if draft.level == 'district' else 'A'}"
        scope.require(scope.Owner.of(org), "supervisor")  # 第十条、第十二条: who appoints may register
        log.info("registering supervisor id_number=%s", id_number.mask(draft.id_number))
        out = await self.supervisors.register(draft, photo, lambda s, r: to_proto_supervisor(s, r, False))
        return pb.RegisterSupervisorResponse(supervisor=out)

    @edge
    async def GetSupervisor(self, request, context):
        sid = api.parse_id(request.name, "supervisors")
        full = request.view == pb.VIEW_FULL

        def render(s, sup):
            owner = access.of_supervisor(s, sup)
            scope.require(owner, f"supervisors/{sid}")
            return access.redact(to_proto_supervisor(s, sup, full), owner, full=full)

        out = await self.supervisors.get(sid, render)
        return pb.GetSupervisorResponse(supervisor=out)

    @edge
    async def ListSupervisors(self, request, context):
        page = _page(request, "registry.ListSupervisors", int)
        district, institution = access.narrow(
            _district_filter(request.district_code), _optional_institution(request.institution)
        )
        # a district agency sees the district-level supervisors it appoints (第十条)
        level = "district" if scope.list_scope().district else LEVEL_FROM_PB.get(request.level, "")
        found = await self.supervisors.list(
            page, lambda s, r: access.redact(to_proto_supervisor(s, r, False), access.of_supervisor(s, r), full=False),
            district_code=district, institution_number=institution, type=TYPE_FROM_PB.get(request.type, ""),
            level=level, status=STATUS_FROM_PB.get(request.status, ""),
            expiring_before=api.parse_optional_date(request.expiring_before, "expiring_before"),
            name_query=request.name_query,
        )  # fmt: skip
        return pb.ListSupervisorsResponse(supervisors=found.items, total_size=found.total,
                                          next_page_token=_token(found, "registry.ListSupervisors"))  # fmt: skip

    @edge
    async def UpdateSupervisor(self, request, context):
        sid = api.parse_id(request.supervisor.name, "supervisors", field="supervisor.name")
        try:
            changes = _supervisor_changes(request.supervisor, request.update_mask.paths, self.clock.today(),
                                          self.policy)  # fmt: skip
        except ProblemsError as e:
            raise as_error(e, "supervisor.") from None
        await self.db.read(access.supervisor, sid)
        out = await self.supervisors.update(sid, changes, lambda s, r: to_proto_supervisor(s, r, False))
        return pb.UpdateSupervisorResponse(supervisor=out)

    @edge
    async def RecordTraining(self, request, context):
        sid = api.parse_id(request.supervisor, "supervisors", field="supervisor")
        t = request.training
        inp = TrainingInput(t.course, t.assessed_by, t.assessed_date, t.passed, t.certificate_number)
        out = await self.supervisors.record_training(sid, inp, to_proto_training)
        return pb.RecordTrainingResponse(training=out)

    @edge
    async def ListTrainings(self, request, context):
        sid = api.parse_id(request.supervisor, "supervisors", field="supervisor")
        return pb.ListTrainingsResponse(trainings=await self.supervisors.trainings(sid, to_proto_training))

    @edge
    async def ImportRoster(self, request, context):
        rows = [(r.row_number, dict(r.cells)) for r in request.rows]
        errors, ids = await self.supervisors.import_roster(rows, validate_only=request.validate_only,
                                                           partial=request.partial)  # fmt: skip
        return pb.ImportRosterResponse(
            errors=[pb.RosterRowError(row_number=e.row, column=e.column, reason=e.reason, description=e.description)
                    for e in errors],
            checked_count=len(rows), imported_count=len(ids), supervisors=[f"supervisors/{i}" for i in ids],
        )  # fmt: skip

    # ------------------------------------------------------------------ appointments

    @edge
    @idempotent(pb.AppointSupervisorResponse, "appointments", "GetAppointment", pb.GetAppointmentRequest)
    async def AppointSupervisor(self, request, context):
        sid = api.parse_id(request.supervisor, "supervisors", field="supervisor")
        start = api.parse_optional_date(request.start_date, "start_date")
        await self.db.read(access.supervisor, sid)
        out = await self.appointments.appoint(sid, start, request.appointed_by, to_proto_appointment)
        return pb.AppointSupervisorResponse(appointment=out)

    @edge
    async def RenewAppointment(self, request, context):
        aid = api.parse_id(request.name, "appointments")
        start = api.parse_optional_date(request.start_date, "start_date")
        await self.db.read(access.appointment, aid)
        out = await self.appointments.renew(aid, start, request.renewed_by, to_proto_appointment)
        return pb.RenewAppointmentResponse(appointment=out)

    @edge
    async def SuspendAppointment(self, request, context):
        aid = api.parse_id(request.name, "appointments")
        await self.db.read(access.appointment, aid)
        out = await self.appointments.suspend(
            aid, to_proto_appointment, reason=request.reason,
            article=request.article, decided_by=request.decided_by, case_reference=request.case_reference,
        )  # fmt: skip
        return pb.SuspendAppointmentResponse(appointment=out)

    @edge
    async def ReinstateAppointment(self, request, context):
        aid = api.parse_id(request.name, "appointments")
        await self.db.read(access.appointment, aid)
        out = await self.appointments.reinstate(aid, to_proto_appointment,
                                                reason=request.reason, decided_by=request.decided_by)  # fmt: skip
        return pb.ReinstateAppointmentResponse(appointment=out)

    @edge
    async def RevokeAppointment(self, request, context):
        aid = api.parse_id(request.name, "appointments")
        await self.db.read(access.appointment, aid)
        out = await self.appointments.revoke(
            aid, to_proto_appointment, reason=request.reason,
            article=request.article, decided_by=request.decided_by, case_reference=request.case_reference,
        )  # fmt: skip
        return pb.RevokeAppointmentResponse(appointment=out)

    @edge
    async def GetAppointment(self, request, context):
        aid = api.parse_id(request.name, "appointments")
        await self.db.read(access.appointment, aid)
        out = await self.appointments.get(aid, to_proto_appointment)
        return pb.GetAppointmentResponse(appointment=out)

    @edge
    async def ListAppointments(self, request, context):
        page = _page(request, "registry.ListAppointments", int)
        organization = request.appointing_organization
        if scope.list_scope() != scope.ListScope():  # an agency or institution lists its own appointments
            organization = scope.acting_org(organization, "appointing_organization")
        found = await self.appointments.list(
            page, to_proto_appointment, supervisor_id=_optional_id(request.supervisor, "supervisors", "supervisor"),
            status=STATUS_FROM_PB.get(request.status, ""),
            expiring_before=api.parse_optional_date(request.expiring_before, "expiring_before"),
            organization=organization, district_code=_district_filter(request.district_code),
        )  # fmt: skip
        return pb.ListAppointmentsResponse(appointments=found.items, total_size=found.total,
                                           next_page_token=_token(found, "registry.ListAppointments"))  # fmt: skip

    @edge
    async def RunExpirySweep(self, request, context):
        as_of = api.parse_date(request.as_of_date, "as_of_date", default=self.clock.today())
        done = await self.appointments.sweep(as_of)
        return pb.RunExpirySweepResponse(expired=[f"appointments/{i}" for i in done])

    # ------------------------------------------------------------------ badges

    @edge
    @idempotent(pb.IssueBadgeResponse, "badges", "GetBadge", pb.GetBadgeRequest)
    async def IssueBadge(self, request, context):
        aid = api.parse_id(request.appointment, "appointments", field="appointment")
        await self.db.read(access.appointment, aid)
        plan, badge = await self.badges.issue(
            aid, issue_date=api.parse_optional_date(request.issue_date, "issue_date"),
            explicit_serial=request.explicit_serial, replace_existing=request.replace_existing,
        )  # fmt: skip
        return pb.IssueBadgeResponse(badge=self.to_proto_issued(plan, badge, self.clock.today()))

    def to_proto_issued(self, plan: IssuePlan, b: m.Badge, today: dt.date) -> pb.Badge:
        """The response of IssueBadge from what the call already holds (no third transaction)."""
        sup, issuer = plan.supervisor_snapshot, plan.issuer_snapshot
        out = pb.Badge(
            name=api.format_name("badges", b.code), code=b.code,
            parts=code_parts_message(bc.parse(b.code, self.policy)),
            supervisor=sup.name, appointment=f"appointments/{b.appointment_id}", term_number=b.term_number,
            holder_name=sup.full_name, type=sup.type, level=sup.level, issuer=b.issuer,
            issuer_name=issuer.display_name, validity_text=b.validity_text, valid_from=b.valid_from.isoformat(),
            valid_until=b.valid_until.isoformat(), issue_date=b.issue_date.isoformat(),
            status=BADGE_STATUS_TO_PB[badges.door_status(False, b.valid_until, "active", today)],
            photo_sha256=sup.photo_sha256, photo_mime_type=plan.photo_mime_type,
            filed=plan.scope.category.internal, institution=sup.institution,
            title=badges.title(plan.supervisor_type),
            issuer_seal_sha256=plan.issuer_seal_sha256, issuer_logo_sha256=plan.issuer_logo_sha256,
        )  # fmt: skip
        _ts(out.create_time, b.created_at)
        return out

    def _badge_code(self, name: str) -> str:
        return bc.parse(api.parse_name(name, "badges"), self.policy).code

    def _to_badge(self, full: bool):
        today = self.clock.today()
        return lambda s, b: to_proto_badge(s, b, today=today, full=full, policy=self.policy)

    @edge
    async def GetBadge(self, request, context):
        code, full = self._badge_code(request.name), request.view == pb.VIEW_FULL
        _, owner = await self.db.read(access.badge, code)
        out = await self.badges.get(code, self._to_badge(full))
        if full and not scope.sees_personal(owner):
            out.ClearField("photo")  # the holder's photo is personal information; the issuer's seal is not
        return pb.GetBadgeResponse(badge=out)

    @edge
    async def ListBadges(self, request, context):
        page = _page(request, "registry.ListBadges", str)
        district, institution = access.narrow(
            _district_filter(request.district_code), _optional_institution(request.institution)
        )
        found = await self.badges.list(
            page, self._to_badge(False),
            supervisor_id=_optional_id(scope.narrow_supervisor(request.supervisor), "supervisors", "supervisor"),
            institution_number=institution, district_code=district,
            category=CATEGORY_FROM_PB.get(request.category, ""),
            year=request.year, status=BADGE_STATUS_FROM_PB.get(request.status, ""),
        )  # fmt: skip
        return pb.ListBadgesResponse(badges=found.items, total_size=found.total,
                                     next_page_token=_token(found, "registry.ListBadges"))  # fmt: skip

    @edge
    async def RevokeBadge(self, request, context):
        code = self._badge_code(request.name)
        await self.db.read(access.badge, code)
        out = await self.badges.revoke(code, request.reason, request.decided_by, self._to_badge(False))
        return pb.RevokeBadgeResponse(badge=out)

    @edge
    async def ListBadgeFilings(self, request, context):
        page = _page(request, "registry.ListBadgeFilings", int)
        today = self.clock.today()
        _, institution = access.narrow("", _optional_institution(request.institution))
        found = await self.badges.filings(page, lambda s, f: to_proto_filing(s, f, today), year=request.year,
                                          institution_number=institution)  # fmt: skip
        return pb.ListBadgeFilingsResponse(filings=found.items, total_size=found.total,
                                           next_page_token=_token(found, "registry.ListBadgeFilings"))  # fmt: skip

    @edge
    async def ParseBadgeCode(self, request, context):
        parts = bc.parse(request.code, self.policy)
        return pb.ParseBadgeCodeResponse(parts=code_parts_message(parts), normalised=parts.code != request.code)

    @edge
    async def ValidateBadgeCode(self, request, context):
        try:
            parts = bc.parse(request.code, self.policy)
        except ProblemsError as e:
            return _bad_code_response(e)
        problems, issued = await self.badges.check_issued(parts)
        problems += bc.canonical_form_problems(request.code, parts)
        if parts.year > self.clock.today().year:
            pos = "4-5" if parts.letter == "R" else "8-9"
            problems.append(
                bc.Problem("year_digits", "YEAR_IN_FUTURE", f"第{pos}位证卡核发年份{parts.year}晚于当前年份（附件1）")
            )
        return pb.ValidateBadgeCodeResponse(
            valid=not problems, parts=code_parts_message(parts), issued=issued, canonical_code=parts.code,
            violations=[pb.FieldError(field=p.field, reason=p.reason, description=p.description) for p in problems],
        )  # fmt: skip

    async def VerifyBadge(self, request, context):
        try:
            code = bc.parse(request.code, self.policy).code
        except ProblemsError:
            return pb.VerifyBadgeResponse(code=bc.normalise(request.code), status=pb.BADGE_STATUS_UNKNOWN_CODE,
                                          message=VERIFY_MESSAGES["unknown"])  # fmt: skip
        as_of = api.parse_date(request.as_of_date, "as_of_date", default=self.clock.today())
        v = await self.verifier.verify(code, as_of)  # the hot path: see services/registry/verify.py
        if v is None:
            return pb.VerifyBadgeResponse(code=code, status=pb.BADGE_STATUS_UNKNOWN_CODE,
                                          message=VERIFY_MESSAGES["unknown"])  # fmt: skip
        message = VERIFY_MESSAGES[v.status]
        if v.status == "active" and v.institution:
            message = f"有效（内督证卡仅限{v.institution_name}内部使用，第十二条）"
        return pb.VerifyBadgeResponse(
            code=v.code, status=BADGE_STATUS_TO_PB[v.status], holder_name_masked=id_number.mask_name(v.holder_name),
            photo_sha256=v.photo_sha256, type=ev.TYPE[v.type], level=ev.LEVEL[v.level], issuer_name=v.issuer_name,
            validity_text=v.validity_text, valid_from=v.valid_from.isoformat(), valid_until=v.valid_until.isoformat(),
            institution=v.institution, institution_name=v.institution_name, district_code=v.district_code,
            message=message,
        )  # fmt: skip

    # ------------------------------------------------------------------ dashboards

    @edge
    async def GetRegistryCounts(self, request, context):
        rows = await self.supervisors.counts(_district_filter(request.district_code))
        resp = pb.GetRegistryCountsResponse()
        for code, typ, status, n in rows:
            resp.counts.add(district_code=code, district_name=district_name(code), type=ev.TYPE[typ],
                            status=STATUS_TO_PB[status], count=n)  # fmt: skip
            resp.total += n
        return resp
