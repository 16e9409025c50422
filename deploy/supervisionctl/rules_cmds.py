"""`supervisionctl rules …` — the rule set in force and the decision log (D15, D16).

    supervisionctl rules show [--date YYYY-MM-DD] [--json]   the rule set in force on a date
    supervisionctl rules reload [--json]                     load changed rule files now (validated first)
    supervisionctl rules decision decisions/<id> [--json]    one logged decision with its findings
    supervisionctl rules replay decisions/<id> [--json]      re-evaluate with the same rule-set version

Exit codes: 0 ok · 1 the service refused (message printed) · 3 the rules service is unreachable ·
4 a replay did not reproduce the logged decision.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bjsv.rules.v1 import rules_pb2 as rpb
from bjsv.rules.v1 import rules_pb2_grpc
from supervisionctl import rpc
from supervisionctl.rpc import JsonOpt

app = typer.Typer(help="规则：现行规则集、热加载、决定记录查询与复核（可追溯，D15）", no_args_is_help=True)
console = Console()
OUTCOMES = {rpb.OUTCOME_ALLOW: "准予", rpb.OUTCOME_DENY: "不予", rpb.OUTCOME_ADVISE: "提示"}
SEVERITY = {rpb.SEVERITY_BLOCKING: "否决", rpb.SEVERITY_ADVISORY: "建议"}


def _call(method, request):
    return rpc.call("rules", rules_pb2_grpc.RulesServiceStub, method, request)


def _findings_table(decision: rpb.Decision) -> Table:
    table = Table(title=f"{decision.name}：{OUTCOMES.get(decision.outcome, '-')}（{decision.subject}）")
    for col in ("规则", "依据", "说明"):
        table.add_column(col)
    for f in decision.findings:
        table.add_row(f.rule_id, f.article, f.message)
    return table


@app.command("show")
def show(
    date: Annotated[str, typer.Option("--date", help="日期 YYYY-MM-DD（默认当日）")] = "", as_json: JsonOpt = False
) -> None:
    """显示某日现行的规则集（规则、依据条款、参数）。"""
    resp = _call(lambda s: s.GetRuleSet, rpb.GetRuleSetRequest(as_of_date=date))
    if as_json:
        rpc.dump(resp)
        return
    rs = resp.rule_set
    console.print(f"{rs.title}  {rs.id}  版本 {rs.version[:12]}  自 {rs.effective_from} 起施行")
    table = Table()
    for col in ("规则", "依据", "性质", "提示内容"):
        table.add_column(col)
    for r in rs.rules:
        table.add_row(r.id, r.article, SEVERITY.get(r.severity, "-"), r.message)
    console.print(table)


@app.command("reload")
def reload(as_json: JsonOpt = False) -> None:
    """立即加载已修改的规则文件（先校验；有错误时继续使用原版本）。"""
    resp = _call(lambda s: s.ReloadRuleSet, rpb.ReloadRuleSetRequest())
    if as_json:
        rpc.dump(resp)
        return
    versions = "，".join(f"{r.id} {r.version[:12]}" for r in resp.rule_sets)
    console.print(("已加载新版本：" if resp.changed else "规则文件未变化，继续使用：") + versions)


@app.command("decision")
def decision(name: Annotated[str, typer.Argument(help="决定 decisions/<id>")], as_json: JsonOpt = False) -> None:
    """查看一项已记录的决定：结果、规则集版本、每条发现及其依据。"""
    resp = _call(lambda s: s.GetDecision, rpb.GetDecisionRequest(name=name))
    if as_json:
        rpc.dump(resp)
        return
    d = resp.decision
    console.print(_findings_table(d))
    version = f"{d.ruleset_id} 版本 {d.ruleset_version[:12]}（{d.ruleset_effective_date} 起）"
    console.print(f"规则集 {version}，基准日 {d.as_of_date}")


@app.command("replay")
def replay(name: Annotated[str, typer.Argument(help="决定 decisions/<id>")], as_json: JsonOpt = False) -> None:
    """用同一规则集版本重新评估一项决定，核对结果是否一致。"""
    resp = _call(lambda s: s.ReplayDecision, rpb.ReplayDecisionRequest(name=name))
    if as_json:
        rpc.dump(resp)
    else:
        console.print(_findings_table(resp.replayed))
        console.print("复核结果一致。" if resp.identical else "[red]复核结果与记录不一致！[/red]")
    if not resp.identical:
        raise typer.Exit(4)
