"""Generate docs/conformance.md: 京职技鉴发〔2022〕11号 article by article and annex item by annex item, with
the rules, parameters and D-decisions of the rule set, the code that cites it and the tests that name it.

    .venv/bin/python deploy/conformance.py            # rewrite docs/conformance.md
    .venv/bin/python deploy/conformance.py --check    # exit 1 when docs/conformance.md is stale

What is generated: rules, parameters and interpretations come from the rule set's metadata
(services/rules/rulesets/); "code" lists the source files that cite the article (第N条 / 附件N in services/,
common/, deploy/); "tests" lists every test whose name cites it (art9, annex3, d5 …); for Annex 3 items, the
files holding the item's wording. What is written by hand: the one-line status and note per article below
(what the system does, the reason nothing is needed, or the gap still open). tests/platform/
test_conformance_doc.py fails when the document no longer matches the tree, so it cannot go stale.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.rules.domain.ruleset import RuleSet, load_catalog  # noqa: E402 — after the path set-up

OUT = ROOT / "docs" / "conformance.md"
CODE_DIRS = ("services", "common", "deploy")
NUMERALS = "一二三四五六七八九"

IMPLEMENTED, PARTIAL, GAP, NOT_NEEDED = "implemented", "partial", "gap", "nothing needed"

# (article number, what it says, status, note) — the hand-written part: keep the note to one sentence.
ARTICLES: list[tuple[int, str, str, str]] = [
    (1, "purpose and legal basis", NOT_NEEDED, "Preamble: states why the measures exist; nothing to enforce."),
    (
        2,
        "what 质量督导 is; who supervises whom",
        NOT_NEEDED,
        "Definition; the organisations are the registry's agencies and institutions.",
    ),
    (
        3,
        "applies within Beijing",
        IMPLEMENTED,
        "Only Beijing's issuer code 11 and the Table 3 districts are accepted (附件1).",
    ),
    (
        4,
        "principles of supervision",
        NOT_NEEDED,
        "Principles (objective, fair) carried by the concrete rules of 第十六条 and 第二十条.",
    ),
    (
        5,
        "external and internal supervisors",
        IMPLEMENTED,
        "Supervisor kind 外督员/内督员 on every supervisor, badge and decision.",
    ),
    (
        6,
        "city centre's duties",
        IMPLEMENTED,
        "City-level supervisors, 双随机 records-review sampling (SampleInspectionTargets), city-wide scope (D8).",
    ),
    (7, "district agencies' duties", IMPLEMENTED, "District-level supervisors dispatched only in their district (D8)."),
    (
        8,
        "institutions manage internal supervisors",
        IMPLEMENTED,
        "Institutions appoint and dispatch their own 内督员; 第二十七条 cases against them are refused.",
    ),
    (
        9,
        "eligibility conditions (一)–(五)",
        IMPLEMENTED,
        "Attestations (一)–(四) and health, age by gender on every date (D6).",
    ),
    (
        10,
        "appointment after passed training",
        PARTIAL,
        "A yes/no training flag is checked; dated training records are issue #14 item 3 (registry).",
    ),
    (
        11,
        "external: trained, coded by the city centre, badge",
        PARTIAL,
        "Codes and badges per 附件1/附件2; training records still a flag (issue #14 item 3).",
    ),
    (
        12,
        "internal: trained by institution, filed, own institution only",
        PARTIAL,
        "Own-institution scope enforced (D8, D9); filing kept; training records open (issue #14 item 3).",
    ),
    (
        13,
        "3-year term, automatic end, renewable",
        IMPLEMENTED,
        "Term of appointment.term_years (D4); expiry sweep; renewal.",
    ),
    (14, "dispatch (委派制) by agency or institution", IMPLEMENTED, "Who may dispatch whom is D8 (CheckTeam)."),
    (
        15,
        "external supervisors' powers",
        NOT_NEEDED,
        "Powers exercised in person; their results are recorded through Annex 3.",
    ),
    (
        16,
        "recusal; not an examiner in the same session",
        PARTIAL,
        "The rules apply every D9 ground; the registry holds no employers, affiliations or declarations "
        "and sends no staff yet (issue #14 item 1).",
    ),
    (
        17,
        "conduct: badge worn, truthful reports, secrecy",
        PARTIAL,
        "Badge-worn and integrity answers of Annex 4 are findings (EvaluateFeedback, D12); "
        "dress and secrecy are conduct outside the system.",
    ),
    (
        18,
        "institutions cooperate with supervisors",
        IMPLEMENTED,
        "Records-review item 12 = 否 opens a 第二十六条(一)(二) case (D14).",
    ),
    (
        19,
        "on-site and records-review supervision",
        IMPLEMENTED,
        "The two forms (SupervisionForm) and seeded 双随机 sampling of plans.",
    ),
    (
        20,
        "teams of ≥ 2, more above 200, scope",
        IMPLEMENTED,
        "CheckTeam/ProposeTeam: minimum and advice (D7), scope (D8).",
    ),
    (21, "on-site checks", IMPLEMENTED, "Annex 3 on-site checklist, 17 items; each 否 a finding (D11)."),
    (
        22,
        "records-review checks",
        PARTIAL,
        "Annex 3 records-review checklist, 16 items; (四) traceability is D15; "
        "(九) complaints and (十) major-problem reports are open (issue #14 item 9).",
    ),
    (
        23,
        "Annex 3/4 within 5 days",
        PARTIAL,
        "Due date D5 (ComputeDueDate, dispatch deadlines); plausible timing of records is open (issue #14 item 2).",
    ),
    (
        24,
        "half-month reports, immediate reports",
        IMPLEMENTED,
        "Half-month periods (D10) with district reports; (四)(五) trigger an immediate report (D13).",
    ),
    (
        25,
        "internal supervision follows the external procedure",
        IMPLEMENTED,
        "Internal dispatches use the same records and checks.",
    ),
    (
        26,
        "institution penalties and ladder",
        IMPLEMENTED,
        "EvaluatePenalty, 第二十六条 ladder (D13) in the law's words.",
    ),
    (
        27,
        "external supervisor sanctions",
        IMPLEMENTED,
        "EvaluatePenalty, 第二十七条 ladder ending 取消其外督员资格, 外督员 only (D13).",
    ),
    (
        28,
        "city centre interprets; local rules",
        IMPLEMENTED,
        "The rule set is the published interpretation (GetRuleSet); "
        "deployments override parameters (BJSV_RULES_POLICY_FILE).",
    ),
    (
        29,
        "in force on issue, replaces 〔2019〕8号",
        IMPLEMENTED,
        "Rule set in force from 2022-07-28; earlier dates are refused (D16).",
    ),
]

ANNEX3_ON_SITE = [
    "贯彻执行有关法律法规、规章和有关政策及其质量管理体系建设等情况",
    "执行考务、题库/卷库、人员管理、证书等管理办法情况",
    "理论知识考试、技能操作考核、综合评审等评价方式与备案方案内容一致",
    "评价时间、评价人数及评价内容与评价计划一致",
    "对认定对象进行资格条件复核抽查合格",
    "考评人员、考务人员、内督员的安排合理与评价计划一致",
    "考评人员、考务人员、内督员和工作人员配备数量及分工合理",
    "评价现场环境符合各项要求",
    "考核现场仪器设备、材料和工具符合本次评价需求",
    "考核现场张贴考场须",
    "考评人员、考务人员、内督员认真履行职责",
    "现场工作人员全程佩带相应工作证卡",
    "考试开始/结束时间与评价计划报备一致",
    "按要求核对考生的证件信息、做好考生签到与考场记录",
    "抽查考生信息与此次评价计划一致",
    "评价现场秩序有序",
    "评价过程进行录像、拍照有影像资料",
]
ANNEX3_RECORDS_REVIEW = [
    "贯彻执行有关法律法规、规章和有关政策及其质量管理体系建设等情况",
    "执行考务、题库/卷库、人员管理、证书等管理办法情况",
    "理论知识考试、技能操作考核、综合评审等评价方式与实施方案一致",
    "评价时间、评价人数及评价内容与评价计划一致",
    "认定机构负责人有履职情况记录",
    "考评人员、考务人员、内督员的安排合理与评价计划一致",
    "考评人员、考务人员、内督员认真履行职责",
    "复核抽查考生资格信息合格",
    "考试开始、结束时间与评价计划报备一致",
    "按要求核对考生的证件信息、做好考生签到与考场记录",
    "评价过程有影像资料",
    "被督导单位配合外督员人员工作",
    "评分过程符合规范要求",
    "有考评人员对实操评分签名确认",
    "评价机构对评价结果进行公示",
    "按规定保存考核结果及相关资料",
]

# (annex, item, what it says, status, note)
ANNEX_ITEMS: list[tuple[int, str, str, str, str]] = [
    (1, "表1", "external code: R · 11 · YY · serial", IMPLEMENTED, "Parsed, validated and allocated (D1–D3)."),
    (
        1,
        "表2",
        "category letter R",
        IMPLEMENTED,
        "Codes must be upper case; lower case is not canonical (NOT_CANONICAL).",
    ),
    (1, "表3", "district codes", IMPLEMENTED, "The 17 districts and A exactly as the table lists them."),
    (
        1,
        "表4",
        "internal code: Y|S · 11 · 4 digits · YY · serial",
        IMPLEMENTED,
        "Parsed, validated and allocated; explicit serials (D1).",
    ),
    (1, "表5", "category letters Y and S", IMPLEMENTED, "Letter must match the institution's type."),
    (2, "正面/反面", "badge faces, sizes and fonts", IMPLEMENTED, "Rendered by the documents service (80 × 110 mm)."),
    (2, "制作说明", "production on A4 laminate", IMPLEMENTED, "Print sheets with crop marks for duplex printing."),
    (
        3,
        "注1",
        "every item ticked; problems explained by item",
        IMPLEMENTED,
        "A 否 needs a remark and is a finding (EvaluateRecord, D11).",
    ),
    (3, "注2", "return within 5 working days", IMPLEMENTED, "D5: ComputeDueDate and dispatch deadlines."),
    (
        4,
        "表",
        "填报单位, 外督员姓名, 进场/离场时间, 工作反馈情况",
        PARTIAL,
        "Captured and rendered; signer, date and overflow pages open (issue #14 item 4).",
    ),
    (
        4,
        "注",
        "badge worn, duties performed, integrity kept",
        PARTIAL,
        "Structured answers evaluated (EvaluateFeedback, D12); not yet printed verbatim (issue #14 item 4).",
    ),
]


def chinese_number(n: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 20 → 二十, 29 → 二十九."""
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else NUMERALS[tens - 1] + "十")
    return head + (NUMERALS[ones - 1] if ones else "")


