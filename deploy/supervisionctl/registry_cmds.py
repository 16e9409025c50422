"""`supervisionctl registry …` — operator commands of the registry (mounted by the lead's main CLI).

    supervisionctl registry import ROSTER.xlsx            # validate every row; import only if all pass
    supervisionctl registry import ROSTER.csv --partial   # import the good rows, report the bad ones
    supervisionctl registry import ROSTER.csv --dry-run   # validate only
    supervisionctl registry template roster.xlsx          # an empty roster with the expected columns

Exit codes: 0 done · 1 rows rejected (nothing imported unless --partial) · 2 bad file or arguments ·
3 the registry service cannot be reached.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated

import grpc
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from common import clients

app = typer.Typer(help="登记：督导员、聘任与证卡（京职技鉴发〔2022〕11号 第五条至第十七条）")
console = Console(stderr=True)

CHUNK = 500  # rows per validation call (progress granularity)
EXIT_REJECTED, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3


def read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV (UTF-8 with or without BOM, or GBK as Excel writes it) or XLSX (first sheet).

    Row numbers are the spreadsheet's (header = row 1), so the report points at the line the operator sees."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        raw = path.read_bytes()
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise ValueError("CSV 文件编码无法识别（应为 UTF-8 或 GBK）")
        reader = csv.reader(io.StringIO(text))
        rows = list(reader)
    elif suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        ws = wb.worksheets[0]
        rows = [[_cell_text(c) for c in r] for r in ws.iter_rows(values_only=True)]
        wb.close()
    else:
        raise ValueError(f"不支持的文件类型“{path.suffix}”，应为 .csv 或 .xlsx")
    if not rows:
        raise ValueError("文件为空")
    header = [h.strip() for h in rows[0]]
    out = []
    for i, r in enumerate(rows[1:], start=2):
        if not any((c or "").strip() for c in r):
            continue  # blank line
        out.append((i, {h: (r[j] if j < len(r) else "") for j, h in enumerate(header) if h}))
    return out


def _cell_text(v) -> str:
    import datetime as dt

    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _stub(target: str):
    from bjsv.registry.v1 import registry_pb2_grpc

    return registry_pb2_grpc.RegistryServiceStub(clients.sync_channel(target))


def _target(target: str | None) -> str:
    if target:
        return target
    from common.config import Settings

    return Settings().target("registry")


def _report(errors, as_json: bool) -> None:
    if as_json:
        return
    table = Table(title=f"名单校验未通过：{len({e.row_number for e in errors})} 行，{len(errors)} 处错误")
    table.add_column("行", justify="right")
    table.add_column("列")
    table.add_column("原因")
    for e in errors:
        table.add_row(str(e.row_number), e.column, e.description)
    Console().print(table)


@app.command("import")
def import_roster(
    file: Annotated[Path, typer.Argument(help="督导员名单 .csv 或 .xlsx（首行为模板列名）")],
    partial: Annotated[bool, typer.Option("--partial", help="仅导入校验通过的行（其他行有错误时也导入）")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只校验，不导入")] = False,
    target: Annotated[str | None, typer.Option(help="登记服务地址 host:port（默认取 BJSV_* 配置）")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="以 JSON 输出结果")] = False,
) -> None:
    """导入督导员名单：先逐行校验并列出每行错误（行、列、原因）；除非全部通过（或 --partial），不导入任何记录。"""
    from bjsv.registry.v1 import registry_pb2 as pb

    try:
        rows = read_rows(file)
    except (OSError, ValueError) as e:
        console.print(f"[red]错误：[/red]无法读取 {file}：{e}")
        raise typer.Exit(EXIT_USAGE) from None
    stub = _stub(_target(target))
    msgs = [pb.RosterRow(row_number=n, cells=cells) for n, cells in rows]
    errors: list = []
    imported: list[str] = []
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, disable=as_json or len(msgs) < CHUNK) as progress:  # fmt: skip
            task = progress.add_task("校验", total=len(msgs))
            for i in range(0, len(msgs), CHUNK):
                chunk = msgs[i : i + CHUNK]
                r = stub.ImportRoster(pb.ImportRosterRequest(rows=chunk, validate_only=True), timeout=120)
                errors += r.errors
                progress.advance(task, len(chunk))
            if not dry_run and (partial or not errors):
                task = progress.add_task("导入", total=len(msgs))
                if partial:  # independent rows: import chunk by chunk
                    for i in range(0, len(msgs), CHUNK):
                        chunk = msgs[i : i + CHUNK]
                        r = stub.ImportRoster(pb.ImportRosterRequest(rows=chunk, partial=True), timeout=300)
                        imported += r.supervisors
                        progress.advance(task, len(chunk))
                else:  # all or nothing: one call, one transaction (re-validates everything, incl. duplicates)
                    r = stub.ImportRoster(pb.ImportRosterRequest(rows=msgs), timeout=600)
                    errors = list(r.errors)
                    imported += r.supervisors
                    progress.advance(task, len(msgs))
    except grpc.RpcError as e:
        if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            console.print(f"[red]错误：[/red]无法连接登记服务 {_target(target)}：{e.details()}")
            raise typer.Exit(EXIT_UNAVAILABLE) from None
        console.print(f"[red]错误：[/red]{e.details()}（{e.code().name}）")
        raise typer.Exit(EXIT_USAGE) from None
    if as_json:
        print(json.dumps({
            "rows": len(msgs), "imported": len(imported), "supervisors": imported,
            "errors": [{"row": e.row_number, "column": e.column, "reason": e.reason, "description": e.description}
                       for e in errors],
        }, ensure_ascii=False, indent=2))  # fmt: skip
    if errors:
        _report(errors, as_json)
    if not as_json:
        if dry_run:
            console.print(f"校验完成：{len(msgs)} 行，{'全部通过' if not errors else '有错误'}（未导入）")
        elif errors and not partial:
            console.print("[red]未导入任何记录[/red]：请修正以上错误后重试（或使用 --partial 仅导入通过的行）")
        else:
            console.print(f"已导入 {len(imported)} / {len(msgs)} 行")
    if errors and not (partial and imported):
        raise typer.Exit(EXIT_REJECTED)


@app.command("template")
def template(file: Annotated[Path, typer.Argument(help="空白名单的保存位置（.csv 或 .xlsx）")]) -> None:
    """生成空白督导员名单模板（含全部列名和一行示例）。"""
    from services.registry.domain import roster

    example = {roster.COL_NAME: "张三", roster.COL_GENDER: "男", roster.COL_BIRTH: "1970-01-01",
               roster.COL_ID: "", roster.COL_TYPE: "外督员", roster.COL_LEVEL: "区级", roster.COL_DISTRICT: "海淀区",
               roster.COL_INSTITUTION: "", roster.COL_PHONE: "", roster.COL_ATTESTED_BY: "海淀区鉴定管理机构",
               roster.COL_ATTESTED_DATE: "2026-01-05", roster.COL_TRAINING: "是",
               roster.COL_TRAINING_BY: "海淀区鉴定管理机构", roster.COL_TRAINING_DATE: "2026-02-01",
               **{c: "是" for c in roster.COL_ART9.values()}}  # fmt: skip
    if file.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        wb = Workbook()
        ws = wb.active
        ws.title = "督导员名单"
        ws.append(list(roster.COLUMNS))
        ws.append([example.get(c, "") for c in roster.COLUMNS])
        wb.save(file)
    else:
        with file.open("w", newline="", encoding="utf-8-sig") as fh:
            w = csv.writer(fh)
            w.writerow(roster.COLUMNS)
            w.writerow([example.get(c, "") for c in roster.COLUMNS])
    console.print(f"已生成名单模板：{file}")


@app.command("seed")
def seed(demo: Annotated[bool, typer.Option("--demo", help="另加示例评价机构、督导员、聘任和证卡")] = False):
    """建立或升级登记数据库（写入附件1 表3 的市鉴定管理中心和 17 个区鉴定管理机构）；--demo 另加示例数据。"""
    from common.db import StartupError

    try:
        summary = seed_demo() if demo else migrate_only()
    except StartupError as e:
        console.print(f"[red]错误：[/red]{e}")
        raise typer.Exit(EXIT_USAGE) from None
    console.print("已写入市鉴定管理中心和 17 个区鉴定管理机构（附件1 表3）。")
    if "badges" in summary:
        codes = summary["badges"]
        console.print(f"示例数据：{summary['supervisors']} 名督导员已聘任，{len(codes)} 张证卡"
                      f"（{'、'.join(codes[:3])} …）")  # fmt: skip
    elif "skipped" in summary:
        console.print("已有督导员，未重复写入示例数据。")
    return summary


def _open_db(settings=None):
    from common.db import Database
    from services.registry.__main__ import load_models
    from services.registry.config import RegistrySettings
    from services.registry.storage import models

    load_models()
    return Database(settings or RegistrySettings(), service="registry", metadata=models.Base.metadata,
                    migrations=Path(models.__file__).parent / "migrations")  # fmt: skip


def migrate_only(settings=None) -> dict:
    db = _open_db(settings)
    try:
        db.migrate()
        return {"migrated": True}
    finally:
        db.dispose()


def seed_demo(settings=None, *, supervisors_per_scope: int = 5) -> dict:
    """Demo data for `supervisionctl seed --demo` (the lead's command calls this).

    Writes straight into the registry database (migrating it first): two institutions (Y and S) with
    internal supervisors, city-level and 海淀/朝阳 district supervisors, all appointed today (decision ids
    "seed:demo", not rules-checked) and each with an issued badge. Idempotent: does nothing if supervisors
    already exist. Returns a summary."""
    import datetime as dt

    import sqlalchemy as sa

    from common.clock import Clock
    from services.registry.storage import models
    from services.registry.storage import repository as repo
    from services.registry.storage.seed import ScopeSpec, seed_population

    db = _open_db(settings)
    try:
        db.migrate()
        if db.read_sync(lambda s: s.execute(sa.select(sa.func.count()).select_from(models.Supervisor)).scalar_one()):
            return {"skipped": "registry already has supervisors"}
        today: dt.date = Clock().today()
        n = supervisors_per_scope
        specs = [ScopeSpec(district="A", count=n), ScopeSpec(district="08", count=n), ScopeSpec(district="05", count=n),
                 ScopeSpec(institution_number="1100012001", institution_letter="Y", count=n),
                 ScopeSpec(institution_number="1100013002", institution_letter="S", count=n)]  # fmt: skip

        def run(s):
            appts = seed_population(s, specs=specs, today=today, reason="demo")
            codes = [repo.issue_badge(s, appointment_id=a, issue_date=today).code for a in appts]
            return {"supervisors": len(appts), "badges": codes}

        return db.write_sync(run)
    finally:
        db.dispose()


if __name__ == "__main__":
    sys.exit(app())
