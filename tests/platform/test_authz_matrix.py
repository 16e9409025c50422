"""The authorisation matrix, generated from the policy file (issue #12): every RPC of every service × every
role, and × each forged-token attack, against a real stack — exactly the status the policy says, and a
refused call writes nothing (the service's outbox, where every state change leaves its event, is unchanged;
an unauthenticated refusal adds no audit entry, an authenticated caller's refused change adds one).

Scope (own district / institution / dispatches) is checked with real resources in test_authz_scope.py.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import descriptor_pool
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from bjsv.documents.v1 import documents_pb2  # noqa: F401 - registers the service descriptors
from bjsv.notify.v1 import notify_pb2  # noqa: F401
from bjsv.registry.v1 import registry_pb2, supervision_pb2  # noqa: F401
from bjsv.rules.v1 import rules_pb2  # noqa: F401
from common import audit, clients
from common.auth import policy
from common.auth.config import AuthSettings
from supervisionctl.stack import Stack
from tests import auth_support
from tests.conftest import stack_config

POLICY = policy.load()
METHODS = sorted(POLICY.grants)
# The organisation each role's token names in the matrix.
ORG_OF = {
    "city-centre": "agencies/A",
    "district-agency": "agencies/08",
    "institution": "institutions/1100081001",
    "supervisor": "supervisors/1",
    "auditor": "auditors/audit-office",
    "operator": "operators/ops",
    "service": "services/registry",
}
ATTACKS = ("no-token", "expired", "wrong-issuer", "wrong-audience", "tampered-signature", "unknown-key")


def _service(method: str) -> str:
    return method.split(".")[1]  # "/bjsv.registry.v1.RegistryService/X" -> "registry"


def _streaming(method: str) -> tuple[bool, bool]:
    service, rpc = method.strip("/").split("/")
    m = descriptor_pool.Default().FindServiceByName(service).methods_by_name[rpc]
    return m.client_streaming, m.server_streaming


@pytest.fixture(scope="module")
def matrix_stack(tmp_path_factory):
    """A stack of its own: calls admitted by the policy run their handlers with empty requests."""
    s = Stack(stack_config(tmp_path_factory.mktemp("authz"), BJSV_SUPERVISION_TEST_CLOCK="1"))
    s.start(timeout=90)
    yield s
    s.stop()


def call(stack: Stack, method: str, authorization: str | None) -> tuple[grpc.StatusCode, str]:
    """The status code and ErrorInfo reason of `method` called with an empty request."""
    md = (("authorization", authorization),) if authorization else ()
    client_streaming, server_streaming = _streaming(method)
    with clients.sync_channel(stack.config.target(_service(method))) as ch:
        try:
            if client_streaming:
                list(ch.stream_stream(method)(iter([b""]), metadata=md, timeout=20))
            elif server_streaming:
                list(ch.unary_stream(method)(b"", metadata=md, timeout=20))
            else:
                ch.unary_unary(method)(b"", metadata=md, timeout=20)
        except grpc.RpcError as e:
            return e.code(), _reason(e)
    return grpc.StatusCode.OK, ""


def _reason(e: grpc.RpcError) -> str:
    status = rpc_status.from_call(e)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


def outbox_rows(stack: Stack, service: str) -> int:
    with sqlite3.connect(Path(stack.config.data_dir) / f"{service}.db") as db:
        return db.execute("SELECT count(*) FROM outbox").fetchone()[0]


def audit_rows(stack: Stack, service: str, method: str, role: str) -> int:
    """Audit entries of `method` by callers with `role` ('' = no verified caller); other cases' calls that are
    still finishing (a client deadline) do not count."""
    with sqlite3.connect(Path(stack.config.data_dir) / f"{service}.db") as db:
        query = "SELECT count(*) FROM audit_entry WHERE method = ? AND role = ?"
        return db.execute(query, (method, role)).fetchone()[0]


def wait_audited(stack: Stack, service: str, method: str, role: str, count: int, timeout: float = 15.0) -> int:
    """The entry of a refused call is appended just after the caller got its status: wait for it to land."""
    deadline = time.monotonic() + timeout
    while (seen := audit_rows(stack, service, method, role)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return seen


# -- forged tokens ----------------------------------------------------------------------------------------


def _signing_key() -> tuple[str, ec.EllipticCurvePrivateKey]:
    """The issuer's current key, read from its folder: what an insider with a stolen key file could sign."""
    pem = max((AuthSettings().identity_path / "keys").glob("*.pem"), key=lambda p: p.stat().st_mtime)
    return pem.stem, serialization.load_pem_private_key(pem.read_bytes(), password=None)