def article_name(n: int) -> str:
    return f"第{chinese_number(n)}条"


def _tests() -> dict[str, list[str]]:
    """Citation key ("art9", "annex3", "D5") → test names "`name` (path)"."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for name in re.findall(r"^\s*(?:async\s+)?def (test_\w+)", path.read_text(encoding="utf-8"), re.M):
            low = name.lower()
            keys = {f"art{n}" for n in re.findall(r"art(\d+)", low)}
            keys |= {f"annex{n}" for n in re.findall(r"annex(\d)", low)}
            keys |= {f"D{n}" for n in re.findall(r"(?:^|_)d(\d{1,2})(?=_|$)", low)}
            for key in keys:
                found[key].append(f"`{name}` ({rel})")
    return found


def _code_citations() -> dict[str, list[str]]:
    """ "第九条" / "附件3" → source files citing it, with counts."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for top in CODE_DIRS:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in (".py", ".yaml") or "rulesets" in path.parts or path.name == "conformance.py":
                continue
            text = path.read_text(encoding="utf-8")
            rel = path.relative_to(ROOT).as_posix()
            for cite in re.findall(r"第[一二三四五六七八九十]+条|附件\s?\d", text):
                counts[cite.replace(" ", "")][rel] += 1
    return {k: [f"{f} ({n})" for f, n in sorted(v.items())] for k, v in counts.items()}


