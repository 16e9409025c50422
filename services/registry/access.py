"""Who a registry resource belongs to, for the one scope helper (common.auth.scope, policy.yaml), and the
masking of personal information for callers outside the appointing organisation (个人信息保护法).

Owner of a supervisor = the organisation that appoints them (第十条: the city centre for city-level, the
district agency for district-level external supervisors; 第十二条: the institution for internal ones),
plus the supervisor themself.
"""

from __future__ import annotations

from bjsv.registry.v1 import registry_pb2 as pb
from common.auth import personal, scope
from common.errors import NotFound
from services.registry import events as ev
from services.registry.domain import id_number
from services.registry.storage import models as m
from services.registry.storage import repository as repo


def of_supervisor(session, sup: m.Supervisor) -> scope.Owner:
    return scope.Owner.of(ev.supervisor_organization(session, sup)[0], f"supervisors/{sup.id}")


def supervisor(session, supervisor_id: int) -> tuple[m.Supervisor, scope.Owner]:
    """The supervisor, refused (before anything is written) when outside the caller's scope."""
    sup = _found(repo.supervisor(session, supervisor_id=supervisor_id), f"supervisors/{supervisor_id}")
    owner = of_supervisor(session, sup)
    scope.require(owner, f"supervisors/{supervisor_id}")
    return sup, owner


def appointment(session, appointment_id: int) -> m.Appointment:
    return _appointment(session, appointment_id)[0]


def _appointment(session, appointment_id: int) -> tuple[m.Appointment, scope.Owner]:
    appt = _found(repo.appointment(session, appointment_id=appointment_id), f"appointments/{appointment_id}")
    owner = scope.Owner.of(appt.organization, f"supervisors/{appt.supervisor_id}")
    scope.require(owner, f"appointments/{appointment_id}")
    return appt, owner


def badge(session, code: str) -> tuple[m.Badge, scope.Owner]:
    """A badge belongs to whoever holds the appointment it was issued under."""
    b = _found(repo.badge(session, code=code), f"badges/{code}")
    return b, _appointment(session, b.appointment_id)[1]


def institution(session, number: str) -> m.Institution:
    """An institution belongs to itself and to the agency of its district (第十二条 filing)."""
    inst = _found(repo.institution(session, number=number), f"institutions/{number}")
    owner = scope.Owner(district=f"agencies/{inst.district_code}", institution=f"institutions/{number}")
    scope.require(owner, f"institutions/{number}")
    return inst


def _found(row, name: str):
    if row is None:
        raise NotFound(name)
    return row


def narrow(district_code: str, institution_number: str) -> tuple[str, str]:
    """The district / institution filters of a list call, narrowed to the caller's scope; asking for another
    district or institution is refused rather than silently answered with one's own."""
    limits = scope.list_scope()
    if limits.district is not None:
        own = limits.district.removeprefix("agencies/")
        if district_code and district_code != own:
            scope.require(scope.Owner.of(f"agencies/{district_code}"), f"agencies/{district_code}")
        district_code = own
    if limits.institution is not None:
        own = limits.institution.removeprefix("institutions/")
        if institution_number and institution_number != own:
            scope.require(scope.Owner.of(f"institutions/{institution_number}"), f"institutions/{institution_number}")
        institution_number = own
    return district_code, institution_number


def redact(out: pb.Supervisor, owner: scope.Owner, *, full: bool) -> pb.Supervisor:
    """ID number, phone and photo in full only for the appointing organisation and the person (and audited)."""
    if scope.sees_personal(owner):
        if full:
            personal.audit_full_read(out.name, ("id_number", "phone", "photo"))
        return out
    if full:  # the summary view is masked already
        out.id_number = id_number.mask(out.id_number)
    out.phone = personal.mask_phone(out.phone)
    out.ClearField("photo")
    return out
