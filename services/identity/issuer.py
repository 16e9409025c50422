"""Use cases of the embedded issuer: tokens (password and client-credentials grants), JWKS, discovery,
key rotation and account administration. The HTTP edge (api.py) and supervisionctl both call these.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from common.auth.credentials import ADMIN_FILE, client_file
from common.config import SERVICES
from services.identity.config import IdentitySettings
from services.identity.domain import keys as keyring
from services.identity.domain.accounts import (
    Account,
    AccountError,
    authenticate,
    check_claims,
    check_identity,
    claims,
    hash_secret,
    new_secret,
)
from services.identity.storage.files import AccountStore, KeyStore, private_dir, write_private

ALGORITHM = "ES256"
ADMIN = "admin"


def service_client(service: str) -> str:
    return f"service-{service}"


class Issuer:
    def __init__(self, settings: IdentitySettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        folder = private_dir(settings.identity_path)
        self.accounts = AccountStore(folder)
        self.keystore = KeyStore(folder)
        self._keys: dict = {}
        self._version = -1.0

    # -- keys -------------------------------------------------------------------------------------------

    def _ring(self) -> dict:
        version = self.keystore.version()
        if version != self._version:  # the CLI may have rotated: reload what is on disk
            self._keys, self._version = self.keystore.load(), version
        return self._keys

    def rotate(self, *, force: bool = False) -> str | None:
        """Add a new signing key when due (or forced) and drop keys whose tokens have all expired."""
        now = self.clock()
        infos = [info for info, _ in self._ring().values()]
        added = None
        if force or keyring.rotation_due(infos, now, self.settings.identity_key_rotation_days * 86400):
            added = f"k{int(now)}-{secrets.token_hex(3)}"
            self.keystore.add(added, ec.generate_private_key(ec.SECP256R1()), now)
            infos.append(keyring.KeyInfo(added, now))
        for old in keyring.retired(infos, now, self.settings.identity_token_ttl):
            self.keystore.remove(old.kid)
        return added

    def jwks(self) -> dict:
        out = []
        for kid, (_, key) in sorted(self._ring().items()):
            jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
            out.append({**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM})
        return {"keys": out}

    def discovery(self) -> dict:
        base = self.settings.issuer
        return {
            "issuer": base,
            "jwks_uri": f"{base}/jwks",
            "token_endpoint": f"{base}/token",
            "grant_types_supported": ["password", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
        }

    def _sign(self, subject: str, org: str, roles: list[str]) -> dict:
        ring = self._ring()
        if not ring:
            self.rotate(force=True)
            ring = self._ring()
        current = keyring.newest([info for info, _ in ring.values()])
        if current is None:  # rotate(force=True) above wrote a key
            raise RuntimeError("no signing key after rotation")
        ttl = self.settings.identity_token_ttl
        body = claims(
            subject=subject,
            org=org,
            roles=roles,
            issuer=self.settings.issuer,
            audience=self.settings.oidc_audience,
            now=int(self.clock()),
            ttl=ttl,
        )
        token = jwt.encode(body, ring[current.kid][1], algorithm=ALGORITHM, headers={"kid": current.kid})
        return {"access_token": token, "token_type": "Bearer", "expires_in": ttl}

    # -- grants -----------------------------------------------------------------------------------------

    def token(self, form: dict[str, list[str]], basic: tuple[str, str] | None = None) -> dict:
        def one(key: str) -> str:
            return (form.get(key) or [""])[0]

        grant = one("grant_type")
        if grant == "password":
            account = authenticate(self.accounts.get(one("username")), one("password"))
            if account.kind != "person":
                raise AccountError("invalid_grant", "该账户不是人员账户")
            return self._sign(account.name, account.org, account.roles)
        if grant == "client_credentials":
            client_id, secret = basic or (one("client_id"), one("client_secret"))
            try:
                account = authenticate(self.accounts.get(client_id), secret)
            except AccountError:
                raise AccountError("invalid_client", "客户端凭据错误，或客户端已停用") from None
            if account.kind != "client":
                raise AccountError("invalid_client", "该账户不是调用系统账户")
            if account.admin and one("org"):
                # The local operator mints a token for any organisation/role (supervisionctl auth token).
                roles = form.get("role") or []
                check_claims(one("org"), roles)
                return self._sign(one("subject") or f"{ADMIN}:{one('org')}", one("org"), roles)
            return self._sign(account.name, account.org, account.roles)
        raise AccountError("unsupported_grant_type", "仅支持 password 与 client_credentials 授权方式")

    # -- accounts ---------------------------------------------------------------------------------------

    def create_account(
        self, name: str, kind: str, org: str, roles: list[str], secret: str | None = None, *, admin: bool = False
    ) -> tuple[Account, str]:
        check_identity(name, kind, org, roles)
        secret = secret or new_secret()
        with self.accounts.change() as accounts:
            if name in accounts:
                raise AccountError("invalid_request", f"账户“{name}”已存在")
            created = dt.datetime.fromtimestamp(self.clock(), dt.UTC).isoformat()
            account = Account(name, kind, org, list(roles), hash_secret(secret), admin=admin, created=created)
            accounts[name] = account
        return account, secret

    def set_disabled(self, name: str, disabled: bool) -> Account:
        with self.accounts.change() as accounts:
            if name not in accounts:
                raise AccountError("invalid_request", f"账户“{name}”不存在")
            accounts[name].disabled = disabled
            return accounts[name]

    def ensure_local_clients(self) -> None:
        """The local admin credential and one client per service, each written to a 0600 file once."""
        folder = self.settings.identity_path
        wanted = [(ADMIN, folder / ADMIN_FILE, "operators/admin", ["operator"], True)]
        wanted += [(service_client(s), client_file(folder, s), f"services/{s}", ["service"], False) for s in SERVICES]
        for name, path, org, roles, admin in wanted:
            if path.exists() and self.accounts.get(name) is not None:
                continue
            with self.accounts.change() as accounts:
                accounts.pop(name, None)
            _, secret = self.create_account(name, "client", org, roles, admin=admin)
            write_private(path, _client_json(name, secret))


def _client_json(client_id: str, secret: str) -> bytes:
    return json.dumps({"client_id": client_id, "client_secret": secret}).encode()
