"""`supervisionctl notify …` — notifications, deadlines and deliveries for operators (issue #6).

    supervisionctl notify preview --at 2026-10-01 [--recipient agencies/08] [--json]   # dry run, sends nothing
    supervisionctl notify inbox agencies/08 [--unread] [--json]
    supervisionctl notify contact agencies/08 haidian@example.cn [--name 海淀区职业技能鉴定管理机构]
    supervisionctl notify dead-letters [--json]
    supervisionctl notify retry deadLetters/12
    supervisionctl notify alerts [--json]                 # e.g. CALENDAR_NOT_COVERED (D5)
    supervisionctl notify clock [--at 2026-10-01T09:00] [--offset SECONDS] [--reset]

`preview --at DATE` lists every notification the service would send from its clock's now up to the end
of that day (Asia/Shanghai), plus open operator alerts; it changes nothing.
Exit codes: 0 success · 1 the service answered with an error · 2 bad usage · 3 notify is unreachable.
The target is BJSV_NOTIFY_TARGET or BJSV_BIND_HOST:BJSV_NOTIFY_PORT (common.config).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.table import Table

from bjsv.notify.v1 import notify_pb2 as npb
from bjsv.notify.v1 import notify_pb2_grpc
from common.clock import SHANGHAI
from supervisionctl import rpc
from supervisionctl.rpc import JsonOpt, OrgOpt, RoleOpt

app = typer.Typer(help="通知：期限提醒预览、收件箱、联系邮箱、死信重试、运维告警", no_args_is_help=True)
console = Console()
T = TypeVar("T")

KIND_LABELS = {
    npb.NOTIFICATION_KIND_DISPATCH_CREATED: "委派通知",
    npb.NOTIFICATION_KIND_SUBMISSION_RECEIVED: "收件确认",
    npb.NOTIFICATION_KIND_DEADLINE_REMINDER: "截止提醒",
    npb.NOTIFICATION_KIND_DEADLINE_DUE_TODAY: "今日截止",
    npb.NOTIFICATION_KIND_DEADLINE_OVERDUE: "逾期通知",
    npb.NOTIFICATION_KIND_IMMEDIATE_REPORT: "严重违规报告",
    npb.NOTIFICATION_KIND_PERIOD_REPORT: "半月报送",
    npb.NOTIFICATION_KIND_APPOINTMENT_EXPIRING: "聘期届满",
    npb.NOTIFICATION_KIND_AGE_LIMIT_IN_TERM: "年龄条件",
    npb.NOTIFICATION_KIND_BADGE_FILED: "证卡备案",
    npb.NOTIFICATION_KIND_PENALTY_DECISION_PENDING: "处理待决定",
}


def _call(fn: Callable[..., T], request: Any, org: str = "", role: str = "operator") -> T:
    return rpc.call("notify", notify_pb2_grpc.NotifyServiceStub, fn, request, org=org, role=role)


def _local(ts: Timestamp) -> str:
    if not ts.seconds and not ts.nanos:
        return "-"
    return ts.ToDatetime(tzinfo=dt.UTC).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def parse_at(text: str) -> dt.datetime:
    """ "2026-10-01" → the end of that day in Asia/Shanghai; an ISO instant as given (local if naive)."""
    try:
        if len(text) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(23, 59, 59), tzinfo=SHANGHAI)
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        console.print(f"[red]--at {text!r}[/red]：日期格式应为 YYYY-MM-DD 或 ISO 日期时间")
        raise typer.Exit(2) from None
    return at if at.tzinfo else at.replace(tzinfo=SHANGHAI)


def _ts(at: dt.datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(at.astimezone(dt.UTC))
    return t


@app.command()
def preview(
    at: Annotated[str, typer.Option("--at", help="截止日期 YYYY-MM-DD（含当日全天）或 ISO 日期时间")],
    recipient: Annotated[str, typer.Option(help="只看该收件方，如 agencies/08")] = "",
    as_json: JsonOpt = False,
    org: OrgOpt = "",
    role: RoleOpt = "operator",
) -> None:
    """预览（不发送）：截至指定日期将发出的提醒、逾期通知等，以及未解决的运维告警。"""
    resp = _call(lambda s: s.Preview, npb.PreviewRequest(at_time=_ts(parse_at(at)), recipient=recipient), org, role)
    if as_json:
        rpc.dump(resp)
        return
    table = Table(title=f"将发送的通知（{_local(resp.from_time)} 至 {parse_at(at):%Y-%m-%d %H:%M}）")
    for col in ("发送时间", "收件方", "类型", "标题"):
        table.add_column(col)
    for item in resp.items:
        table.add_row(_local(item.fire_time), item.recipient, KIND_LABELS.get(item.kind, str(item.kind)), item.title)
    console.print(table)
    console.print(f"共 {len(resp.items)} 条（预览，未发送）")
    for a in resp.alerts:
        console.print(f"[yellow]告警 {a.code}[/yellow] {a.message}")


@app.command()
def inbox(
    recipient: Annotated[str, typer.Argument(help="收件方，如 agencies/08、institutions/1100012001")],
    unread: Annotated[bool, typer.Option("--unread", help="只看未读")] = False,
    page_size: Annotated[int, typer.Option(help="显示条数")] = 50,
    as_json: JsonOpt = False,
    org: OrgOpt = "",
    role: RoleOpt = "operator",
) -> None:
    """收件箱：某机构收到的通知（最新在前）。"""
    resp = _call(
        lambda s: s.ListNotifications,
        npb.ListNotificationsRequest(recipient=recipient, unread_only=unread, page_size=page_size),
        org,
        role,
    )
    if as_json:
        rpc.dump(resp)
        return
    table = Table(title=f"{recipient} 收件箱（共 {resp.total_size} 条，未读 {resp.unread_count} 条）")
    for col in ("时间", "类型", "标题", "依据", "已读"):
        table.add_column(col)
    for n in resp.notifications:
        table.add_row(
            _local(n.create_time),
            KIND_LABELS.get(n.kind, str(n.kind)),
            n.title,
            "、".join(n.articles),
            "是" if n.read_time.seconds else "否",
        )
    console.print(table)


@app.command()
def contact(
    recipient: Annotated[str, typer.Argument(help="收件方，如 agencies/08")],
    email: Annotated[str, typer.Argument(help='通知邮箱（填 "" 则删除）')],
    name: Annotated[str, typer.Option("--name", help="中文显示名称")] = "",
    org: OrgOpt = "",
    role: RoleOpt = "operator",
) -> None:
    """设置机构的通知邮箱。"""
    resp = _call(
        lambda s: s.SetContact,
        npb.SetContactRequest(contact=npb.Contact(recipient=recipient, email=email, display_name=name)),
        org,
        role,
    )
    console.print(f"{resp.contact.recipient}: {resp.contact.email or '（无邮箱）'} {resp.contact.display_name}")


@app.command("dead-letters")
def dead_letters(as_json: JsonOpt = False, org: OrgOpt = "", role: RoleOpt = "operator") -> None:
    """死信：重试用尽仍未投递成功的通知及原因。"""
    resp = _call(lambda s: s.ListDeadLetters, npb.ListDeadLettersRequest(page_size=500), org, role)
    if as_json:
        rpc.dump(resp)
        return
    table = Table(title=f"死信 {len(resp.dead_letters)} 条")
    for col in ("名称", "收件方", "渠道", "次数", "原因"):
        table.add_column(col)
    for d in resp.dead_letters:
        table.add_row(
            d.name, d.recipient, npb.Channel.Name(d.channel).removeprefix("CHANNEL_").lower(), str(d.attempts), d.reason
        )
    console.print(table)


@app.command()
def retry(
    name: Annotated[str, typer.Argument(help="死信名称 deadLetters/<id>")], org: OrgOpt = "", role: RoleOpt = "operator"
) -> None:
    """重新投递一条死信（同一幂等键，不会重复发送已成功的投递）。"""
    _call(lambda s: s.RetryDeadLetter, npb.RetryDeadLetterRequest(name=name), org, role)
    console.print(f"{name}: 已重新排队")


@app.command()
def alerts(as_json: JsonOpt = False, org: OrgOpt = "", role: RoleOpt = "operator") -> None:
    """运维告警，如某年度法定工作日历未配置（CALENDAR_NOT_COVERED）。"""
    resp = _call(lambda s: s.ListOperatorAlerts, npb.ListOperatorAlertsRequest(page_size=500), org, role)
    if as_json:
        rpc.dump(resp)
        return
    for a in resp.alerts:
        console.print(f"{_local(a.create_time)} [yellow]{a.code}[/yellow] {a.subject} {a.message}")
    if not resp.alerts:
        console.print("无告警")


@app.command()
def clock(
    at: Annotated[str, typer.Option("--at", help="将服务时钟固定在该时刻（ISO 日期时间）")] = "",
    offset: Annotated[int, typer.Option("--offset", help="在实际时间基础上偏移的秒数（SECONDS）")] = 0,
    reset: Annotated[bool, typer.Option("--reset", help="恢复为实际北京时间（Asia/Shanghai）")] = False,
    as_json: JsonOpt = False,
    org: OrgOpt = "",
    role: RoleOpt = "operator",
) -> None:
    """查看或设置通知服务时钟（测试、演练用）。"""
    if at or offset or reset:
        req = npb.SetClockRequest(reset=reset, offset_seconds=offset)
        if at:
            req.fixed_time.CopyFrom(
                _ts(parse_at(at) if len(at) > 10 else dt.datetime.fromisoformat(at).replace(tzinfo=SHANGHAI))
            )
        resp = _call(lambda s: s.SetClock, req, org, role)
    else:
        resp = _call(lambda s: s.GetClock, npb.GetClockRequest(), org, role)
    if as_json:
        rpc.dump(resp)
        return
    console.print(f"{_local(resp.now)} ({resp.mode})")
