"""The authorisation policy as data: `policy.yaml` (shipped with the package) or BJSV_AUTHZ_POLICY_FILE.

One `Grant` per RPC: the roles that may call it, each role's scope, the article granting the power, and
whether the RPC is public or a test-clock RPC. Loaded and checked once at start-up; an unknown role or
scope in the file stops the service with one line instead of silently granting or refusing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from common.db import StartupError

SHIPPED = Path(__file__).with_name("policy.yaml")
SCOPES = ("any", "own-district", "own-institution", "own-dispatches")


@dataclass(frozen=True)
class Grant:
    method: str  # "/bjsv.registry.v1.RegistryService/GetSupervisor"
    article: str
    roles: dict[str, str] = field(default_factory=dict)  # role -> scope
    public: bool = False
    test_clock: bool = False

    def scopes(self, roles: tuple[str, ...]) -> set[str]:
        """The scopes the caller's roles hold for this RPC (empty: none of them may call it)."""
        return {self.roles[r] for r in roles if r in self.roles}


@dataclass(frozen=True)
class Policy:
    roles: tuple[str, ...]
    grants: dict[str, Grant]

    def grant(self, method: str) -> Grant | None:
        return self.grants.get(method)


def load(path: Path | None = None) -> Policy:
    path = path or SHIPPED
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise StartupError(f"authorisation policy {path} unreadable: {e}. Fix BJSV_AUTHZ_POLICY_FILE.") from None
    roles = tuple(doc.get("roles") or ())
    grants: dict[str, Grant] = {}
    for service, methods in (doc.get("services") or {}).items():
        for rpc, entry in methods.items():
            method = f"/{service}/{rpc}"
            granted = dict(entry.get("roles") or {})
            bad = [f"{r}: {s}" for r, s in granted.items() if r not in roles or s not in SCOPES]
            if bad or not entry.get("article"):
                raise StartupError(
                    f"authorisation policy {path}: {method} has unknown roles/scopes {bad} or no article. "
                    f"Fix: roles {list(roles)}, scopes {list(SCOPES)}, and cite the article."
                )
            grants[method] = Grant(
                method,
                str(entry["article"]),
                granted,
                public=bool(entry.get("public")),
                test_clock=bool(entry.get("test_clock")),
            )
    return Policy(roles, grants)