def forged(attack: str) -> str | None:
    if attack == "no-token":
        return None
    if attack == "tampered-signature":  # a real token whose claims were edited (org → the city centre)
        header, payload, signature = auth_support.token("agencies/08", "district-agency").split(".")
        other = auth_support.token("agencies/A", "city-centre").split(".")[1]
        assert other != payload
        return f"Bearer {header}.{other}.{signature}"
    settings = AuthSettings()
    now = int(time.time())
    claims = {"iss": settings.issuer, "aud": settings.oidc_audience, "sub": "mallory", "org": "agencies/A",
              "roles": ["city-centre", "operator"], "iat": now, "nbf": now, "exp": now + 600}  # fmt: skip
    kid, key = _signing_key()
    if attack == "expired":
        claims |= {"iat": now - 3600, "nbf": now - 3600, "exp": now - 600}
    elif attack == "wrong-issuer":
        claims |= {"iss": "https://idp.example.org/realms/bjsv"}
    elif attack == "wrong-audience":
        claims |= {"aud": "another-system"}
    elif attack == "unknown-key":
        kid, key = "k-mallory", ec.generate_private_key(ec.SECP256R1())
    return "Bearer " + jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})


# -- the matrix -------------------------------------------------------------------------------------------

ROLE_CASES = [(m, r) for m in METHODS for r in POLICY.roles]
ATTACK_CASES = [(m, a) for m in METHODS for a in ATTACKS]


def _id(case: tuple[str, str]) -> str:
    method, who = case
    return f"{_service(method)}.{method.rsplit('/', 1)[1]}-{who}"


@pytest.mark.parametrize("case", ROLE_CASES, ids=[_id(c) for c in ROLE_CASES])
def test_each_role_gets_exactly_what_the_policy_grants(matrix_stack, case):
    method, role = case
    grant = POLICY.grant(method)
    service = _service(method)
    before, audited = outbox_rows(matrix_stack, service), audit_rows(matrix_stack, service, method, role)
    code, reason = call(matrix_stack, method, f"Bearer {auth_support.token(ORG_OF[role], role)}")
    if grant.public or role in grant.roles:
        assert code != grpc.StatusCode.UNAUTHENTICATED and reason not in ("ROLE_NOT_AUTHORISED", "POLICY_MISSING"), (
            code,
            reason,
        )
    else:
        assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_AUTHORISED")
        assert outbox_rows(matrix_stack, service) == before, "a refused call wrote an event"
        # who tried what: an authenticated caller's refused state-changing call is audited, a read is not
        expected = audited + audit.changes_state(method)
        assert wait_audited(matrix_stack, service, method, role, expected) == expected


@pytest.mark.parametrize("case", ATTACK_CASES, ids=[_id(c) for c in ATTACK_CASES])
def test_a_forged_or_missing_token_is_unauthenticated(matrix_stack, case):
    method, attack = case
    service = _service(method)
    before, audited = outbox_rows(matrix_stack, service), audit_rows(matrix_stack, service, method, "")
    code, reason = call(matrix_stack, method, forged(attack))
    if POLICY.grant(method).public:  # VerifyBadge at the exam door needs no token at all
        assert code != grpc.StatusCode.UNAUTHENTICATED
        return
    assert code == grpc.StatusCode.UNAUTHENTICATED, (code, reason)
    assert outbox_rows(matrix_stack, service) == before
    assert audit_rows(matrix_stack, service, method, "") == audited, "an unauthenticated refusal was audited"


def test_after_every_forged_token_no_service_audited_a_caller_it_had_not_authenticated(matrix_stack):
    """The entry of a refusal is appended after the caller got its status: one refused call of a known caller,
    awaited, shows that everything before it has landed; then no entry without a verified caller exists."""
    method = next(m for m in reversed(METHODS) if audit.changes_state(m) and "auditor" not in POLICY.grant(m).roles)
    service = _service(method)
    audited = audit_rows(matrix_stack, service, method, "auditor")
    assert call(matrix_stack, method, f"Bearer {auth_support.token(ORG_OF['auditor'], 'auditor')}")[0] == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    assert wait_audited(matrix_stack, service, method, "auditor", audited + 1) == audited + 1
    for name in ("registry", "rules", "documents", "notify"):
        with sqlite3.connect(Path(matrix_stack.config.data_dir) / f"{name}.db") as db:
            anonymous = db.execute("SELECT count(*) FROM audit_entry WHERE role = ''").fetchone()[0]
        assert anonymous == 0, f"{name}: {anonymous} entries of callers refused before authentication"


def test_every_rpc_of_every_service_is_in_the_policy():
    """A new RPC without a policy entry would be refused to everyone: the file must list each one."""
    declared = set()
    for full_name in (
        "bjsv.registry.v1.RegistryService",
        "bjsv.registry.v1.SupervisionService",
        "bjsv.rules.v1.RulesService",
        "bjsv.documents.v1.DocumentsService",
        "bjsv.notify.v1.NotifyService",
    ):
        service = descriptor_pool.Default().FindServiceByName(full_name)
        declared |= {f"/{full_name}/{m.name}" for m in service.methods}
    assert declared == set(METHODS)
    print(f"authorisation matrix: {len(ROLE_CASES)} role cases + {len(ATTACK_CASES)} token cases")
