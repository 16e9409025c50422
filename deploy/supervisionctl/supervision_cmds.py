"""`supervisionctl supervision …` — the supervision workflow for operators (issue #7).

    supervisionctl supervision today [--date YYYY-MM-DD] [--agency agencies/08] [--json]
    supervisionctl supervision plan-status plans/7 [--json]
    supervisionctl supervision overdue [--agency agencies/08] [--district 08] [--json]
    supervisionctl supervision sweep                      # escalate passed correction deadlines, close periods

Exit codes: 0 success · 1 the service answered with an error (message printed) · 3 the registry is
unreachable. The target is BJSV_REGISTRY_TARGET or BJSV_BIND_HOST:BJSV_REGISTRY_PORT (common.config).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from bjsv.registry.v1 import supervision_pb2 as spb
from bjsv.registry.v1 import supervision_pb2_grpc
from common.clock import SHANGHAI
from supervisionctl import rpc
from supervisionctl.rpc import JsonOpt, OrgOpt, RoleOpt

app = typer.Typer(
    help="督导工作：今日委派、评价计划督导情况、逾期未交的记录表和反馈表（第二十三条）", no_args_is_help=True
)
console = Console()
T = TypeVar("T")

FORM_LABELS = {spb.SUPERVISION_FORM_ON_SITE: "现场督导", spb.SUPERVISION_FORM_RECORDS_REVIEW: "事后认定资料督导"}


def _call(fn: Callable[..., T], request: Any, org: str, role: str) -> T:
    return rpc.call("registry", supervision_pb2_grpc.SupervisionServiceStub, fn, request, org=org, role=role)


def _members(d: spb.Dispatch) -> str:
    return "、".join(m.display_name for m in d.members if m.state == spb.MEMBER_STATE_ACTIVE)


@app.command("today")
def today(
    date: Annotated[str, typer.Option(help="日期 YYYY-MM-DD（默认为督导服务时钟的当日）")] = "",
    agency: Annotated[str, typer.Option(help="只看该委派单位，如 agencies/08")] = "",
    as_json: JsonOpt = False,
    org: OrgOpt = "agencies/A",
    role: RoleOpt = "operator",
) -> None:
    """列出某日（默认当日）实施督导的委派。"""
    if not date:  # the workflow clock's today (Asia/Shanghai), so a test clock is honoured
        clock = _call(lambda s: s.GetSupervisionClock, spb.GetSupervisionClockRequest(), org, role)
        date = clock.now.ToDatetime(tzinfo=SHANGHAI).date().isoformat()
    resp = _call(lambda s: s.ListDispatches, spb.ListDispatchesRequest(date=date, dispatching_agency=agency,
                                                                       page_size=500), org, role)  # fmt: skip
    if as_json:
        rpc.dump(resp)
        return
    table = Table(title=f"{date} 督导委派（{resp.total_size}）")
    for col in ("委派", "评价计划", "评价机构", "形式", "委派单位", "督导组", "记录表截止"):
        table.add_column(col)
    for d in resp.dispatches:
        table.add_row(d.name, d.plan_title, d.institution_name, FORM_LABELS.get(d.form, ""), d.dispatching_agency,
                      _members(d), d.record_due_date)  # fmt: skip
    console.print(table)


@app.command("plan-status")
def plan_status(plan: Annotated[str, typer.Argument(help="评价计划 plans/<id>")], as_json: JsonOpt = False,
                org: OrgOpt = "agencies/A", role: RoleOpt = "operator") -> None:  # fmt: skip
    """查看评价计划的督导情况：委派、督导记录表、反馈表及案件。"""
    resp = _call(lambda s: s.GetPlanStatus, spb.GetPlanStatusRequest(plan=plan), org, role)
    if as_json:
        rpc.dump(resp)
        return
    p = resp.plan
    console.print(
        f"[bold]{p.title}[/bold]  {p.institution_name}  {p.certification_mode_text}  认定人数 {p.candidate_count}"
    )
    table = Table(title="委派与提交情况（第二十三条）")
    for col in ("委派", "形式", "督导组", "记录表", "反馈表", "逾期"):
        table.add_column(col)
    for st in resp.dispatches:
        d = st.dispatch
        rec = (
            f"{st.record.name} v{st.record.version}" + (" 逾期提交" if st.record.late else "")
            if st.record.name
            else "未提交"
        )
        fb = f"{len(st.feedback)} 份" + (f"，缺 {len(st.feedback_missing)} 份" if st.feedback_missing else "")
        overdue = "、".join(x for x, on in (("记录表", st.record_overdue), ("反馈表", st.feedback_overdue)) if on)
        state = "" if d.state == spb.DISPATCH_STATE_ACTIVE else "（已取消）"
        table.add_row(d.name + state, FORM_LABELS.get(d.form, ""), _members(d), rec, fb, overdue or "—")
    console.print(table)
    for c in resp.cases:
        advice = f"{c.recommendation.sanction_text}（{c.recommendation.article}）"
        console.print(f"{c.name}  {c.subject_name}  {spb.CaseState.Name(c.state)}  建议：{advice}")


@app.command("overdue")
def overdue(
    agency: Annotated[str, typer.Option(help="只看该委派单位，如 agencies/08")] = "",
    district: Annotated[str, typer.Option(help="只看该区（区代码）")] = "",
    as_json: JsonOpt = False,
    org: OrgOpt = "agencies/A",
    role: RoleOpt = "operator",
) -> None:
    """列出逾期未提交的督导记录表（附件3）和外督员情况反馈表（附件4）（第二十三条，D5）。"""
    resp = _call(lambda s: s.ListOverdue, spb.ListOverdueRequest(dispatching_agency=agency, district=district), org,
                 role)  # fmt: skip
    if as_json:
        rpc.dump(resp)
        return
    table = Table(title=f"截至 {resp.as_of_date} 逾期未提交（{len(resp.items)}）")
    for col in ("类别", "委派", "评价计划", "督导员", "截止日期", "逾期工作日"):
        table.add_column(col)
    for i in resp.items:
        kind = "督导记录表" if i.kind == "record" else "外督员情况反馈表"
        table.add_row(kind, i.dispatch, i.plan_title, i.supervisor, i.due_date, str(i.overdue_working_days))
    console.print(table)


@app.command("sweep")
def sweep(as_json: JsonOpt = False, org: OrgOpt = "agencies/A", role: RoleOpt = "operator") -> None:
    """立即执行期限检查：整改期限已过的案件升级处理（D13），结束已届满的报送周期（D10）。"""
    resp = _call(lambda s: s.RunSweep, spb.RunSweepRequest(), org, role)
    if as_json:
        rpc.dump(resp)
        return
    escalated, closed = list(resp.escalated_cases) or "无", list(resp.closed_reports) or "无"
    console.print(f"{resp.as_of_date}: 升级案件 {escalated}；生成半月报告 {closed}")
