"""`supervisionctl audit`: check every service's audit hash chain and search it (common.audit).

Reads each service's own database directly (the SQLite files under the data folder, or the service's
PostgreSQL schema), so a check works even while a service is down; compares the chains with the heads the
services published on NATS when NATS answers.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from common import audit, pki
from common.config import SERVICES, Settings
from common.db import Database
from supervisionctl.rpc import JsonOpt

app = typer.Typer(
    help="审计：防篡改审计记录（哈希链）的校验与查询（第二十二条、第二十六条、第二十七条）", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)
ROOT = Path(__file__).resolve().parent.parent.parent


def _databases(settings: Settings, services: list[str]) -> dict[str, Database | None]:
    """Each service's database, or None when it has none yet (never started, or an unknown name)."""
    out: dict[str, Database | None] = {}
    for name in services:
        if not settings.database_url and not (settings.data_dir / f"{name}.db").exists():
            out[name] = None
            continue
        db = Database(settings, service=name, metadata=audit.metadata, migrations=ROOT / "services" / name)
        out[name] = db if db.read_sync(lambda s: sa.inspect(s.connection()).has_table("audit_head")) else None
    return out


async def _heads(settings: Settings, services: list[str]) -> dict[str, list[tuple[int, str]]] | str:
    """Published heads per service, or why they could not be read."""
    import nats

    async def quiet(_e: Exception) -> None:  # the failure is reported once, below
        return None

    try:
        connect = nats.connect(
            servers=settings.nats_servers(),
            tls=pki.ssl_context(settings),
            connect_timeout=2,
            allow_reconnect=False,
            # nats-py retries every server of the first connect too (max_reconnect_attempts, 2 s apart, even
            # without allow_reconnect): a NATS that is down would cost the whole 4 s below on every check.
            max_reconnect_attempts=1,
            reconnect_time_wait=0,
            error_cb=quiet,
        )
        nc = await asyncio.wait_for(connect, timeout=4)
    except Exception as e:  # noqa: BLE001 - reported; the chains are still checked
        return f"{type(e).__name__}: {e}"
    try:
        return {name: await audit.witnessed_heads(nc, name) for name in services}
    except Exception as e:  # noqa: BLE001 - e.g. no BJSV_AUDIT stream yet
        return f"{type(e).__name__}: {e}"
    finally:
        await nc.close()


ServiceOpt = Annotated[list[str] | None, typer.Option("--service", help="只检查/查询该服务（可重复）")]


@app.command("verify")
def verify(service: ServiceOpt = None, as_json: JsonOpt = False) -> None:
    """校验各服务的审计哈希链：指出第一条被修改、删除、重排或插入的记录（有问题时退出码 1）。"""
    settings = Settings()
    names = service or list(SERVICES)
    heads = asyncio.run(_heads(settings, names))
    report = []
    for name, db in _databases(settings, names).items():
        if db is None:
            report.append({"service": name, "status": "absent", "entries": 0})
            continue
        witnessed = heads.get(name, []) if isinstance(heads, dict) else []
        count, broken = db.read_sync(audit.verify, witnessed)
        db.dispose()
        row = {"service": name, "status": "broken" if broken else "ok", "entries": count, "witnessed": len(witnessed)}
        report.append({**row, **({"break": asdict(broken)} if broken else {})})
    if as_json:
        print(json.dumps({"chains": report, "nats": heads if isinstance(heads, str) else "ok"}, ensure_ascii=False))
    else:
        if isinstance(heads, str):
            err.print(f"[yellow]警告：[/yellow]无法读取 NATS 上发布的链头（{heads}），只校验了数据库内的链。")
        for r in report:
            if r["status"] == "absent":
                console.print(f"{r['service']}：无审计记录（数据库未建立）")
            elif r["status"] == "ok":
                console.print(f"{r['service']}：完整，共 {r['entries']} 条，与 {r['witnessed']} 个已发布链头一致")
            else:
                b = r["break"]
                console.print(f"[red]{r['service']}：第 {b['seq']} 条记录不可信[/red]：{b['text']}（{b['reason']}）")
    if any(r["status"] == "broken" for r in report):
        raise typer.Exit(1)


@app.command("search")
def search(
    subject: Annotated[str, typer.Option("--subject", help="操作人（令牌中的 subject）")] = "",
    resource: Annotated[str, typer.Option("--resource", help="资源名称或前缀，如 supervisors/42")] = "",
    since: Annotated[str, typer.Option("--since", help="起始时间（ISO 8601，UTC），含")] = "",
    until: Annotated[str, typer.Option("--until", help="截止时间（ISO 8601，UTC），不含")] = "",
    limit: Annotated[int, typer.Option("--limit", help="每个服务最多返回条数")] = 100,
    service: ServiceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """按操作人、资源和时间查询审计记录（最新的在前）。"""
    settings = Settings()
    found: list[dict] = []
    for name, db in _databases(settings, service or list(SERVICES)).items():
        if db is None:
            continue
        rows = db.read_sync(audit.search, subject=subject, resource=resource, since=since, until=until, limit=limit)
        db.dispose()
        found += [{"service": name, **asdict(e)} for e in rows]
    found.sort(key=lambda r: r["time"], reverse=True)
    if as_json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"审计记录（{len(found)} 条）")
    for col in ("时间（UTC）", "服务", "序号", "操作人", "单位", "角色", "方法", "资源", "结果", "追踪号"):
        table.add_column(col)
    for r in found:
        method = r["method"].rsplit("/", 1)[-1]
        table.add_row(
            r["time"], r["service"], str(r["seq"]), r["subject"], r["organisation"], r["role"], method,
            r["resource"], r["outcome"], r["trace_id"],
        )  # fmt: skip
    console.print(table)
