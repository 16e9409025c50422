"""A service's own identity for the calls it makes (service-to-service, event-driven): OAuth 2.0 client
credentials at the issuer, token cached until shortly before it expires.

Embedded issuer: the client id and secret are in `<identity dir>/clients/<service>.json` (0600), written by
the issuer at its first start. External issuer: BJSV_OIDC_CLIENT_ID / BJSV_OIDC_CLIENT_SECRET.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

from common.auth import issuer_tls
from common.auth.config import AuthSettings
from common.auth.tokens import discovery
from common.errors import Unavailable

REFRESH_BEFORE_EXPIRY = 60.0  # seconds


def client_file(identity_dir: Path, name: str) -> Path:
    return identity_dir / "clients" / f"{name}.json"


def read_client(path: Path) -> tuple[str, str]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    return doc["client_id"], doc["client_secret"]


def request_token(settings: AuthSettings, form: dict[str, str | list[str]], timeout: float = 10.0) -> dict:
    """POST a token request (RFC 6749 §4.4) to the issuer's token endpoint (OIDC discovery), over verified
    HTTPS; raises urllib's HTTPError with the issuer's JSON error body."""
    token_url = discovery(settings)["token_endpoint"]
    body = urllib.parse.urlencode(form, doseq=True).encode()
    req = urllib.request.Request(token_url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    with issuer_tls.urlopen(settings, req, timeout) as resp:
        return json.load(resp)


class ServiceIdentity:
    """Bearer token of one service (role `service`), fetched lazily and refreshed before expiry."""

    def __init__(self, settings: AuthSettings, service: str) -> None:
        self.settings = settings
        self.service = service
        self._token = ""
        self._expires = 0.0
        self._lock = asyncio.Lock()

    def _fetch(self) -> tuple[str, float]:
        s = self.settings
        if s.oidc_client_id and s.oidc_client_secret:
            client_id, secret = s.oidc_client_id, s.oidc_client_secret
        else:
            client_id, secret = read_client(client_file(s.identity_path, self.service))
        form: dict[str, str | list[str]] = {"grant_type": "client_credentials", "client_id": client_id}
        form["client_secret"] = secret
        doc = request_token(s, form)
        return doc["access_token"], time.time() + float(doc.get("expires_in", 300))

    async def authorization(self) -> str:
        if time.time() < self._expires - REFRESH_BEFORE_EXPIRY:
            return f"Bearer {self._token}"
        async with self._lock:
            if time.time() >= self._expires - REFRESH_BEFORE_EXPIRY:
                try:
                    self._token, self._expires = await asyncio.to_thread(self._fetch)
                except (OSError, KeyError, ValueError) as e:
                    raise Unavailable(
                        "SERVICE_TOKEN_UNAVAILABLE", f"无法从身份认证服务取得本服务的访问令牌：{e}"
                    ) from None
        return f"Bearer {self._token}"


_current: ServiceIdentity | None = None


def use(identity: ServiceIdentity | None) -> None:
    """Set by common.server.serve: the identity every outgoing channel of this process presents."""
    global _current
    _current = identity


def current() -> ServiceIdentity | None:
    return _current


ADMIN_FILE = "admin.json"


def admin_token(settings: AuthSettings, org: str, roles: list[str], subject: str = "") -> str:
    """A token for any organisation/role from the embedded issuer, with the local admin credential
    (`<identity dir>/admin.json`, 0600): what `supervisionctl auth token` and the test fixtures use."""
    client_id, secret = read_client(settings.identity_path / ADMIN_FILE)
    form: dict[str, str | list[str]] = {"grant_type": "client_credentials", "client_id": client_id, "org": org}
    form["client_secret"] = secret
    form |= {"role": roles, "subject": subject} if subject else {"role": roles}
    return request_token(settings, form)["access_token"]
