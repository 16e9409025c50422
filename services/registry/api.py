"""RegistryService gRPC servicer: thin proto ⇄ domain mapping; work happens in the domain and repository.

Each RPC validates its input at the edge (INVALID_ARGUMENT with field violations in Chinese), then runs
ONE repository transaction through common.db (nothing is stored when anything fails). Conversions to
proto run inside that transaction (`to_proto_*`), so lazily loaded columns are available.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging

from bjsv.registry.v1 import registry_pb2 as pb
from bjsv.registry.v1 import registry_pb2_grpc
from common.auth import scope
from common.clock import Clock
from common.db import Database
from common.errors import FieldViolation, InvalidArgument
from common.policy import PolicyParameters
from services.registry import access
from services.registry import events as ev
from services.registry.domain import badge_codes as bc
from services.registry.domain import id_number, images, institutions, roster, terms
from services.registry.domain.districts import CITY_CODE, DISTRICTS, district_name, is_district
from services.registry.domain.policy import RegistryPolicy
from services.registry.domain.problems import ProblemsError
from services.registry.domain.supervisors import (
    SupervisorInput,
    validate_attestations,
    validate_name,
    validate_supervisor,
    validate_training,
)
from services.registry.eligibility import RulesEligibility, facts_of
from services.registry.storage import models as m
from services.registry.storage import repository as repo
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
    pb.ATTESTATION_ITEM_ART9_1: "art9_1",
    pb.ATTESTATION_ITEM_ART9_2: "art9_2",
    pb.ATTESTATION_ITEM_ART9_3: "art9_3",
    pb.ATTESTATION_ITEM_ART9_4: "art9_4",
    pb.ATTESTATION_ITEM_HEALTH: "health",
}
ITEM_TO_PB = {v: k for k, v in ITEM_FROM_PB.items()}
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


def invalid(e: ProblemsError, prefix: str = "") -> InvalidArgument:
    return InvalidArgument(e.reason, [FieldViolation(f"{prefix}{p.field}", p.description) for p in e.problems])


def edge(fn):
    """Map domain validation problems raised anywhere in a handler to INVALID_ARGUMENT."""

    @functools.wraps(fn)
    async def wrapper(self, request, context):
        try:
            return await fn(self, request, context)
        except ProblemsError as e:
            raise invalid(e) from None

    return wrapper


def parse_date(text: str, field: str, default: dt.date | None = None) -> dt.date:
    if not text:
        if default is None:
            raise InvalidArgument("DATE_REQUIRED", [FieldViolation(field, "日期不能为空，格式YYYY-MM-DD")])
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(
            "DATE_FORMAT", [FieldViolation(field, f"“{text}”不是有效日期，格式应为YYYY-MM-DD")]
        ) from None


def page_of(size: int, token: str) -> repo.Page:
    return repo.Page(repo.clamp_page_size(size), repo.decode_token(token) if token else "")


def _ts(msg, when: dt.datetime | None) -> None:
    if when is not None:
        msg.FromDatetime(when if when.tzinfo else when.replace(tzinfo=dt.UTC))


def _district_filter(code: str, field: str = "district_code") -> str:
    if code and code not in DISTRICTS:
        raise InvalidArgument(
            "UNKNOWN_DISTRICT", [FieldViolation(field, f"区代码“{code}”不在北京市行政区划代码表中（附件1表3）")]
        )
    return code


# ============================================================================ converters (inside a session)


def to_proto_agency(a: m.Agency, full: bool) -> pb.Agency:
    out = pb.Agency(
        name=f"agencies/{a.code}", code=a.code, district_name=a.district_name, display_name=a.display_name,
        contact=a.contact, seal_sha256=a.seal_sha256, logo_sha256=a.logo_sha256, city_centre=a.code == CITY_CODE,
    )  # fmt: skip
    if full:
        out.seal, out.logo = a.seal or b"", a.logo or b""
    return out


def to_proto_institution(i: m.Institution, full: bool) -> pb.Institution:
    out = pb.Institution(
        name=f"institutions/{i.number}", number=i.number, type=ev.INSTITUTION_TYPE[i.type_letter],
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
        name=f"supervisors/{s.id}", full_name=s.full_name, gender=ev.GENDER[s.male],
        birth_date=s.birth_date.isoformat(), id_number=s.id_number if full else id_number.mask(s.id_number),
        type=ev.TYPE[s.type], level=ev.LEVEL[s.level], district_code=s.district_code,
        institution=f"institutions/{inst.number}" if inst else "", phone=s.phone, photo_sha256=s.photo_sha256,
        photo_mime_type=s.photo_mime, status=STATUS_TO_PB[s.status],
        current_appointment=f"appointments/{s.current_appointment_id}" if s.current_appointment_id else "",
        term_end=s.term_end.isoformat() if s.term_end else "", organization=org, organization_name=org_name,
        district_name=district_name(s.district_code),
    )  # fmt: skip
    for a in repo.attestations_of(session, supervisor_id=s.id):
        out.attestations.add(item=ITEM_TO_PB[a.item], satisfied=a.satisfied, attested_by=a.attested_by,
                             attested_date=a.attested_date.isoformat())  # fmt: skip
    if s.training_passed is not None:
        out.training.CopyFrom(pb.TrainingAssessment(
            passed=s.training_passed, assessed_by=s.training_by,
            assessed_date=s.training_date.isoformat() if s.training_date else "",
        ))  # fmt: skip
    _ts(out.create_time, s.created_at)
    _ts(out.update_time, s.updated_at)
    if full:
        out.photo = s.photo or b""
    return out


def to_proto_term(t: m.AppointmentTerm) -> pb.AppointmentTerm:
    return ev.term_message(t, terms.validity_text(t.start_date, t.end_date))


def to_proto_appointment(session, a: m.Appointment, policy: RegistryPolicy) -> pb.Appointment:
    sup = session.get(m.Supervisor, a.supervisor_id)
    all_terms = repo.terms_of(session, appointment_id=a.id)
    org_name = ev.organization_snapshot(session, a.organization).display_name
    out = pb.Appointment(
        name=f"appointments/{a.id}", supervisor=f"supervisors/{a.supervisor_id}", supervisor_name=sup.full_name,
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


def to_proto_badge(session, b: m.Badge, *, today: dt.date, full: bool, policy: RegistryPolicy) -> pb.Badge:
    sup = session.get(m.Supervisor, b.supervisor_id)
    appt = session.get(m.Appointment, b.appointment_id)
    seal_sha, logo_sha = repo.issuer_images_sha(session, b.issuer)
    inst = session.get(m.Institution, b.institution_id) if b.institution_id else None
    filed = False
    if inst is not None:
        filed = session.query(m.BadgeFiling.id).filter_by(badge_code=b.code).first() is not None
    out = pb.Badge(
        name=f"badges/{b.code}", code=b.code, parts=repo.code_parts_message(bc.parse(b.code, policy)),
        supervisor=f"supervisors/{sup.id}", appointment=f"appointments/{appt.id}", term_number=b.term_number,
        holder_name=sup.full_name, type=ev.TYPE[sup.type], level=ev.LEVEL[sup.level], issuer=b.issuer,
        issuer_name=repo.issuer_display_name(session, b.issuer), validity_text=b.validity_text,
        valid_from=b.valid_from.isoformat(), valid_until=b.valid_until.isoformat(),
        issue_date=b.issue_date.isoformat(), status=BADGE_STATUS_TO_PB[repo.badge_status(b, appt.status, today)],
        revoke_reason=b.revoke_reason, photo_sha256=sup.photo_sha256, photo_mime_type=sup.photo_mime, filed=filed,
        institution=f"institutions/{inst.number}" if inst else "", title=repo.badge_title(sup.type),
        issuer_seal_sha256=seal_sha, issuer_logo_sha256=logo_sha,
    )  # fmt: skip
    _ts(out.create_time, b.created_at)
    if full:
        out.photo = sup.photo or b""
        out.issuer_seal, out.issuer_logo = repo.issuer_images(session, b.issuer)
    return out


def to_proto_filing(session, f: m.BadgeFiling, today: dt.date) -> pb.BadgeFiling:
    b = session.get(m.Badge, f.badge_code)
    inst = session.get(m.Institution, f.institution_id)
    sup = session.get(m.Supervisor, b.supervisor_id)
    appt = session.get(m.Appointment, b.appointment_id)
    out = pb.BadgeFiling(
        name=f"filings/{f.id}", code=b.code, institution=f"institutions/{inst.number}",
        institution_name=inst.display_name, supervisor=f"supervisors/{sup.id}", holder_name=sup.full_name,
        validity_text=b.validity_text, filed_with=f.filed_with,
        badge_status=BADGE_STATUS_TO_PB[repo.badge_status(b, appt.status, today)],
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


def _image_in(data: bytes, field: str, policy: RegistryPolicy, photo: bool = False):
    if not data:
        return None
    return images.check_photo(data, policy, field) if photo else images.check_seal_or_logo(data, field, policy)


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
        self.db = db
        self.clock = clock
        self.rules = rules
        self.parameters = parameters
        self.policy = policy
        self.verifier = VerifyReader(db)
        self._sqlite_writer = asyncio.Lock()

    def _now(self) -> dt.datetime:
        """The instant to store: UTC (SQLite keeps no UTC offset; the clock's zone is Asia/Shanghai)."""
        return self.clock.now().astimezone(dt.UTC)

    async def _write(self, fn, /, *args, **kwargs):
        """db.write, one at a time per process on SQLite.

        SQLite has one writer per file; every waiting connection sleeps in SQLite's busy-handler steps
        (up to 100 ms) and re-tries. With N worker threads per process all waiting on BEGIN IMMEDIATE the lock
        is often free while every waiter sleeps; queueing the writes of this process here leaves one
        contender per process, which cut IssueBadge p99 under 32 concurrent clients substantially."""
        if self.db.is_postgres:
            return await self.db.write(fn, *args, **kwargs)
        async with self._sqlite_writer:
            return await self.db.write(fn, *args, **kwargs)

    # ------------------------------------------------------------------ agencies

    def _agency_code(self, name: str) -> str:
        code = repo._parse_resource(name, "agencies")
        if code not in DISTRICTS:
            raise InvalidArgument(
                "UNKNOWN_DISTRICT", [FieldViolation("name", f"“{code}”不在北京市行政区划代码表中（附件1表3）")]
            )
        return code

    @edge
    async def GetAgency(self, request, context):
        code = self._agency_code(request.name)
        full = request.view == pb.VIEW_FULL
        agency = await self.db.read(lambda s: to_proto_agency(repo.get_agency(s, code=code), full))
        return pb.GetAgencyResponse(agency=agency)

    @edge
    async def ListAgencies(self, request, context):
        full = request.view == pb.VIEW_FULL
        rows = await self.db.read(lambda s: [to_proto_agency(a, full) for a in repo.list_agencies(s)])
        return pb.ListAgenciesResponse(agencies=rows)

    @edge
    async def UpdateAgency(self, request, context):
        code = self._agency_code(request.agency.name)
        scope.require(scope.Owner.of(f"agencies/{code}"), f"agencies/{code}")
        changes = self._org_changes(request.agency, request.update_mask.paths, "agency", ("display_name", "contact"))
        now = self._now()
        agency = await self._write(
            lambda s: to_proto_agency(repo.update_agency(s, code=code, changes=changes, now=now), False)
        )
        return pb.UpdateAgencyResponse(agency=agency)

    def _org_changes(self, msg, paths, prefix: str, text_fields: tuple[str, ...]) -> dict:
        if not paths:
            raise InvalidArgument("UPDATE_MASK_REQUIRED", [FieldViolation("update_mask", "须指定要修改的字段")])
        changes = {}
        for p in paths:
            if p in text_fields:
                value = getattr(msg, p).strip()
                if p == "display_name" and not value:
                    raise InvalidArgument("NAME_REQUIRED", [FieldViolation(f"{prefix}.display_name", "名称不能为空")])
                if p == "district_code" and not is_district(value):
                    raise InvalidArgument(
                        "UNKNOWN_DISTRICT",
                        [
                            FieldViolation(
                                f"{prefix}.district_code", f"所在区代码“{value}”不在北京市行政区划代码表中（附件1表3）"
                            )
                        ],
                    )
                changes[p] = value
            elif p in ("seal", "logo"):
                try:
                    changes[p] = _image_in(getattr(msg, p), p, self.policy)
                except ProblemsError as e:
                    raise invalid(e, f"{prefix}.") from None
            else:
                raise InvalidArgument("UPDATE_MASK_PATH", [FieldViolation("update_mask", f"不支持修改字段“{p}”")])
        return changes

    # ------------------------------------------------------------------ institutions

    @edge
    async def CreateInstitution(self, request, context):
        i = request.institution
        try:
            draft = institutions.validate_institution(
                i.number, INST_TYPE_FROM_PB.get(i.type, ""), i.display_name, i.district_code, i.contact
            )
            seal = _image_in(i.seal, "seal", self.policy)
            logo = _image_in(i.logo, "logo", self.policy)
        except ProblemsError as e:
            raise invalid(e, "institution.") from None
        scope.require(scope.Owner.of(f"agencies/{draft.district_code}"), f"institutions/{draft.number}")
        now = self._now()
        out = await self._write(
            lambda s: to_proto_institution(
                repo.create_institution(s, draft=draft, seal=seal, logo=logo, now=now), False
            )
        )
        return pb.CreateInstitutionResponse(institution=out)

    @edge
    async def GetInstitution(self, request, context):
        number = repo._parse_resource(request.name, "institutions")
        full = request.view == pb.VIEW_FULL
        out = await self.db.read(lambda s: to_proto_institution(repo.get_institution(s, number=number), full))
        return pb.GetInstitutionResponse(institution=out)

    @edge
    async def ListInstitutions(self, request, context):
        page = page_of(request.page_size, request.page_token)
        district = _district_filter(request.district_code)
        letter = INST_TYPE_FROM_PB.get(request.type, "")

        def run(s):
            rows, token, total = repo.list_institutions(
                s, page=page, district_code=district, type_letter=letter, name_query=request.name_query
            )
            return pb.ListInstitutionsResponse(
                institutions=[to_proto_institution(r, False) for r in rows], next_page_token=token, total_size=total
            )

        return await self.db.read(run)

    @edge
    async def UpdateInstitution(self, request, context):
        number = repo._parse_resource(request.institution.name, "institutions", "institution.name")
        changes = self._org_changes(
            request.institution, request.update_mask.paths, "institution", ("display_name", "contact", "district_code")
        )
        now = self._now()

        def run(s):
            inst = repo.get_institution(s, number=number)
            owner = scope.Owner(district=f"agencies/{inst.district_code}", institution=f"institutions/{number}")
            scope.require(owner, f"institutions/{number}")
            return to_proto_institution(repo.update_institution(s, number=number, changes=changes, now=now), False)

        out = await self._write(run)
        return pb.UpdateInstitutionResponse(institution=out)

    # ------------------------------------------------------------------ supervisors

    def _supervisor_input(self, s: pb.Supervisor) -> SupervisorInput:
        institution = ""
        if s.institution:
            institution = repo._parse_resource(s.institution, "institutions", "supervisor.institution")
        return SupervisorInput(
            full_name=s.full_name,
            gender={pb.GENDER_MALE: "male", pb.GENDER_FEMALE: "female"}.get(s.gender, ""),
            birth_date=s.birth_date, id_number=s.id_number, type=TYPE_FROM_PB.get(s.type, "?"),
            level=LEVEL_FROM_PB.get(s.level, ""), district_code=s.district_code, institution_number=institution,
            phone=s.phone, attestations=_attestations_in(s.attestations), training=_training_in(s),
        )  # fmt: skip

    @edge
    async def RegisterSupervisor(self, request, context):
        today, now = self.clock.today(), self._now()
        try:
            draft = validate_supervisor(self._supervisor_input(request.supervisor), today)
            photo = _image_in(request.supervisor.photo, "photo", self.policy, photo=True)
        except ProblemsError as e:
            raise invalid(e, "supervisor.") from None
        org = f"institutions/{draft.institution_number}" if draft.institution_number else ""
        org = org or f"agencies/{draft.district_code if draft.level == 'district' else 'A'}"
        scope.require(scope.Owner.of(org), "supervisor")  # 第十条、第十二条: who appoints may register
        log.info("registering supervisor id_number=%s", id_number.mask(draft.id_number))
        out = await self._write(
            lambda s: to_proto_supervisor(s, repo.register_supervisor(s, draft=draft, photo=photo, now=now), False)
        )
        return pb.RegisterSupervisorResponse(supervisor=out)

    @edge
    async def GetSupervisor(self, request, context):
        sid = repo._int_id(request.name, "supervisors")
        full = request.view == pb.VIEW_FULL

        def run(s):
            sup, owner = access.supervisor(s, sid)
            return access.redact(to_proto_supervisor(s, sup, full), owner, full=full)

        out = await self.db.read(run)
        return pb.GetSupervisorResponse(supervisor=out)

    @edge
    async def ListSupervisors(self, request, context):
        page = page_of(request.page_size, request.page_token)
        district = _district_filter(request.district_code)
        institution = (
            repo._parse_resource(request.institution, "institutions", "institution") if request.institution else ""
        )
        before = parse_date(request.expiring_before, "expiring_before") if request.expiring_before else None
        district, institution = access.narrow(district, institution)
        # a district agency sees the district-level supervisors it appoints (第十条)
        level = "district" if scope.list_scope().district else LEVEL_FROM_PB.get(request.level, "")

        def run(s):
            rows, token, total = repo.list_supervisors(
                s, page=page, district_code=district, institution_number=institution,
                type=TYPE_FROM_PB.get(request.type, ""), level=level,
                status=STATUS_FROM_PB.get(request.status, ""), expiring_before=before, name_query=request.name_query,
            )  # fmt: skip
            return pb.ListSupervisorsResponse(
                supervisors=[
                    access.redact(to_proto_supervisor(s, r, False), access.of_supervisor(s, r), full=False)
                    for r in rows
                ],
                next_page_token=token,
                total_size=total,
            )

        return await self.db.read(run)

    @edge
    async def UpdateSupervisor(self, request, context):
        sid = repo._int_id(request.supervisor.name, "supervisors", "supervisor.name")
        paths = list(request.update_mask.paths)
        if not paths:
            raise InvalidArgument("UPDATE_MASK_REQUIRED", [FieldViolation("update_mask", "须指定要修改的字段")])
        today, now = self.clock.today(), self._now()
        s = request.supervisor
        changes: dict = {}
        try:
            for p in paths:
                if p == "full_name":
                    problems = validate_name(s.full_name)
                    if problems:
                        raise ProblemsError(problems)
                    changes[p] = s.full_name.strip()
                elif p == "phone":
                    changes[p] = s.phone.strip()[:50]
                elif p == "photo":
                    changes[p] = _image_in(s.photo, "photo", self.policy, photo=True)
                elif p == "attestations":
                    items, problems = validate_attestations(_attestations_in(s.attestations), today)
                    if problems:
                        raise ProblemsError(problems)
                    changes[p] = tuple(items)
                elif p == "training":
                    training, problems = validate_training(_training_in(s), today)
                    if problems:
                        raise ProblemsError(problems)
                    changes[p] = training
                else:
                    raise InvalidArgument("UPDATE_MASK_PATH", [FieldViolation("update_mask", f"不支持修改字段“{p}”")])
        except ProblemsError as e:
            raise invalid(e, "supervisor.") from None

        def run(ss):
            access.supervisor(ss, sid)
            updated = repo.update_supervisor(ss, supervisor_id=sid, changes=changes, now=now)
            return to_proto_supervisor(ss, updated, False)

        out = await self._write(run)
        return pb.UpdateSupervisorResponse(supervisor=out)

    @edge
    async def ImportRoster(self, request, context):
        today, now = self.clock.today(), self._now()
        rows = [(r.row_number, dict(r.cells)) for r in request.rows]

        def run(s):
            good, errors = roster.validate_rows(
                rows, today=today,
                institution_exists=lambda n: repo.institution_exists(s, number=n),
                id_number_registered=lambda n: repo.id_number_registered(s, id_number=n),
            )  # fmt: skip
            resp = pb.ImportRosterResponse(
                errors=[pb.RosterRowError(row_number=e.row, column=e.column, reason=e.reason, description=e.description)
                        for e in errors],
                checked_count=len(rows),
            )  # fmt: skip
            if request.validate_only or (errors and not request.partial):
                return resp
            ids = repo.import_roster(s, drafts=[d for _, d in good], now=now)
            resp.imported_count = len(ids)
            resp.supervisors.extend(f"supervisors/{i}" for i in ids)
            return resp

        # validate-only runs in a read transaction; an import validates and writes in ONE write transaction
        if request.validate_only:
            return await self.db.read(run)
        return await self._write(run)

    # ------------------------------------------------------------------ appointments

    async def _facts(self, supervisor_id: int | None = None, appointment_id: int | None = None, *, renewal: bool):
        def run(s):
            if renewal:
                appt, sup = repo.check_can_renew(s, appointment_id=appointment_id)
            else:
                sup, appt = repo.check_can_appoint(s, supervisor_id=supervisor_id), None
            inst = ev.institution_name(s.get(m.Institution, sup.institution_id)) if sup.institution_id else ""
            return facts_of(s, sup, appt, repo.attestations_of(s, supervisor_id=sup.id), inst), appt

        return await self.db.read(run)

    async def _age_limit(self, facts, start: dt.date) -> int:
        """第九条（五） age limit for the supervisor's gender in the rule set in force at `start` (D6)."""
        return int(
            await self.parameters.get("eligibility.max_age_male" if facts.male else "eligibility.max_age_female", start)
        )

    @edge
    async def AppointSupervisor(self, request, context):
        sid = repo._int_id(request.supervisor, "supervisors", "supervisor")
        today, now = self.clock.today(), self._now()
        start = parse_date(request.start_date, "start_date", today)
        term_years = await self.parameters.get("appointment.term_years", start)  # 第十三条, from the rule set
        repo.check_start_date(start, today, self.policy, term_years=term_years)
        await self.db.read(access.supervisor, sid)
        facts, _ = await self._facts(sid, renewal=False)
        decision = await self.rules.decide(facts, as_of=start, purpose="appointment")
        age_limit = await self._age_limit(facts, start)
        out = await self._write(
            lambda s: to_proto_appointment(
                s,
                repo.appoint(s, supervisor_id=sid, start=start, decision_id=decision, term_years=term_years,
                             age_limit_years=age_limit, appointed_by=request.appointed_by, today=today, now=now,
                             policy=self.policy),
                self.policy,
            )
        )  # fmt: skip
        return pb.AppointSupervisorResponse(appointment=out)

    @edge
    async def RenewAppointment(self, request, context):
        aid = repo._int_id(request.name, "appointments")
        today, now = self.clock.today(), self._now()
        start = parse_date(request.start_date, "start_date", today)
        term_years = await self.parameters.get("appointment.term_years", start)  # 第十三条, from the rule set
        repo.check_start_date(start, today, self.policy, term_years=term_years)
        await self.db.read(access.appointment, aid)
        facts, _ = await self._facts(appointment_id=aid, renewal=True)
        decision = await self.rules.decide(facts, as_of=start, purpose="renewal")
        age_limit = await self._age_limit(facts, start)
        out = await self._write(
            lambda s: to_proto_appointment(
                s,
                repo.renew(s, appointment_id=aid, start=start, decision_id=decision, term_years=term_years,
                           age_limit_years=age_limit, renewed_by=request.renewed_by, today=today, now=now,
                           policy=self.policy),
                self.policy,
            )
        )  # fmt: skip
        return pb.RenewAppointmentResponse(appointment=out)

    @edge
    async def SuspendAppointment(self, request, context):
        aid = repo._int_id(request.name, "appointments")
        await self.db.read(access.appointment, aid)
        now = self._now()
        out = await self._write(lambda s: to_proto_appointment(s, repo.suspend(
            s, appointment_id=aid, reason=request.reason, article=request.article, decided_by=request.decided_by,
            case_reference=request.case_reference, now=now, policy=self.policy), self.policy))  # fmt: skip
        return pb.SuspendAppointmentResponse(appointment=out)

    @edge
    async def ReinstateAppointment(self, request, context):
        aid = repo._int_id(request.name, "appointments")
        await self.db.read(access.appointment, aid)
        today, now = self.clock.today(), self._now()
        out = await self._write(lambda s: to_proto_appointment(s, repo.reinstate(
            s, appointment_id=aid, reason=request.reason, decided_by=request.decided_by, today=today, now=now,
            policy=self.policy), self.policy))  # fmt: skip
        return pb.ReinstateAppointmentResponse(appointment=out)

    @edge
    async def RevokeAppointment(self, request, context):
        aid = repo._int_id(request.name, "appointments")
        await self.db.read(access.appointment, aid)
        now = self._now()
        out = await self._write(lambda s: to_proto_appointment(s, repo.revoke(
            s, appointment_id=aid, reason=request.reason, article=request.article, decided_by=request.decided_by,
            case_reference=request.case_reference, now=now, policy=self.policy), self.policy))  # fmt: skip
        return pb.RevokeAppointmentResponse(appointment=out)

    @edge
    async def GetAppointment(self, request, context):
        aid = repo._int_id(request.name, "appointments")
        out = await self.db.read(lambda s: to_proto_appointment(s, access.appointment(s, aid), self.policy))
        return pb.GetAppointmentResponse(appointment=out)

    @edge
    async def ListAppointments(self, request, context):
        page = page_of(request.page_size, request.page_token)
        sid = repo._int_id(request.supervisor, "supervisors", "supervisor") if request.supervisor else None
        before = parse_date(request.expiring_before, "expiring_before") if request.expiring_before else None
        district = _district_filter(request.district_code)
        organization = request.appointing_organization
        if scope.list_scope() != scope.ListScope():  # an agency or institution lists its own appointments
            organization = scope.acting_org(organization, "appointing_organization")

        def run(s):
            rows, token, total = repo.list_appointments(
                s, page=page, supervisor_id=sid, status=STATUS_FROM_PB.get(request.status, ""),
                expiring_before=before, organization=organization, district_code=district,
            )  # fmt: skip
            return pb.ListAppointmentsResponse(
                appointments=[to_proto_appointment(s, r, self.policy) for r in rows],
                next_page_token=token, total_size=total,
            )  # fmt: skip

        return await self.db.read(run)

    @edge
    async def RunExpirySweep(self, request, context):
        as_of = parse_date(request.as_of_date, "as_of_date", self.clock.today())
        done = await self.sweep(as_of)
        return pb.RunExpirySweepResponse(expired=[f"appointments/{i}" for i in done])

    async def sweep(self, as_of: dt.date) -> list[int]:
        """聘期届满自动解聘 (第十三条): expire due appointments in batches (one transaction per batch)."""
        done: list[int] = []
        while True:
            batch = await self._write(repo.expire_due, as_of=as_of, now=self._now(), policy=self.policy)
            done += batch
            if len(batch) < 500:
                return done

    # ------------------------------------------------------------------ badges

    @edge
    async def IssueBadge(self, request, context):
        aid = repo._int_id(request.appointment, "appointments", "appointment")
        today, now = self.clock.today(), self._now()
        issue_date = parse_date(request.issue_date, "issue_date", today)
        if request.explicit_serial < 0:
            raise InvalidArgument("SERIAL_OUT_OF_RANGE", [FieldViolation("explicit_serial", "证卡序列码不能为负数")])
        # Reads first (checks, event snapshots), in a read transaction; the write transaction — which holds
        # the allocation lock — re-checks, allocates and inserts; the response is built after the commit.
        kw = dict(appointment_id=aid, issue_date=issue_date, explicit_serial=request.explicit_serial,
                  replace_existing=request.replace_existing, policy=self.policy)  # fmt: skip
        await self.db.read(access.appointment, aid)
        plan = await self.db.read(lambda s: repo.prepare_issue(s, **kw))
        badge = await self._write(lambda s: repo.issue_badge(s, now=now, plan=plan, **kw))
        return pb.IssueBadgeResponse(badge=self.to_proto_issued(plan, badge, today))

    def to_proto_issued(self, plan: repo.IssuePlan, b: m.Badge, today: dt.date) -> pb.Badge:
        """The response of IssueBadge from what the call already holds (no third transaction)."""
        sup, issuer = plan.supervisor_snapshot, plan.issuer_snapshot
        out = pb.Badge(
            name=f"badges/{b.code}", code=b.code, parts=repo.code_parts_message(bc.parse(b.code, self.policy)),
            supervisor=sup.name, appointment=f"appointments/{b.appointment_id}", term_number=b.term_number,
            holder_name=sup.full_name, type=sup.type, level=sup.level, issuer=b.issuer,
            issuer_name=issuer.display_name, validity_text=b.validity_text, valid_from=b.valid_from.isoformat(),
            valid_until=b.valid_until.isoformat(), issue_date=b.issue_date.isoformat(),
            status=BADGE_STATUS_TO_PB[repo.status_of(False, b.valid_until, "active", today)],
            photo_sha256=sup.photo_sha256, photo_mime_type=plan.photo_mime_type,
            filed=plan.scope.category.internal, institution=sup.institution,
            title=repo.badge_title(plan.supervisor_type),
            issuer_seal_sha256=plan.issuer_seal_sha256, issuer_logo_sha256=plan.issuer_logo_sha256,
        )  # fmt: skip
        _ts(out.create_time, b.created_at)
        return out

    def _badge_code(self, name: str) -> str:
        code = repo._parse_resource(name, "badges")
        try:
            return bc.parse(code, self.policy).code
        except ProblemsError as e:
            raise invalid(e) from None

    @edge
    async def GetBadge(self, request, context):
        code = self._badge_code(request.name)
        today, full = self.clock.today(), request.view == pb.VIEW_FULL

        def run(s):
            b, owner = access.badge(s, code)
            out = to_proto_badge(s, b, today=today, full=full, policy=self.policy)
            if full and not scope.sees_personal(owner):
                out.ClearField("photo")  # the holder's photo is personal information; the issuer's seal is not
            return out

        out = await self.db.read(run)
        return pb.GetBadgeResponse(badge=out)

    @edge
    async def ListBadges(self, request, context):
        page = page_of(request.page_size, request.page_token)
        today = self.clock.today()
        sid = repo._int_id(request.supervisor, "supervisors", "supervisor") if request.supervisor else None
        institution = (
            repo._parse_resource(request.institution, "institutions", "institution") if request.institution else ""
        )
        district, institution = access.narrow(_district_filter(request.district_code), institution)

        def run(s):
            rows, token, total = repo.list_badges(
                s, page=page, supervisor_id=sid, institution_number=institution, district_code=district,
                category=CATEGORY_FROM_PB.get(request.category, ""), year=request.year,
                status=BADGE_STATUS_FROM_PB.get(request.status, ""), today=today,
            )  # fmt: skip
            return pb.ListBadgesResponse(
                badges=[to_proto_badge(s, b, today=today, full=False, policy=self.policy) for b in rows],
                next_page_token=token, total_size=total,
            )  # fmt: skip

        return await self.db.read(run)

    @edge
    async def RevokeBadge(self, request, context):
        code = self._badge_code(request.name)
        await self.db.read(access.badge, code)
        today, now = self.clock.today(), self._now()
        out = await self._write(lambda s: to_proto_badge(s, repo.revoke_badge(
            s, code=code, reason=request.reason, decided_by=request.decided_by, now=now),
            today=today, full=False, policy=self.policy))  # fmt: skip
        return pb.RevokeBadgeResponse(badge=out)

    @edge
    async def ListBadgeFilings(self, request, context):
        page = page_of(request.page_size, request.page_token)
        today = self.clock.today()
        institution = (
            repo._parse_resource(request.institution, "institutions", "institution") if request.institution else ""
        )

        _, institution = access.narrow("", institution)

        def run(s):
            rows, token, total = repo.list_filings(s, page=page, institution_number=institution, year=request.year)
            return pb.ListBadgeFilingsResponse(
                filings=[to_proto_filing(s, f, today) for f in rows], next_page_token=token, total_size=total
            )

        return await self.db.read(run)

    @edge
    async def ParseBadgeCode(self, request, context):
        try:
            parts = bc.parse(request.code, self.policy)
        except ProblemsError as e:
            raise invalid(e) from None
        return pb.ParseBadgeCodeResponse(parts=repo.code_parts_message(parts))

    @edge
    async def ValidateBadgeCode(self, request, context):
        try:
            parts = bc.parse(request.code, self.policy)
        except ProblemsError as e:
            return pb.ValidateBadgeCodeResponse(
                valid=False,
                violations=[
                    pb.FieldError(field=p.field, reason=p.reason, description=p.description) for p in e.problems
                ],
            )
        today = self.clock.today()

        def run(s):
            problems = []
            if parts.category.internal:
                letter = repo.institution_type_by_digits(s, code_digits=parts.institution_digits)
                problems += bc.check_against_institution(parts, letter)
            issued = s.get(m.Badge, parts.code) is not None
            return problems, issued

        problems, issued = await self.db.read(run)
        if parts.year > today.year:
            pos = "4-5" if parts.letter == "R" else "8-9"
            problems.append(
                bc.Problem("year_digits", "YEAR_IN_FUTURE", f"第{pos}位证卡核发年份{parts.year}晚于当前年份（附件1）")
            )
        return pb.ValidateBadgeCodeResponse(
            valid=not problems, parts=repo.code_parts_message(parts), issued=issued,
            violations=[pb.FieldError(field=p.field, reason=p.reason, description=p.description) for p in problems],
        )  # fmt: skip

    async def VerifyBadge(self, request, context):
        try:
            code = bc.parse(request.code, self.policy).code
        except ProblemsError:
            return pb.VerifyBadgeResponse(code=bc.normalise(request.code), status=pb.BADGE_STATUS_UNKNOWN_CODE,
                                          message=VERIFY_MESSAGES["unknown"])  # fmt: skip
        as_of = parse_date(request.as_of_date, "as_of_date", self.clock.today())
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
            message=message, id_number_masked=id_number.mask(v.id_number),
        )  # fmt: skip

    # ------------------------------------------------------------------ dashboards

    @edge
    async def GetRegistryCounts(self, request, context):
        district = _district_filter(request.district_code)
        rows = await self.db.read(repo.counts, district_code=district)
        resp = pb.GetRegistryCountsResponse()
        for code, typ, status, n in rows:
            resp.counts.add(district_code=code, district_name=district_name(code), type=ev.TYPE[typ],
                            status=STATUS_TO_PB[status], count=n)  # fmt: skip
            resp.total += n
        return resp
