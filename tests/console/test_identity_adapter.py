"""The identity adapter: login by the password grant at the session's embedded issuer, and what a call
carries for a user — the bearer token and nothing else; claims are read for display only."""

from __future__ import annotations

import jwt
import pytest

from common.auth import issuer_tls
from services.console.config import ConsoleSettings
from services.console.identity import (
    Credentials,
    LoginRefused,
    OAuthIssuer,
    Principal,
    call_metadata,
    principal_from_token,
)
from services.identity.config import IdentitySettings
from services.identity.issuer import Issuer
from supervisionctl.natsd import free_port


def test_a_token_user_is_forwarded_as_bearer_and_declares_nothing_else() -> None:
    token = jwt.encode({"sub": "u-42", "name": "张科长", "org": "agencies/08", "roles": ["district-agency"]},
                       "issuer-key-not-known-to-the-console", algorithm="HS256")  # fmt: skip
    creds = Credentials(principal_from_token(token), token)
    assert call_metadata(creds) == (("authorization", f"Bearer {token}"),)
    assert creds.principal == Principal("u-42", "张科长", "agencies/08", ("district-agency",))


def test_space_separated_roles_claim_is_read_too() -> None:
    token = jwt.encode({"sub": "s", "roles": "supervisor auditor"}, "k" * 32, algorithm="HS256")
    p = principal_from_token(token)
    assert p.roles == ("supervisor", "auditor") and p.has("auditor") and p.name == "s"


async def test_login_is_the_password_grant_at_the_issuer_the_services_verify_against() -> None:
    issuer = Issuer(IdentitySettings())
    with issuer.accounts.change() as accounts:
        accounts.pop("adapter.li", None)
    issuer.create_account("adapter.li", "person", "agencies/08", ["district-agency"], "Adapter-2026-mima")
    settings = ConsoleSettings()
    assert settings.issuer.startswith("https://")  # verified with the stack's CA, as services/console does
    login = OAuthIssuer(settings.issuer, "bjsv-console", issuer_tls.trust(settings) or True)
    creds = await login.login("adapter.li", "Adapter-2026-mima")
    assert creds.principal == Principal("adapter.li", "adapter.li", "agencies/08", ("district-agency",))
    assert call_metadata(creds) == (("authorization", f"Bearer {creds.access_token}"),)
    with pytest.raises(LoginRefused, match="用户名或密码错误"):
        await login.login("adapter.li", "wrong")


async def test_an_unreachable_issuer_is_a_chinese_message_not_a_crash() -> None:
    issuer = OAuthIssuer(f"http://127.0.0.1:{free_port()}", "bjsv-console")
    with pytest.raises(LoginRefused, match="统一身份认证服务暂不可用"):
        await issuer.login("haidian", "secret")
