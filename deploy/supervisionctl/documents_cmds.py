"""`supervisionctl badge …` — badges and documents for operators and print rooms (issue #5).

    supervisionctl badge verify PAYLOAD [--public-key FILE|PEM|base64url] [--holder-name 张三] [--json]
    supervisionctl badge public-key agencies/A [--out key.pem] [--json]
    supervisionctl badge print-badges --input badges.jsonl | --registry [--district 08] [--institution …]
                                      [--year 2026] [--title …] [--volume 1000] --out DIR
    supervisionctl badge blank-form on-site|records-review|feedback [--format pdf|docx] --out FILE
    supervisionctl badge get documents/<id> --out FILE

`verify` is offline when --public-key is given (the key from `public-key`, e.g. distributed to
inspectors); otherwise it fetches the issuer's public key from the documents service once and verifies
locally. `print-badges` streams the badges to the documents service (RenderPrintSheet), shows a progress
bar and downloads each A4 volume (fronts and backs on alternating pages for long-edge duplex).

Exit codes: 0 success / payload valid · 1 payload invalid or the service answered with an error ·
2 bad usage (file missing, malformed input) · 3 the documents or registry service is unreachable.
Targets: BJSV_DOCUMENTS_TARGET / BJSV_REGISTRY_TARGET or BJSV_BIND_HOST:BJSV_<SERVICE>_PORT (common.config).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bjsv.documents.v1 import documents_pb2 as pb
from bjsv.documents.v1 import documents_pb2_grpc
from common.clients import sync_channel
from common.config import Settings
from services.documents.domain import signing
from supervisionctl.rpc import JsonOpt, OrgOpt, RoleOpt
from supervisionctl.token import cli_token

app = typer.Typer(help="督导员证卡（附件2）：验证二维码、批量打印、空白表格与文档下载", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _channel(service: str, org: str = "", role: str = "operator") -> grpc.Channel:
    return sync_channel(Settings().target(service), token=cli_token(org, role))  # 64 MiB messages either way


def _rpc_failed(e: grpc.RpcError, service: str) -> typer.Exit:
    if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        err.print(f"[red]无法连接 {service} 服务 {Settings().target(service)}[/red]：{e.details()}")
        return typer.Exit(3)
    err.print(f"[red]错误：[/red]{e.details()}（{e.code().name}）")
    return typer.Exit(1)


def _load_key_argument(value: str) -> Any:
    path = Path(value)
    text = path.read_text() if path.exists() else value
    try:
        return signing.load_public_key(text)
    except ValueError as e:
        err.print(f"[red]不是有效的 Ed25519 公钥[/red]：{e}")
        raise typer.Exit(2) from None


@app.command("verify")
def verify(
    payload: Annotated[str, typer.Argument(help="扫描证卡二维码得到的文字（BJSV1.…）")],
    public_key: Annotated[
        str,
        typer.Option(
            "--public-key",
            help="发证单位公钥：PEM 文件、PEM 文本或 base64url 原始公钥；不填则向文档服务获取",
        ),
    ] = "",
    holder_name: Annotated[str, typer.Option("--holder-name", help="同时核对持证人姓名")] = "",
    as_json: JsonOpt = False,
) -> None:
    """验证证卡二维码的签名（Ed25519；加 --public-key 可离线验证）。"""
    try:
        fields = signing.parse_payload(payload)
    except (ValueError, UnicodeDecodeError):
        fields = None
    key = None
    if public_key:
        key = _load_key_argument(public_key)
    elif fields is not None:
        with _channel("documents") as ch:
            try:
                resp = documents_pb2_grpc.DocumentsServiceStub(ch).GetIssuerPublicKey(
                    pb.GetIssuerPublicKeyRequest(issuer=fields.issuer), timeout=10
                )
                key = signing.load_public_key(resp.public_key)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.NOT_FOUND:
                    raise _rpc_failed(e, "documents") from None
    result = signing.verify_payload(payload, lambda issuer, kid: key, holder_name=holder_name)
    f = result.fields
    out = {
        "valid": result.valid,
        "reason": result.reason,
        "code": f.code if f else "",
        "issuer": f.issuer if f else "",
        "validity": f.validity if f else "",
        "key_id": f.key_id if f else "",
    }
    if as_json:
        print(json.dumps(out, ensure_ascii=False))
    elif result.valid:
        console.print(
            f"[green]有效[/green] 证卡编号 {f.code}  有效期限 {f.validity}  颁证机构 {f.issuer}（密钥 {f.key_id}）"
        )
    else:
        console.print(f"[red]无效[/red] {result.reason}" + (f"  证卡编号 {f.code}" if f else ""))
    raise typer.Exit(0 if result.valid else 1)


@app.command("public-key")
def public_key_cmd(
    issuer: Annotated[str, typer.Argument(help="发证单位，如 agencies/A")],
    out: Annotated[Path | None, typer.Option("--out", help="公钥 PEM 的保存位置")] = None,
    as_json: JsonOpt = False,
) -> None:
    """输出（或保存）发证单位的证卡签名公钥，供离线验证使用。"""
    with _channel("documents") as ch:
        try:
            resp = documents_pb2_grpc.DocumentsServiceStub(ch).GetIssuerPublicKey(
                pb.GetIssuerPublicKeyRequest(issuer=issuer), timeout=10
            )
        except grpc.RpcError as e:
            raise _rpc_failed(e, "documents") from None
    if out:
        out.write_text(resp.public_key_pem)
    if as_json:
        print(
            json.dumps(
                {
                    "issuer": resp.issuer,
                    "key_id": resp.key_id,
                    "public_key_pem": resp.public_key_pem,
                    "public_key": signing.b64url(resp.public_key),
                },
                ensure_ascii=False,
            )
        )
    elif not out:
        print(resp.public_key_pem, end="")
    else:
        console.print(f"{resp.issuer} 公钥 {resp.key_id} 已保存到 {out}")


def _read_file(base: Path, value: str | None) -> bytes:
    if not value:
        return b""
    if value.startswith("base64:"):
        return base64.b64decode(value[7:])
    path = (base / value) if not Path(value).is_absolute() else Path(value)
    return path.read_bytes()


def badges_from_jsonl(path: Path) -> Iterator[pb.BadgeData]:
    """One JSON object per line: code, holder_name, valid_from, valid_until (or validity_text), issuer,
    issuer_name, and optional photo / issuer_seal / issuer_logo (file path relative to the file, or
    "base64:…"). Images repeated across lines are read once."""
    cache: dict[str, bytes] = {}

    def image(value: str | None) -> bytes:
        if not value:
            return b""
        if value not in cache:
            cache.clear() if len(cache) > 64 else None
            cache[value] = _read_file(path.parent, value)
        return cache[value]

    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                yield pb.BadgeData(
                    code=row["code"],
                    holder_name=row["holder_name"],
                    valid_from=row.get("valid_from", ""),
                    valid_until=row.get("valid_until", ""),
                    validity_text=row.get("validity_text", ""),
                    issuer=row["issuer"],
                    issuer_name=row["issuer_name"],
                    level=row.get("level", ""),
                    photo=image(row.get("photo")),
                    issuer_seal=image(row.get("issuer_seal")),
                    issuer_logo=image(row.get("issuer_logo")),
                )
            except (KeyError, ValueError, OSError) as e:
                err.print(f"[red]{path} 第 {lineno} 行[/red]：{type(e).__name__}：{e}")
                raise typer.Exit(2) from None


def badges_from_registry(
    *, district: str, institution: str, year: int, org: str, role: str
) -> tuple[int, Iterator[pb.BadgeData]]:
    """Active badges from the registry (ListBadges, then GetBadge view=FULL one at a time: the photos
    are never all in memory)."""
    from bjsv.registry.v1 import registry_pb2 as rpb
    from bjsv.registry.v1 import registry_pb2_grpc

    ch = _channel("registry", org, role)
    stub = registry_pb2_grpc.RegistryServiceStub(ch)
    request = rpb.ListBadgesRequest(
        page_size=500, district_code=district, institution=institution, year=year, status=rpb.BADGE_STATUS_ACTIVE
    )
    try:
        first = stub.ListBadges(request, timeout=30)
    except grpc.RpcError as e:
        ch.close()
        raise _rpc_failed(e, "registry") from None

    def generate() -> Iterator[pb.BadgeData]:
        page = first
        try:
            while True:
                for basic in page.badges:
                    b = stub.GetBadge(rpb.GetBadgeRequest(name=basic.name, view=rpb.VIEW_FULL), timeout=30).badge
                    yield pb.BadgeData(
                        code=b.code,
                        holder_name=b.holder_name,
                        valid_from=b.valid_from,
                        valid_until=b.valid_until,
                        validity_text=b.validity_text,
                        issuer=b.issuer,
                        issuer_name=b.issuer_name,
                        category=pb.SUPERVISOR_CATEGORY_INTERNAL
                        if b.type == rpb.SUPERVISOR_TYPE_INTERNAL
                        else pb.SUPERVISOR_CATEGORY_EXTERNAL,
                        photo=b.photo,
                        issuer_seal=b.issuer_seal,
                        issuer_logo=b.issuer_logo,
                    )
                if not page.next_page_token:
                    return
                page = stub.ListBadges(
                    rpb.ListBadgesRequest(
                        page_size=500,
                        page_token=page.next_page_token,
                        district_code=district,
                        institution=institution,
                        year=year,
                        status=rpb.BADGE_STATUS_ACTIVE,
                    ),
                    timeout=30,
                )
        finally:
            ch.close()

    return first.total_size, generate()


def download(stub, name: str, dest: Path) -> int:
    size = 0
    with dest.open("wb") as fh:
        for item in stub.GetDocument(pb.GetDocumentRequest(name=name), timeout=300):
            if not item.HasField("document"):
                fh.write(item.chunk)
                size += len(item.chunk)
    return size


@app.command("print-badges")
def print_badges(
    out: Annotated[Path, typer.Option("--out", help="A4 印制文件的输出文件夹")],
    input_file: Annotated[Path | None, typer.Option("--input", help="证卡数据文件（每行一个 JSON 对象）")] = None,
    registry: Annotated[bool, typer.Option("--registry", help="从登记服务读取有效证卡")] = False,
    district: Annotated[str, typer.Option("--district", help="按区筛选：区代码，A 为市级")] = "",
    institution: Annotated[str, typer.Option("--institution", help="按评价机构筛选：institutions/<编号>")] = "",
    year: Annotated[int, typer.Option("--year", help="按核发年份筛选")] = 0,
    title: Annotated[str, typer.Option("--title", help="页边标题")] = "技能人才评价质量督导员证卡",
    subject: Annotated[str, typer.Option("--subject", help="印制文件归档的主题")] = "",
    volume: Annotated[int, typer.Option("--volume", help="每个 PDF 分册的证卡数（0 = 服务默认）")] = 0,
    org: OrgOpt = "agencies/A",
    role: RoleOpt = "city-centre",  # the city centre's print room (第十一条: it issues the external badges)
    as_json: JsonOpt = False,
) -> None:
    """批量打印证卡：按 A4 长边双面拼版，带裁切线和页位索引。"""
    if bool(input_file) == registry:
        err.print("[red]请指定一个数据来源：--input 文件 或 --registry[/red]")
        raise typer.Exit(2)
    if input_file:
        if not input_file.exists():
            err.print(f"[red]文件不存在：{input_file}[/red]")
            raise typer.Exit(2)
        with input_file.open(encoding="utf-8") as fh:
            total = sum(1 for line in fh if line.strip())
        source = badges_from_jsonl(input_file)
    else:
        total, source = badges_from_registry(district=district, institution=institution, year=year, org=org, role=role)
    out.mkdir(parents=True, exist_ok=True)
    options = pb.PrintSheetOptions(
        title=title, max_badges_per_volume=volume, subject=subject or f"print-runs/{out.resolve().name}"
    )

    def requests() -> Iterator[pb.RenderPrintSheetRequest]:
        yield pb.RenderPrintSheetRequest(options=options)
        for b in source:
            yield pb.RenderPrintSheetRequest(badge=b)

    files: list[dict[str, Any]] = []
    with _channel("documents", org, role) as ch:
        stub = documents_pb2_grpc.DocumentsServiceStub(ch)
        columns = (
            TextColumn("[bold]证卡排版"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("印张 {task.fields[sheets]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=err, disable=as_json) as progress:
            task = progress.add_task("print", total=total or None, sheets=0)
            try:
                for resp in stub.RenderPrintSheet(requests(), timeout=24 * 3600):
                    if resp.HasField("progress"):
                        progress.update(task, completed=resp.progress.badges_done, sheets=resp.progress.sheets_done)
                    else:
                        doc = resp.document
                        dest = out / doc.file_name
                        download(stub, doc.name, dest)
                        files.append(
                            {
                                "document": doc.name,
                                "file": str(dest),
                                "pages": doc.page_count,
                                "sha256": doc.sha256,
                                "size_bytes": doc.size_bytes,
                            }
                        )
            except grpc.RpcError as e:
                raise _rpc_failed(e, "documents") from None
    if as_json:
        print(json.dumps({"badges": total, "volumes": files}, ensure_ascii=False, indent=2))
    else:
        for f in files:
            console.print(f"{f['file']}  {f['pages']} 页  sha256 {f['sha256'][:16]}…")
        console.print("双面打印：长边翻转；正反面交替，每张 A4 排 4 枚证卡。")


_BLANK = {
    "on-site": pb.DOCUMENT_KIND_ON_SITE_RECORD,
    "records-review": pb.DOCUMENT_KIND_RECORDS_REVIEW_RECORD,
    "feedback": pb.DOCUMENT_KIND_FEEDBACK,
}


@app.command("blank-form")
def blank_form(
    kind: Annotated[str, typer.Argument(help="on-site（现场督导）| records-review（资料审查）| feedback（附件4）")],
    out: Annotated[Path, typer.Option("--out", help="输出文件")],
    fmt: Annotated[str, typer.Option("--format", help="pdf | docx")] = "pdf",
) -> None:
    """空白附件3（现场督导 / 资料审查）或附件4 表格。"""
    if kind not in _BLANK or fmt not in ("pdf", "docx"):
        err.print("[red]类型应为 on-site、records-review 或 feedback；格式应为 pdf 或 docx[/red]")
        raise typer.Exit(2)
    with _channel("documents") as ch:
        try:
            resp = documents_pb2_grpc.DocumentsServiceStub(ch).RenderBlankForm(
                pb.RenderBlankFormRequest(
                    kind=_BLANK[kind],
                    format=pb.DOCUMENT_FORMAT_DOCX if fmt == "docx" else pb.DOCUMENT_FORMAT_PDF,
                    include_content=True,
                ),
                timeout=60,
            )
        except grpc.RpcError as e:
            raise _rpc_failed(e, "documents") from None
    out.write_bytes(resp.content)
    console.print(f"{out}  sha256 {resp.document.sha256[:16]}…  ({resp.document.name})")


@app.command("get")
def get_document(
    name: Annotated[str, typer.Argument(help="文档名称 documents/<id>")],
    out: Annotated[Path, typer.Option("--out", help="输出文件")],
) -> None:
    """下载已存档的文档（分块传输）。"""
    with _channel("documents") as ch:
        try:
            size = download(documents_pb2_grpc.DocumentsServiceStub(ch), name, out)
        except grpc.RpcError as e:
            raise _rpc_failed(e, "documents") from None
    console.print(f"已保存 {out}（{size} 字节）")
