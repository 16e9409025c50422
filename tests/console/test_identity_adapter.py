"""The identity adapter: what a call carries for a user. With an issuer's token it is the bearer token and
nothing else; claims are read for display only. (Login against the issuer itself: PENDING identity #12.)"""

from __future__ import annotations

import jwt
import pytest

from services.console.identity import (
    Credentials,
    LoginRefused,
    OAuthIssuer,
    Principal,
    call_metadata,
    principal_from_token,
)
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


def test_development_accounts_declare_org_and_role_until_identity_lands() -> None:
    creds = Credentials(Principal("haidian", "张科长", "agencies/08", ("district-agency",)))
    assert call_metadata(creds) == (("x-bjsv-org", "agencies/08"), ("x-bjsv-role", "district-agency"))


async def test_an_unreachable_issuer_is_a_chinese_message_not_a_crash() -> None:
    issuer = OAuthIssuer(f"http://127.0.0.1:{free_port()}", "bjsv-console")
    with pytest.raises(LoginRefused, match="统一身份认证服务暂不可用"):
        await issuer.login("haidian", "secret")