def _holding(text: str) -> list[str]:
    """Source files that contain a checklist item's wording."""
    return [
        path.relative_to(ROOT).as_posix()
        for path in sorted((ROOT / "services").rglob("*.py"))
        if text in path.read_text(encoding="utf-8")
    ]


def _metadata(rs: RuleSet, cite: str) -> list[str]:
    lines = []
    rules = [f"`{r.id}`" for r in rs.rules if cite in r.article]
    params = [f"`{p.name}` ({p.interpretation})" if p.interpretation else f"`{p.name}`" for p in rs.parameters.values()
              if cite in p.article]  # fmt: skip
    decisions = [d.id for d in rs.interpretations if cite in d.article]
    if rules:
        lines.append(f"- Rules: {', '.join(rules)}")
    if params:
        lines.append(f"- Parameters: {', '.join(params)}")
    if decisions:
        lines.append(f"- Interpretations: {', '.join(decisions)}")
    return lines


def _evidence(lines: list[str], code: list[str], tests: list[str]) -> list[str]:
    if code:
        lines.append(f"- Code citing it: {', '.join(code)}")
    if tests:
        lines.append(f"- Tests ({len(tests)}): " + ", ".join(sorted(tests)))
    return lines


def render() -> str:
    rs = load_catalog(ROOT / "services" / "rules" / "rulesets").rulesets[0]
    tests, code = _tests(), _code_citations()
    out = [
        "# Conformance: 京职技鉴发〔2022〕11号, article by article",
        "",
        "Generated by `.venv/bin/python deploy/conformance.py` from the rule set's metadata, the code's citations",
        "and the test names; `tests/platform/test_conformance_doc.py` fails when it is stale. Statuses:",
        f"**{IMPLEMENTED}**, **{PARTIAL}** (what is missing is named), **{GAP}**, **{NOT_NEEDED}** (with the reason).",
        f"Rule set `{rs.id}` in force from {rs.effective_from}.",
        "",
        "| article | subject | status |",
        "|---|---|---|",
    ]
    out += [f"| {article_name(n)} | {what} | {status} |" for n, what, status, _ in ARTICLES]
    for n, what, status, note in ARTICLES:
        name = article_name(n)
        out += ["", f"## {name} — {what}", "", f"**{status}.** {note}", ""]
        out += _evidence(_metadata(rs, name), code.get(name, []), tests.get(f"art{n}", []))
    out += ["", "## Annexes", ""]
    for annex, item, what, status, note in ANNEX_ITEMS:
        out += [f"### 附件{annex} {item} — {what}", "", f"**{status}.** {note}", ""]
    for annex in range(1, 5):
        out += ["", f"### 附件{annex}: rules, code and tests", ""]
        out += _evidence(_metadata(rs, f"附件{annex}"), code.get(f"附件{annex}", []), tests.get(f"annex{annex}", []))
    opening = {(e["form"], e["item"]): e["triggers"] for e in rs.param("record.case_opening_items")}
    forms = ((1, "现场督导", ANNEX3_ON_SITE), (2, "事后认定资料督导", ANNEX3_RECORDS_REVIEW))
    for form, title, items in forms:
        out += ["", f"### 附件3 {title}: the {len(items)} items", ""]
        out += ["| item | wording | held verbatim in | a 否 gives |", "|---|---|---|---|"]
        for i, text in enumerate(items, 1):
            held = ", ".join(_holding(text)) or f"**{GAP}**: wording not found in services/"
            result = "a finding (EvaluateRecord, D11)"
            if (form, i) in opening:
                result += f" and a 第二十六条 case, triggers {opening[(form, i)]} (D14)"
            out.append(f"| {i} | {text} | {held} | {result} |")
    out += ["", "## Interpretation decisions", "", "| id | article | parameters | applied by |", "|---|---|---|---|"]
    for d in rs.interpretations:
        params = ", ".join(f"`{p}`" for p in d.parameters) or "— (a constraint, no value to choose)"
        out.append(f"| {d.id} | {d.article} | {params} | {d.applied_by} |")
    out += ["", "### Tests naming each decision", ""]
    for d in rs.interpretations:
        out.append(f"- {d.id}: " + (", ".join(sorted(tests.get(d.id, []))) or "none by name"))
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate docs/conformance.md")
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/conformance.md is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print("docs/conformance.md is stale: run .venv/bin/python deploy/conformance.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
