"""The bearer token a supervisionctl command presents (issue #12, item 6: operators authenticate too)."""

from __future__ import annotations

import json
import os
import urllib.error

import typer
from rich.console import Console

from common.auth.config import AuthSettings
from common.auth.credentials import admin_token

EXIT_REFUSED, EXIT_CONFIG, EXIT_UNAVAILABLE = 1, 2, 3
OPERATOR_ORG = "operators/admin"
err = Console(stderr=True)


def cli_token(org: str, role: str) -> str:
    """The bearer token a command presents: BJSV_TOKEN if set, else one minted with the local admin credential."""
    if os.environ.get("BJSV_TOKEN"):
        return os.environ["BJSV_TOKEN"]
    settings = AuthSettings()
    require_embedded(settings)
    try:
        return admin_token(settings, org or OPERATOR_ORG, [role or "operator"])
    except FileNotFoundError:
        err.print(
            f"[red]找不到本地管理员凭据 {settings.identity_path / 'admin.json'}[/red]：先执行 supervisionctl up，"
            "或设置 BJSV_TOKEN 为本人的访问令牌"
        )
        raise typer.Exit(EXIT_CONFIG) from None
    except urllib.error.HTTPError as e:
        err.print(f"[red]身份认证服务拒绝签发令牌：[/red]{oauth_error(e)}")
        raise typer.Exit(EXIT_REFUSED) from None
    except OSError as e:
        err.print(f"[red]身份认证服务无法连接（{settings.issuer}）：[/red]{e}")
        raise typer.Exit(EXIT_UNAVAILABLE) from None


def oauth_error(e: urllib.error.HTTPError) -> str:
    try:
        return json.loads(e.read()).get("error_description", str(e))
    except ValueError:
        return str(e)


def require_embedded(settings: AuthSettings) -> None:
    if not settings.embedded:
        err.print(
            f"[red]已配置外部身份认证服务（BJSV_OIDC_ISSUER={settings.oidc_issuer}）[/red]："
            "令牌与账户由该服务签发和管理；请向其申请令牌并设置 BJSV_TOKEN"
        )
        raise typer.Exit(EXIT_CONFIG)
