"""The one scope helper: handlers call it with the resource they are about to read or change.

The guard binds the current RPC's `Grant`; the caller's roles give their scopes for it (policy.yaml). A
resource names who it belongs to (`Owner`): its district agency, its institution, its supervisors. Code
running outside an RPC (event consumers, sweeps) has no grant bound and acts as the service itself.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from common.auth.policy import Grant
from common.context import Caller, current_caller
from common.errors import PermissionDenied

_grant: ContextVar[Grant | None] = ContextVar("grant", default=None)

# Who sees personal information in full (个人信息保护法: only those who need it): the appointing agency or
# institution, the supervisor themself, the services acting for them, and the city centre for every
# agency-appointed (external) supervisor, whose badges it issues (第十一条). Everyone else gets it masked.
_PERSONAL_ROLES = ("city-centre", "district-agency", "institution")


@dataclass(frozen=True)
class Owner:
    """Who a resource belongs to; empty fields do not match anyone's own-* scope."""

    district: str = ""  # agencies/NN, or agencies/A for the city level
    institution: str = ""  # institutions/…
    supervisors: tuple[str, ...] = ()  # supervisors/… (the supervisor themself, a dispatch's team)

    @classmethod
    def of(cls, org: str, *supervisors: str) -> Owner:
        """A resource held by one organisation (agencies/…, institutions/… or a supervisor person)."""
        return cls(
            district=org if org.startswith("agencies/") else "",
            institution=org if org.startswith("institutions/") else "",
            supervisors=(*supervisors, org) if org.startswith("supervisors/") else supervisors,
        )


@dataclass(frozen=True)
class ListScope:
    """How a list call is narrowed: `None` fields = no restriction from the caller's scope."""

    district: str | None = None
    institution: str | None = None
    supervisor: str | None = None


def bind(grant: Grant | None) -> None:
    _grant.set(grant)


def _scopes(caller: Caller) -> set[str]:
    grant = _grant.get()
    return {"any"} if grant is None else grant.scopes(caller.roles)


def allows(owner: Owner) -> bool:
    caller = current_caller()
    scopes = _scopes(caller)
    return (
        "any" in scopes
        or ("own-district" in scopes and caller.org == owner.district)
        or ("own-institution" in scopes and caller.org == owner.institution)
        or ("own-dispatches" in scopes and caller.org in owner.supervisors)
    )


def require(owner: Owner, resource: str = "") -> None:
    """Refuse (before anything is written) a resource outside the caller's scope for this RPC."""
    if not allows(owner):
        grant = _grant.get()
        article = f"（{grant.article}）" if grant else ""
        raise PermissionDenied(
            "OUT_OF_SCOPE",
            f"{resource or '该事项'}不属于本单位的职责范围，无权办理{article}",
            metadata={"resource": resource, "caller_org": current_caller().org},
        )


def list_scope() -> ListScope:
    """The filter a list call must apply so it returns only what the caller may see."""
    caller = current_caller()
    scopes = _scopes(caller)
    if "any" in scopes:
        return ListScope()
    return ListScope(
        district=caller.org if "own-district" in scopes else None,
        institution=caller.org if "own-institution" in scopes else None,
        supervisor=caller.org if "own-dispatches" in scopes else None,
    )


def narrow_supervisor(requested: str) -> str:
    """A list call's supervisor filter for a supervisor caller: always themself (their dispatches 第十四条,
    their badge 第十一条); naming another supervisor is refused rather than answered with one's own."""
    own = list_scope().supervisor
    if own is None:
        return requested
    if requested and requested != own:
        require(Owner.of(requested), requested)
    return own


def acting_org(value: str, field: str) -> str:
    """The acting organisation comes from the token: a request field naming it must equal the caller's
    organisation, or is filled from it when empty (issue #12: never trusted from the body)."""
    caller = current_caller()
    if _grant.get() is None or "service" in caller.roles:  # a service relays what an official decided
        return value or caller.org
    if value and value != caller.org:
        raise PermissionDenied(
            "ACTING_ORG_MISMATCH",
            f"{field} 须为访问令牌所载单位 {caller.org}，不得代其他单位办理",
            metadata={"field": field, "caller_org": caller.org},
        )
    return caller.org


def sees_personal(owner: Owner) -> bool:
    """Full ID number, phone, photo, e-mail only for the appointing agency/institution and the person."""
    caller = current_caller()
    if _grant.get() is None or "service" in caller.roles:
        return True
    if caller.org in owner.supervisors or ("city-centre" in caller.roles and owner.district):
        return True
    return any(r in _PERSONAL_ROLES for r in caller.roles) and caller.org in (owner.district, owner.institution)
