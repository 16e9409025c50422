"""Accounts of the embedded issuer: people (password grant) and calling systems (client credentials).

Secrets are stored only as argon2id hashes (argon2-cffi; never hand-written hashing). An account carries
the organisation and roles its tokens state; roles are those of the authorisation policy (issue #12).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ROLES = ("city-centre", "district-agency", "institution", "supervisor", "auditor", "operator", "service")
KINDS = ("person", "client")
# agencies/A (city centre), agencies/01..17 (districts), institutions/<number>, supervisors/<id>,
# services/<name> (a service's own identity), operators/<name>, auditors/<name>.
ORG_PATTERN = re.compile(
    r"^(agencies/(A|\d{2})|institutions/\w+|supervisors/\d+|services/[a-z]+|operators/[\w.-]+|auditors/[\w.-]+)$"
)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters (RFC 9106)


class AccountError(ValueError):
    """A request the issuer refuses; `code` is the OAuth 2.0 error code (RFC 6749 §5.2)."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


@dataclass
class Account:
    name: str  # the token subject (people) or client id (systems)
    kind: str
    org: str
    roles: list[str]
    secret_hash: str
    disabled: bool = False
    admin: bool = False  # the local admin client: may mint tokens for any org/role (supervisionctl auth token)
    created: str = ""
    meta: dict = field(default_factory=dict)

    def public(self) -> dict:
        out = asdict(self)
        out.pop("secret_hash")
        return out


def check_identity(name: str, kind: str, org: str, roles: list[str]) -> None:
    if not NAME_PATTERN.match(name):
        raise AccountError("invalid_request", f"账户名“{name}”不合规（字母、数字、._@-，至多64位）")
    if kind not in KINDS:
        raise AccountError("invalid_request", f"账户类型须为 {'/'.join(KINDS)}")
    check_claims(org, roles)


def check_claims(org: str, roles: list[str]) -> None:
    if not ORG_PATTERN.match(org):
        raise AccountError("invalid_request", f"所属单位“{org}”不合规（如 agencies/A、agencies/08、institutions/…）")
    bad = [r for r in roles if r not in ROLES]
    if not roles or bad:
        raise AccountError("invalid_request", f"角色须为 {'、'.join(ROLES)} 之一（收到：{'、'.join(bad) or '无'}）")


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def authenticate(account: Account | None, secret: str) -> Account:
    """The account if the secret matches and it is enabled; one answer for every failure (no user probing)."""
    try:
        ok = account is not None and _hasher.verify(account.secret_hash, secret)
    except (VerificationError, InvalidHashError):
        ok = False
    if account is None or not ok or account.disabled:
        raise AccountError("invalid_grant", "账户名或密码错误，或账户已停用")
    return account


def claims(*, subject: str, org: str, roles: list[str], issuer: str, audience: str, now: int, ttl: int) -> dict:
    return {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "org": org,
        "roles": list(roles),
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": secrets.token_hex(12),
    }
