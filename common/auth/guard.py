"""What the server interceptor asks per RPC: who is calling (authenticate) and may they (authorise by policy).

Order (agreed for issue #12): trace id → authenticate (UNAUTHENTICATED) → role check from the policy
(PERMISSION_DENIED) → input bounds → handler (scope helper) → audit → metrics/log. gRPC health needs no
token; public RPCs (VerifyBadge at the exam door) need none either but are rate-limited per client address.
"""

from __future__ import annotations

import time

import grpc

from common import context
from common.auth import policy as policy_mod
from common.auth import scope
from common.auth.config import AuthSettings
from common.auth.tokens import AUTHORIZATION_KEY, Unauthenticated, Verifier
from common.context import Caller
from common.errors import DomainError, PermissionDenied, ResourceExhausted

# Liveness/readiness probes (kubelet, load balancers) carry no token.
EXEMPT_PREFIXES = ("/grpc.health.v1.Health/",)
PUBLIC_CALLER = Caller(org="", role="public", roles=("public",), subject="anonymous")
_MAX_CLIENTS = 10_000


class Unimplemented(DomainError):
    code = grpc.StatusCode.UNIMPLEMENTED
    default_message = "该接口仅在测试时钟模式下提供"


class RateLimiter:
    """Token bucket per client address (the port changes per connection, the address does not)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.buckets: dict[str, tuple[float, float]] = {}

    def admit(self, peer: str, now: float) -> bool:
        address = peer.rsplit(":", 1)[0]
        tokens, last = self.buckets.get(address, (self.rate, now))
        tokens = min(self.rate, tokens + (now - last) * self.rate)
        if len(self.buckets) > _MAX_CLIENTS:
            self.buckets.clear()
        if tokens < 1:
            self.buckets[address] = (tokens, now)
            return False
        self.buckets[address] = (tokens - 1, now)
        return True


class Guard:
    def __init__(self, settings: AuthSettings) -> None:
        self.policy = policy_mod.load(settings.authz_policy_file)
        self.verifier = Verifier(settings)
        self.limiter = RateLimiter(settings.authz_public_rate)
        self.test_clock = settings.test_clock

    async def admit(self, method: str, metadata: dict[str, str], peer: str) -> Caller | None:
        """The verified caller of `method` (binding its grant for the scope helper); None for exempt calls."""
        if method.startswith(EXEMPT_PREFIXES):
            return None
        grant = self.policy.grant(method)
        scope.bind(grant)
        if grant is not None and grant.public:
            if not self.limiter.admit(peer, time.monotonic()):
                raise ResourceExhausted("RATE_LIMITED", "查询过于频繁，请稍后再试", subject=method)
            return PUBLIC_CALLER
        caller = await self.verifier.verify(metadata.get(AUTHORIZATION_KEY, ""), time.time())
        # Bound as soon as it is verified: a refusal below is audited under who tried (common.audit), while a
        # call refused before this point has no caller and writes nothing.
        context.bind(context.current_trace_id(), caller)
        if grant is not None and grant.test_clock and not self.test_clock:
            raise Unimplemented("TEST_CLOCK_OFF")
        if method.startswith("/grpc.reflection."):
            return caller  # any authenticated caller may read the schema
        if grant is None:
            raise PermissionDenied("POLICY_MISSING", "授权策略未列明此接口，一律拒绝", metadata={"method": method})
        if not grant.scopes(caller.roles):
            raise PermissionDenied(
                "ROLE_NOT_AUTHORISED",
                f"角色（{'、'.join(caller.roles)}）无权调用此接口（{grant.article}）",
                metadata={"method": method, "roles": ",".join(caller.roles)},
            )
        return caller


__all__ = ["Guard", "Unauthenticated"]
