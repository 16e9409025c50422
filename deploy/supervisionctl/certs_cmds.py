"""`supervisionctl certs`: the stack's local CA and component certificates (common.pki).

`certs rotate` re-issues certificates in place; running services load them on the next TLS handshake
(grpc dynamic credentials), so nothing restarts and no call is lost; the embedded nats-server is told to
reload its configuration (SIGHUP). Old certificates stay valid until they expire, so connections made
before the rotation carry on.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from common import pki
from common.config import Settings
from supervisionctl.natsd import tls_config
from supervisionctl.rpc import JsonOpt
from supervisionctl.stack import StackConfig, running_pids

app = typer.Typer(help="证书：本地证书颁发机构（CA）与各组件证书（传输加密与双向认证）", no_args_is_help=True)
auth_app = typer.Typer(help="认证：客户端连接本平台所需的信息", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

ComponentsArg = Annotated[list[str] | None, typer.Argument(help="组件名称（不填则为全部组件）")]


def _folder(settings: Settings):
    if not settings.tls_enabled:
        err.print("[red]错误：[/red]BJSV_TLS=off（明文开发模式），不使用证书。")
        raise typer.Exit(2)
    return pki.root(settings)


@app.command("init")
def init(
    new_ca: Annotated[bool, typer.Option("--new-ca", help="废弃现有 CA，重新生成全部证书（需重启全部服务）")] = False,
    nats_config: Annotated[
        Path | None, typer.Option("--nats-config", help="另写出单独运行的 nats-server 的配置文件（如 compose）")
    ] = None,
) -> None:
    """生成本地 CA 和缺少的组件证书（首次 `supervisionctl up` 会自动执行）。"""
    settings = Settings()
    folder = _folder(settings)
    if new_ca and folder.exists():
        shutil.rmtree(folder)
    issued = pki.ensure(folder, hostnames=settings.hostnames())
    console.print(f"证书目录：{folder}；新签发：{'、'.join(issued) if issued else '无（均已存在）'}")
    if nats_config is not None:
        # The embedded server's TLS and per-component users (natsd.tls_config), for a nats-server started
        # elsewhere with the same PKI folder mounted at the same path (deploy/compose).
        settings_json = {"jetstream": {"store_dir": "/data"}, "http_port": 8222, **tls_config(folder)}
        nats_config.write_text(json.dumps(settings_json, indent=2))  # nats-server's config format accepts JSON
        console.print(f"NATS 配置：{nats_config}")


@app.command("rotate")
def rotate(components: ComponentsArg = None) -> None:
    """轮换组件证书（同一 CA 重新签发）：运行中的服务在下一次握手时加载新证书，无需停机。"""
    settings = Settings()
    folder = _folder(settings)
    if not pki.cert_path(folder, "ca").exists():
        err.print(f"[red]错误：[/red]{folder} 中没有 CA。处理：执行 `supervisionctl certs init`。")
        raise typer.Exit(2)
    unknown = [c for c in components or () if not pki.cert_path(folder, c).exists()]
    if unknown:
        err.print(f"[red]错误：[/red]没有这些组件的证书：{'、'.join(unknown)}")
        raise typer.Exit(2)
    done = pki.rotate(folder, hostnames=settings.hostnames(), components=components or pki.COMPONENTS)
    console.print(f"已轮换：{'、'.join(done)}")
    nats_pid = running_pids(StackConfig(data_dir=settings.data_dir.resolve())).get("nats")
    if nats_pid and "nats" in done:  # nats-server re-reads its TLS files on SIGHUP (config reload), no restart
        os.kill(nats_pid, signal.SIGHUP)
        console.print("内置 NATS 已重新加载证书。")


@app.command("issue")
def issue(name: Annotated[str, typer.Argument(help="客户端名称（证书 CN），如对接系统的名称")]) -> None:
    """为对接系统签发客户端证书（每个调用方都须出示本 CA 签发的证书）。"""
    settings = Settings()
    folder = _folder(settings)
    if not name.replace("-", "").isalnum():
        err.print("[red]错误：[/red]名称只能包含字母、数字和连字符。")
        raise typer.Exit(2)
    path = pki.issue(folder, name, hostnames=settings.hostnames())
    console.print(f"证书：{path}\n私钥：{pki.key_path(folder, name)}\nCA：{pki.ca_path(settings)}")


@app.command("list")
def list_certs(as_json: JsonOpt = False) -> None:
    """各证书的到期时间。"""
    folder = _folder(Settings())
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "name": p.stem,
            "path": str(p),
            "not_after": pki.not_after(p).isoformat(),
            "days_left": (pki.not_after(p) - now).days,
        }
        for p in sorted(folder.glob("*.crt"))
    ]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"证书（{folder}）")
    for col in ("名称", "到期时间（UTC）", "剩余天数"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["not_after"], str(r["days_left"]))
    console.print(table)


@auth_app.command("ca-path")
def ca_path() -> None:
    """打印 CA 证书路径：客户端用它校验服务端证书。"""
    print(pki.ca_path(Settings()))
