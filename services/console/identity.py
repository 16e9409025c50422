"""Who is logged in, and the one place that decides what an outgoing gRPC call carries for them.

The console holds no privileges of its own: it logs the user in at the identity issuer (the embedded one by
the password grant, an external one by authorization code + PKCE), keeps the access token in the server-side
session and forwards it as `authorization: Bearer …` on every call. The token's claims (`sub`, `name`, `org`,
`roles`) are decoded for display and page choice only — the services verify the token and authorise; the
console never does.
"""

from __future__ import annotations

import logging
import secrets
import ssl
from dataclasses import dataclass

import httpx
import jwt
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client

log = logging.getLogger(__name__)

AGENCY_ROLES = ("city-centre", "district-agency")


@dataclass(frozen=True)
class Principal:
    """The logged-in user as the token describes them (display and page choice only)."""

    sub: str
    name: str
    org: str
    roles: tuple[str, ...]

    @property
    def role(self) -> str:
        return self.roles[0] if self.roles else ""

    def has(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)


@dataclass(frozen=True)
class Credentials:
    principal: Principal
    access_token: str


class LoginRefused(Exception):
    """Wrong user name or password, or the issuer refused; the message is shown to the user."""


def call_metadata(creds: Credentials) -> tuple[tuple[str, str], ...]:
    """What every gRPC call made for this user carries: their bearer token, nothing else."""
    return (("authorization", f"Bearer {creds.access_token}"),)


def principal_from_token(token: str) -> Principal:
    """Claims read without verifying the signature: only for display; the services verify every call."""
    claims = jwt.decode(token, options={"verify_signature": False})
    roles = claims.get("roles") or []
    if isinstance(roles, str):
        roles = roles.split()
    return Principal(
        sub=str(claims.get("sub", "")),
        name=str(claims.get("name") or claims.get("preferred_username") or claims.get("sub", "")),
        org=str(claims.get("org", "")),
        roles=tuple(roles),
    )


class OAuthIssuer:
    """The identity issuer's OAuth 2.0 endpoints, found by OIDC discovery: the password grant for the embedded
    accounts, authorization code + PKCE (S256) for an external issuer."""

    def __init__(self, issuer: str, client_id: str, verify: ssl.SSLContext | bool = True) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.verify = verify
        self._discovery: dict | None = None

    def _client(self, **kw) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(client_id=self.client_id, verify=self.verify, timeout=10.0, **kw)

    async def discovery(self) -> dict:
        if self._discovery is None:
            try:
                async with httpx.AsyncClient(verify=self.verify, timeout=10.0) as http:
                    resp = await http.get(f"{self.issuer}/.well-known/openid-configuration")
                    resp.raise_for_status()
                    self._discovery = resp.json()
            except httpx.HTTPError:
                log.exception("identity issuer discovery failed: %s", self.issuer)
                raise LoginRefused("统一身份认证服务暂不可用，请稍后重试") from None
        return self._discovery

    async def login(self, username: str, password: str) -> Credentials:
        endpoint = (await self.discovery())["token_endpoint"]
        async with self._client() as client:
            try:
                token = await client.fetch_token(endpoint, grant_type="password", username=username, password=password)
            except OAuthError:
                raise LoginRefused("用户名或密码错误") from None
            except httpx.HTTPError:
                raise LoginRefused("统一身份认证服务暂不可用，请稍后重试") from None
        return Credentials(principal_from_token(token["access_token"]), token["access_token"])

    async def authorization_url(self, redirect_uri: str) -> tuple[str, str, str]:
        """(url to send the browser to, state, PKCE code verifier) — state and verifier stay in the session."""
        verifier = secrets.token_urlsafe(48)
        endpoint = (await self.discovery())["authorization_endpoint"]
        async with self._client(redirect_uri=redirect_uri, scope="openid", code_challenge_method="S256") as client:
            url, state = client.create_authorization_url(endpoint, code_verifier=verifier)
        return url, state, verifier

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> Credentials:
        endpoint = (await self.discovery())["token_endpoint"]
        async with self._client(redirect_uri=redirect_uri, code_challenge_method="S256") as client:
            try:
                token = await client.fetch_token(endpoint, code=code, code_verifier=verifier)
            except (OAuthError, httpx.HTTPError):
                raise LoginRefused("统一身份认证未通过，请重新登录") from None
        return Credentials(principal_from_token(token["access_token"]), token["access_token"])
