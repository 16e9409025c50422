"""Operations: the outbox (backlog, parked rows), consumer lag, and stopping/starting one service.

`supervisionctl outbox [list|retry|discard]` reads each service's own database directly (like `migrate`),
so it works while a service is down. `status` and `doctor` use `backlog_report` / `consumer_report` and
fail over the documented thresholds (README, Operating it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from common import events, metrics
from common.config import SERVICES, Settings
from common.db import Database
from supervisionctl.rpc import JsonOpt

MAX_LAG = 1000  # events a durable consumer may be behind before status/doctor fail
MAX_OUTBOX_AGE = 60.0  # seconds the oldest unpublished outbox row may wait before status/doctor fail

console = Console()
err = Console(stderr=True)
app = typer.Typer(help="事务发件箱：积压、已搁置的事件（列出、重发、丢弃）", no_args_is_help=True)

ServiceArg = Annotated[str, typer.Argument(help="服务名称：registry | rules | documents | notify")]


def _database(settings: Settings, name: str) -> Database | None:
    """The service's database with the platform tables only; None if an embedded one was never created."""
    if not settings.database_url and not (settings.data_dir / f"{name}.db").exists():
        return None
    metadata = sa.MetaData()
    events.platform_tables(metadata)
    return Database(settings, service=name, metadata=metadata, migrations=Path())


def _databases(settings: Settings, names: list[str]) -> Iterator[tuple[str, Database]]:
    for name in names:
        db = _database(settings, name)
        if db is None:
            continue
        try:
            yield name, db
        finally:
            db.dispose()


def backlog_report(settings: Settings) -> dict[str, dict]:
    """Per service: unpublished outbox rows, the oldest one's age (s) and parked rows."""
    out: dict[str, dict] = {}
    for name, db in _databases(settings, list(SERVICES)):
        try:
            count, oldest, parked = db.read_sync(events.backlog)
        except sa.exc.SQLAlchemyError as e:  # not migrated yet, or the database is down
            out[name] = {"error": str(e.orig if hasattr(e, "orig") else e)[:200]}
            continue
        out[name] = {"backlog": count, "oldest_age": round(metrics.age_seconds(oldest), 1), "parked": parked}
    return out


async def consumer_report(js) -> list[dict]:
    """Every durable consumer of every stream: events not yet delivered (lag) and not yet acknowledged."""
    out = []
    for stream in await js.streams_info():
        out.extend(
            {
                "stream": stream.config.name,
                "durable": c.name,
                "lag": c.num_pending or 0,
                "ack_pending": c.num_ack_pending or 0,
            }
            for c in await js.consumers_info(stream.config.name)
        )
    return out


def problems(backlog: dict[str, dict], consumers: list[dict], *, max_lag: int, max_age: float) -> list[str]:
    """What is over the thresholds, in the operator's words."""
    found = []
    for name, b in backlog.items():
        if "error" in b:
            found.append(f"{name} 发件箱无法读取：{b['error']}")
            continue
        if b["parked"]:
            found.append(f"{name} 有 {b['parked']} 条事件已搁置（supervisionctl outbox list {name}）")
        if b["oldest_age"] > max_age:
            found.append(f"{name} 发件箱积压 {b['backlog']} 条，最早的已等待 {b['oldest_age']:.0f} 秒")
    found.extend(
        f"消费者 {c['durable']}（{c['stream']}）落后 {c['lag']} 条事件" for c in consumers if c["lag"] > max_lag
    )
    return found


@app.command("list")
def list_parked(
    service: Annotated[str | None, typer.Argument(help="服务名称（不填则全部）")] = None, as_json: JsonOpt = False
) -> None:
    """列出已搁置的事件（无法发布的发件箱记录）及原因。"""
    rows = []
    for name, db in _databases(Settings(), [service] if service else list(SERVICES)):
        rows += [{"service": name, **r} for r in db.read_sync(events.list_parked)]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2, default=_iso))
        return
    if not rows:
        console.print("没有已搁置的事件。")
        return
    table = Table(title="已搁置的事件")
    for col in ("服务", "事件编号", "主题", "大小（字节）", "搁置时间", "原因"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["service"], r["event_id"], r["subject"], str(r["size"]), _iso(r["parked_at"]), r["reason"])
    console.print(table)


def _iso(value) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, dt.datetime) else str(value)


def _unpark(service: str, event_ids: list[str], *, retry: bool) -> None:
    if service not in SERVICES:
        err.print(f"[red]未知服务：{service}[/red]")
        raise typer.Exit(2)
    db = _database(Settings(), service)
    found = db.write_sync(events.unpark, event_ids, retry=retry) if db is not None else []
    if db is not None:
        db.dispose()
    for event_id in found:
        console.print(f"{event_id}：{'已放回发件箱，将重新发布' if retry else '已丢弃'}")
    missing = sorted(set(event_ids) - set(found))
    if missing:
        err.print(f"[red]未找到已搁置的事件：{'、'.join(missing)}[/red]")
        raise typer.Exit(1)


@app.command()
def retry(service: ServiceArg, event_ids: Annotated[list[str], typer.Argument(help="事件编号")]) -> None:
    """把已搁置的事件放回发件箱重新发布（先排除原因，例如调整 NATS 消息上限）。"""
    _unpark(service, event_ids, retry=True)


@app.command()
def discard(
    service: ServiceArg,
    event_ids: Annotated[list[str], typer.Argument(help="事件编号")],
    yes: Annotated[bool, typer.Option("--yes", help="确认丢弃（不可恢复）")] = False,
) -> None:
    """永久丢弃已搁置的事件（需 --yes 确认）。"""
    if not yes:
        err.print("[red]丢弃不可恢复：确认请加 --yes[/red]")
        raise typer.Exit(2)
    _unpark(service, event_ids, retry=False)


def nats_consumers(url: str) -> list[dict]:
    import nats

    async def collect() -> list[dict]:
        nc = await asyncio.wait_for(nats.connect(url, connect_timeout=2, max_reconnect_attempts=0), timeout=3)
        try:
            return await consumer_report(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(collect())
