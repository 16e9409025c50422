"""Bearer tokens → a verified `Caller`, with PyJWT and the issuer's JWKS (no hand-written JOSE).

Signature (key by `kid` from the JWKS, cached; an unknown `kid` refetches the set, so a rotated key is
picked up at once), issuer, audience, expiry and not-before are all checked; anything else is
UNAUTHENTICATED with one generic Chinese message (the reason code says which check failed, for operators).
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict

import grpc
import jwt

from common.auth import issuer_tls
from common.auth.config import AuthSettings
from common.context import Caller
from common.errors import DomainError

AUTHORIZATION_KEY = "authorization"
LEEWAY_SECONDS = 30  # clock skew between the issuer and this host
_CACHE_SIZE = 4096
_KEY_LIFESPAN = 300.0  # seconds a JWKS key is used before it is looked up again (as PyJWKClient caches the set)


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED
    default_message = "身份未认证：请携带有效的访问令牌（Authorization: Bearer …）"


def discovery(settings: AuthSettings, timeout: float = 5.0) -> dict:
    """OpenID Connect discovery: the issuer's metadata (jwks_uri, token_endpoint, …), over verified HTTPS."""
    with issuer_tls.urlopen(settings, f"{settings.issuer}/.well-known/openid-configuration", timeout) as resp:
        return json.load(resp)


class Verifier:
    """Verifies bearer tokens for one issuer and audience; safe to share by every call of a process."""

    def __init__(self, settings: AuthSettings) -> None:
        self.issuer = settings.issuer
        self.audience = settings.oidc_audience
        self.org_claim = settings.oidc_org_claim
        self.roles_claim = settings.oidc_roles_claim
        self.settings = settings
        self._jwks_url = settings.oidc_jwks_url
        self._client: jwt.PyJWKClient | None = None
        # Verified token → (caller, exp): a token presented again skips the signature check until it expires.
        self._verified: OrderedDict[str, tuple[Caller, float]] = OrderedDict()
        # kid → (key, when looked up): the common case needs no thread hop to PyJWKClient's blocking lookup.
        self._keys: dict[str, tuple[jwt.PyJWK, float]] = {}
        # One JWKS lookup at a time: the calls that arrive together on a cold start (20 console users) wait for
        # the first one's answer instead of each sending discovery + JWKS to a busy issuer.
        self._lookup = asyncio.Lock()

    def _jwks(self) -> jwt.PyJWKClient:
        if self._client is None:
            url = self._jwks_url or discovery(self.settings)["jwks_uri"]
            # an unknown kid refetches the set at most every 5 s: a rotated key is seen at once, and a flood of
            # made-up kids cannot turn into a flood of requests to the issuer
            self._client = jwt.PyJWKClient(
                url,
                cache_keys=True,
                lifespan=300,
                timeout=5,
                cooldown_duration=5,
                ssl_context=issuer_tls.trust(self.settings),
            )
        return self._client

    async def verify(self, authorization: str, now: float) -> Caller:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("TOKEN_MISSING")
        token = token.strip()
        hit = self._verified.get(token)
        if hit is not None and now < hit[1]:
            return hit[0]
        try:
            kid = jwt.get_unverified_header(token).get("kid", "")
            key = await self._key(kid, now)
        except (jwt.PyJWKClientConnectionError, OSError):  # OSError: discovery failed (unreachable, TLS)
            raise Unauthenticated("JWKS_UNREACHABLE", "身份认证服务暂不可用，无法核验访问令牌") from None
        except (jwt.PyJWKClientError, jwt.DecodeError):
            raise Unauthenticated("TOKEN_KEY_UNKNOWN") from None
        caller, exp = self._decode(token, key)
        self._remember(token, caller, exp)
        return caller

    async def _key(self, kid: str, now: float) -> jwt.PyJWK:
        known = self._keys.get(kid)
        if known is not None and now - known[1] < _KEY_LIFESPAN:
            return known[0]
        async with self._lookup:
            known = self._keys.get(kid)  # looked up while this call waited
            if known is not None and now - known[1] < _KEY_LIFESPAN:
                return known[0]
            # The JWKS fetch (first use, unknown kid, refresh) is blocking I/O: keep it off the event loop.
            key = await asyncio.to_thread(lambda: self._jwks().get_signing_key(kid))
            if len(self._keys) > 64:  # made-up kids never get here (get_signing_key raised); rotations are rare
                self._keys.clear()
            self._keys[kid] = (key, now)
        return key

    def _decode(self, token: str, key: jwt.PyJWK) -> tuple[Caller, float]:
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("TOKEN_EXPIRED", "访问令牌已过期，请重新获取") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("TOKEN_NOT_YET_VALID") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("TOKEN_ISSUER") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("TOKEN_AUDIENCE") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("TOKEN_INVALID") from None
        roles = claims.get(self.roles_claim) or []
        if isinstance(roles, str):
            roles = roles.split()
        org = claims.get(self.org_claim) or ""
        if not isinstance(org, str) or not roles:
            raise Unauthenticated("TOKEN_CLAIMS", "访问令牌未载明所属单位或角色")
        caller = Caller(org=org, role=str(roles[0]), roles=tuple(str(r) for r in roles), subject=str(claims["sub"]))
        return caller, float(claims["exp"]) + LEEWAY_SECONDS

    def _remember(self, token: str, caller: Caller, exp: float) -> None:
        self._verified[token] = (caller, exp)
        if len(self._verified) > _CACHE_SIZE:
            self._verified.popitem(last=False)
