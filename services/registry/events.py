"""Events the registry publishes (through the outbox, in the same transaction as the change).

Subjects `bjsv.registry.<type>` on stream BJSV_REGISTRY. Payloads (proto/bjsv/registry/v1/events.proto)
are self-sufficient: documents renders, notify schedules reminders and the workflow files without calling
back. The registry consumes no events of other services.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.orm import Session

from bjsv.registry.v1 import events_pb2, registry_pb2
from common.auth import personal
from common.events import record_event
from services.registry.domain import id_number
from services.registry.domain.districts import CITY_CODE, district_name
from services.registry.storage import models as m

Org = TypeVar("Org", m.Agency, m.Institution)

SUPERVISOR_REGISTERED = "supervisor.registered"
SUPERVISOR_UPDATED = "supervisor.updated"
APPOINTMENT_STARTED = "appointment.started"
APPOINTMENT_RENEWED = "appointment.renewed"
APPOINTMENT_EXPIRED = "appointment.expired"
APPOINTMENT_SUSPENDED = "appointment.suspended"
APPOINTMENT_REINSTATED = "appointment.reinstated"
APPOINTMENT_REVOKED = "appointment.revoked"
BADGE_ISSUED = "badge.issued"
BADGE_FILED = "badge.filed"
BADGE_REVOKED = "badge.revoked"

ALL_TYPES = (
    SUPERVISOR_REGISTERED, SUPERVISOR_UPDATED, APPOINTMENT_STARTED, APPOINTMENT_RENEWED, APPOINTMENT_EXPIRED,
    APPOINTMENT_SUSPENDED, APPOINTMENT_REINSTATED, APPOINTMENT_REVOKED, BADGE_ISSUED, BADGE_FILED, BADGE_REVOKED,
)  # fmt: skip

GENDER = {True: registry_pb2.GENDER_MALE, False: registry_pb2.GENDER_FEMALE}
TYPE = {"external": registry_pb2.SUPERVISOR_TYPE_EXTERNAL, "internal": registry_pb2.SUPERVISOR_TYPE_INTERNAL}
LEVEL = {
    "city": registry_pb2.SUPERVISOR_LEVEL_CITY,
    "district": registry_pb2.SUPERVISOR_LEVEL_DISTRICT,
    "institution": registry_pb2.SUPERVISOR_LEVEL_INSTITUTION,
}
INSTITUTION_TYPE = {"Y": registry_pb2.INSTITUTION_TYPE_EMPLOYER, "S": registry_pb2.INSTITUTION_TYPE_SOCIAL_ORGANIZATION}


def institution_by_number(session: Session, number: str) -> m.Institution | None:
    """Institution by number, memoised for the session (one transaction): issuing a badge needs it 4 times."""
    memo = session.info.setdefault("institution_by_number", {})
    if number not in memo:
        memo[number] = session.query(m.Institution).filter_by(number=number).one_or_none()
    return memo[number]


def institution_name(inst: m.Institution) -> str:
    return f"institutions/{inst.number}"


def supervisor_organization(session: Session, sup: m.Supervisor) -> tuple[str, str]:
    """(resource name, display name) of the organisation a supervisor belongs to / is appointed by."""
    if sup.institution_id is not None:
        inst = _kept(session, session.get_one(m.Institution, sup.institution_id))
        return institution_name(inst), inst.display_name
    code = sup.district_code if sup.level == "district" else CITY_CODE
    agency = _kept(session, session.get_one(m.Agency, code))
    return f"agencies/{code}", agency.display_name


def _kept(session: Session, row: Org) -> Org:
    """The session's identity map holds rows weakly: without this reference every supervisor of a list page
    read its organisation again. Kept for the session only; it is the same object, so a change shows."""
    session.info.setdefault("organizations", set()).add(row)
    return row


def organization_snapshot(session: Session, name: str) -> events_pb2.OrganizationSnapshot:
    kind, _, key = name.partition("/")
    if kind == "agencies":
        a = session.get_one(m.Agency, key)
        return events_pb2.OrganizationSnapshot(
            name=name, display_name=a.display_name, district_code=a.code, district_name=a.district_name,
            contact=a.contact,
        )  # fmt: skip
    inst = institution_by_number(session, key)
    if inst is None:  # names reach here from rows read in the same transaction
        raise LookupError(f"{name} not found")
    return events_pb2.OrganizationSnapshot(
        name=name, display_name=inst.display_name, district_code=inst.district_code,
        district_name=district_name(inst.district_code), contact=inst.contact,
        institution_type=INSTITUTION_TYPE[inst.type_letter], institution_number=inst.number,
    )  # fmt: skip


def supervisor_snapshot(session: Session, sup: m.Supervisor) -> events_pb2.SupervisorSnapshot:
    org, org_name = supervisor_organization(session, sup)
    inst = session.get(m.Institution, sup.institution_id) if sup.institution_id is not None else None
    return events_pb2.SupervisorSnapshot(
        name=f"supervisors/{sup.id}",
        full_name=sup.full_name,
        gender=GENDER[sup.male],
        birth_date=sup.birth_date.isoformat(),
        id_number_masked=id_number.mask(sup.id_number),
        type=TYPE[sup.type],
        level=LEVEL[sup.level],
        district_code=sup.district_code,
        district_name=district_name(sup.district_code),
        institution=institution_name(inst) if inst else "",
        institution_name=inst.display_name if inst else "",
        phone=personal.mask_phone(sup.phone),  # personal information never travels in events (个人信息保护法)
        photo_sha256=sup.photo_sha256,
        organization=org,
        organization_name=org_name,
    )


def term_message(t: m.AppointmentTerm, validity_text: str) -> registry_pb2.AppointmentTerm:
    return registry_pb2.AppointmentTerm(
        term_number=t.term_number, start_date=t.start_date.isoformat(), end_date=t.end_date.isoformat(),
        eligibility_decision_id=t.decision_id, validity_text=validity_text,
    )  # fmt: skip


def publish(session: Session, event_type: str, subject: str, payload) -> str:
    return record_event(session, type=event_type, subject=subject, payload=payload)
