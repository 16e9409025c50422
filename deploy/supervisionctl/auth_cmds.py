"""`supervisionctl auth` — tokens and accounts of the embedded issuer (issue #12).

The operator authenticates with the local admin credential (`<identity dir>/admin.json`, 0600, written by
the issuer at its first start) or with their own token in BJSV_TOKEN. With an external issuer configured
(BJSV_OIDC_ISSUER), tokens and accounts are that issuer's business: these commands refuse.
"""

from __future__ import annotations

import json
import sys
import urllib.error
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from common.auth.config import AuthSettings
from common.auth.credentials import admin_token
from services.identity.config import IdentitySettings
from services.identity.domain.accounts import KINDS, ROLES, AccountError
from services.identity.issuer import Issuer
from supervisionctl.rpc import JsonOpt
from supervisionctl.token import EXIT_CONFIG, EXIT_REFUSED, EXIT_UNAVAILABLE, oauth_error, require_embedded

app = typer.Typer(help="身份认证：访问令牌、账户（人员与调用系统）、签名密钥轮换", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

RoleListOpt = Annotated[list[str], typer.Option("--role", help=f"角色（可重复）：{'、'.join(ROLES)}")]


def _issuer() -> Issuer:
    settings = IdentitySettings()
    require_embedded(settings)
    return Issuer(settings)


@app.command()
def token(
    org: Annotated[str, typer.Option("--org", help="所属单位，如 agencies/A、agencies/08、institutions/…")],
    role: RoleListOpt,
    subject: Annotated[str, typer.Option("--subject", help="令牌主体（人员或系统名称）")] = "",
) -> None:
    """签发一个访问令牌并输出（仅内置身份认证服务）。"""
    settings = AuthSettings()
    require_embedded(settings)
    try:
        print(admin_token(settings, org, role, subject))
    except FileNotFoundError:
        err.print(f"[red]找不到本地管理员凭据 {settings.identity_path / 'admin.json'}[/red]：先执行 supervisionctl up")
        raise typer.Exit(EXIT_CONFIG) from None
    except urllib.error.HTTPError as e:
        err.print(f"[red]拒绝签发：[/red]{oauth_error(e)}")
        raise typer.Exit(EXIT_REFUSED) from None
    except OSError as e:
        err.print(f"[red]身份认证服务无法连接（{settings.issuer}）：[/red]{e}；先执行 supervisionctl up")
        raise typer.Exit(EXIT_UNAVAILABLE) from None


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="账户名（人员登录名或调用系统的 client_id）")],
    org: Annotated[str, typer.Option("--org", help="所属单位")],
    role: RoleListOpt,
    kind: Annotated[str, typer.Option("--kind", help=f"账户类型：{'/'.join(KINDS)}")] = "person",
    secret_stdin: Annotated[bool, typer.Option("--secret-stdin", help="从标准输入读取密码/密钥，否则随机生成")] = False,
) -> None:
    """新建账户；随机生成的密码或密钥只显示这一次（存储的仅为 argon2id 摘要）。"""
    secret = sys.stdin.readline().strip() if secret_stdin else None
    try:
        account, secret = _issuer().create_account(name, kind, org, role, secret)
    except AccountError as e:
        err.print(f"[red]{e.description}[/red]")
        raise typer.Exit(EXIT_REFUSED) from None
    console.print(f"已建立账户 {account.name}（{account.kind}，{account.org}，{'、'.join(account.roles)}）")
    if not secret_stdin:
        console.print(f"{'密码' if kind == 'person' else '客户端密钥'}（仅显示一次）：{secret}", soft_wrap=True)


@app.command("list")
def list_accounts(as_json: JsonOpt = False) -> None:
    """列出全部账户（不含密码摘要）。"""
    accounts = [a.public() for a in _issuer().accounts.all()]
    if as_json:
        print(json.dumps(accounts, ensure_ascii=False, indent=2))
        return
    table = Table(title="账户")
    for col in ("账户", "类型", "单位", "角色", "状态"):
        table.add_column(col)
    for a in accounts:
        state = "已停用" if a["disabled"] else "启用"
        table.add_row(a["name"], a["kind"], a["org"], "、".join(a["roles"]), state)
    console.print(table)


def _set_disabled(name: str, disabled: bool) -> None:
    try:
        _issuer().set_disabled(name, disabled)
    except AccountError as e:
        err.print(f"[red]{e.description}[/red]")
        raise typer.Exit(EXIT_REFUSED) from None
    console.print(f"账户 {name} 已{'停用' if disabled else '启用'}")


@app.command()
def disable(name: Annotated[str, typer.Argument(help="账户名")]) -> None:
    """停用账户：此后不再为其签发令牌（已签发的令牌至过期为止）。"""
    _set_disabled(name, True)


@app.command()
def enable(name: Annotated[str, typer.Argument(help="账户名")]) -> None:
    """重新启用已停用的账户。"""
    _set_disabled(name, False)


@app.command("rotate-keys")
def rotate_keys() -> None:
    """立即启用新的签名密钥；旧密钥保留在 JWKS 中，直到其签发的令牌全部过期。"""
    kid = _issuer().rotate(force=True)
    console.print(f"新签名密钥：{kid}")
