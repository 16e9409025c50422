"""Rule sets as declarations: loading, validation, parameters, versions and the catalog by date.

A rule-set folder (e.g. rulesets/bj-2022/) holds `ruleset.yaml` (id, title, validity), `interpretations.yaml`
(the interpretation decisions D1–D16: article, meaning, who applies them), `parameters.yaml` (the policy
parameters carrying them, each with its article and D-decision), `rules/*.yaml` (one declaration per rule: id, kind,
article, interpretation, severity, Chinese message, validity, condition) and `canaries.yaml` (fact sets
with the rule ids they must fire — run at load in Python and in every engine worker at start).

A deployment overrides parameter values with a YAML policy file (env BJSV_RULES_POLICY_FILE):
    rulesets:
      bj-2022:
        team.recommend_block_size: 150

Version = sha256 of the canonical content (parsed YAML, sorted JSON) of the folder plus the overrides
that apply to it — so comment or whitespace edits do not create a new version, value edits do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, overload

import yaml

from common.errors import FailedPrecondition, PreconditionViolation
from services.rules.domain import conditions as cond
from services.rules.domain.dates import BadDate, parse_date
from services.rules.domain.model import (
    ADVISORY,
    ANNEX3_ITEMS,
    APPOINTMENT,
    ART26_TRIGGERS,
    ART27_TRIGGERS,
    BLOCKING,
    DISPATCH,
    RENEWAL,
)

# The flat facts each kind of evaluation sends to the engine (built by services.rules.domain.facts).
FACT_FIELDS: dict[str, frozenset[str]] = {
    "eligibility": frozenset(
        {
            "purpose",
            "gender",
            "age_years",
            "attest_party_line",
            "attest_policy_knowledge",
            "attest_integrity",
            "attest_ability",
            "attest_health",
            "training_passed",
            "status",
            "has_term",
            "term_days_before_start",
            "term_days_after_end",
        }
    ),
    "recusal": frozenset(
        {
            "is_session_examiner",
            "employed_by_institution",
            "affiliated_with_institution",
            "matching_conflicts",
            "internal_other_institution",
            "district_outside",
        }
    ),
    "team": frozenset(
        {
            "agency_kind",
            "external_count",
            "member_count",
            "candidate_count",
            "recommended_shortfall",
            "plan_in_agency_district",
            "plan_of_institution",
        }
    ),
    "team_member": frozenset(
        {
            "agency_kind",
            "member_kind",
            "member_level",
            "member_in_agency_district",
            "member_of_institution",
        }
    ),
    "penalty": frozenset(
        {
            "subject_kind",
            "trigger",
            "serious_trigger",
            "assessed_serious",
            "prior_in_window",
            "prior_max_rung_in_window",
            "uncorrected_orders",
            "supervisor_kind",
        }
    ),
    "record_item": frozenset({"form", "item_number", "answer_no", "remark_empty", "remark_required", "opens_case"}),
    "feedback": frozenset({"badge_not_worn", "duties_not_performed", "integrity_not_kept", "any_no", "opens_review"}),
}
# Every fact message also carries the evaluation date, so rule validity periods are engine conditions.
AS_OF = "as_of"
KINDS = tuple(FACT_FIELDS)
_PURPOSES = {"appointment": APPOINTMENT, "renewal": RENEWAL, "dispatch": DISPATCH}
_SEVERITIES = {"blocking": BLOCKING, "advisory": ADVISORY}
_RULE_KEYS = {
    "id",
    "kind",
    "article",
    "interpretation",
    "severity",
    "applies_to",
    "valid_from",
    "valid_until",
    "message",
    "description",
    "when",
    "rung",
    "immediate_report",
}


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class RuleSetError(ValueError):
    """A rule-set folder or policy file that cannot be loaded; the message names file, rule and field."""


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    article: str
    interpretation: str
    severity: int
    message: str
    description: str
    valid_from: dt.date
    valid_until: dt.date | None
    applies_to: tuple[int, ...]
    when: cond.Node
    effective: cond.Node  # when + purpose applicability + validity period, what the engine gets
    fields: tuple[str, ...]  # facts reported in a finding
    order: int
    rung: int | str | None = None  # penalty rules: 1..3 or "climb"
    immediate_report: bool = False


@dataclass(frozen=True)
class Parameter:
    name: str
    value: Any
    default: Any
    article: str
    interpretation: str
    description: str
    overridden: bool


@dataclass(frozen=True)
class Interpretation:
    """A D-decision with the parameters and rules that cite it (collected from their `interpretation`)."""

    id: str
    article: str
    meaning: str
    applied_by: str
    parameters: tuple[str, ...]
    rules: tuple[str, ...]


@dataclass
class RuleSet:
    id: str
    title: str
    effective_from: dt.date
    effective_until: dt.date | None
    version: str
    rules: tuple[Rule, ...]
    parameters: dict[str, Parameter]
    canaries: tuple[dict, ...]
    source: dict = field(repr=False)
    interpretations: tuple[Interpretation, ...] = ()

    def param(self, name: str) -> Any:
        return self.parameters[name].value

    @cached_property
    def _by_kind(self) -> dict[str, tuple[Rule, ...]]:
        return {k: tuple(r for r in self.rules if r.kind == k) for k in KINDS}

    @cached_property
    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}

    def rules_of(self, kind: str) -> tuple[Rule, ...]:
        return self._by_kind[kind]

    def in_force(self, day: dt.date) -> bool:
        return self.effective_from <= day and (self.effective_until is None or day <= self.effective_until)

    def engine_name(self, kind: str) -> str:
        """Name of the engine ruleset for one kind; versioned because names are never unregistered."""
        return f"{self.id.replace('-', '_')}_{self.version[:16]}_{kind}"

    def __getstate__(self) -> dict:  # cached properties are rebuilt after unpickling in a worker
        state = dict(self.__dict__)
        state.pop("_by_kind", None)
        state.pop("by_id", None)
        return state


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise RuleSetError(f"{path}: YAML syntax error: {exc}") from exc
    except OSError as exc:
        raise RuleSetError(f"{path}: cannot read: {exc}") from exc


@overload
def _date(value: Any, where: str) -> dt.date: ...
@overload
def _date(value: Any, where: str, *, optional: bool) -> dt.date | None: ...
def _date(value: Any, where: str, *, optional: bool = False) -> dt.date | None:
    if value is None and optional:
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return parse_date(value)
    except BadDate as exc:
        raise RuleSetError(f"{where}: {value!r} is not a date YYYY-MM-DD") from exc


def read_source(folder: Path) -> dict:
    """The parsed content of a rule-set folder (what the version hash is computed over)."""
    head = folder / "ruleset.yaml"
    if not head.exists():
        raise RuleSetError(f"{folder}: missing ruleset.yaml")
    rules: dict[str, Any] = {}
    for path in sorted((folder / "rules").glob("*.yaml")):
        rules[path.name] = _read_yaml(path)
    canaries_path = folder / "canaries.yaml"
    interpretations_path = folder / "interpretations.yaml"
    return {
        "interpretations": _read_yaml(interpretations_path) if interpretations_path.exists() else [],
        "ruleset": _read_yaml(head),
        "parameters": _read_yaml(folder / "parameters.yaml") if (folder / "parameters.yaml").exists() else [],
        "rules": rules,
        "canaries": _read_yaml(canaries_path) if canaries_path.exists() else [],
    }


def build_ruleset(
    source: Mapping[str, Any], overrides: Mapping[str, Any] | None = None, *, origin: str = "<source>"
) -> RuleSet:
    """Validate a parsed source + overrides into a RuleSet; raise RuleSetError naming file/rule/field."""
    overrides = dict(overrides or {})
    head = source.get("ruleset")
    if not isinstance(head, Mapping):
        raise RuleSetError(f"{origin}/ruleset.yaml: must be a mapping with id, title, effective_from")
    rs_id = head.get("id")
    if not isinstance(rs_id, str) or not rs_id:
        raise RuleSetError(f"{origin}/ruleset.yaml: 'id' is required")
    eff_from = _date(head.get("effective_from"), f"{origin}/ruleset.yaml: effective_from")
    eff_until = _date(head.get("effective_until"), f"{origin}/ruleset.yaml: effective_until", optional=True)

    params = _build_parameters(source.get("parameters") or [], overrides, rs_id, origin)
    if overrides:
        raise RuleSetError(f"policy overrides for {rs_id}: unknown parameter(s) {', '.join(sorted(overrides))}")

    def param(name: str) -> Any:
        return params[name].value

    rules: list[Rule] = []
    seen: set[str] = set()
    rule_files = source.get("rules") or {}
    if not rule_files:
        raise RuleSetError(f"{origin}/rules/: no rule files")
    for fname, items in sorted(rule_files.items()):
        if not isinstance(items, list):
            raise RuleSetError(f"{origin}/rules/{fname}: must be a list of rules")
        for i, raw in enumerate(items):
            rules.append(_build_rule(raw, f"{origin}/rules/{fname}[{i}]", param, seen, len(rules), eff_from))
    _check_structured(params, rs_id)
    interpretations = _build_interpretations(source.get("interpretations") or [], params, rules, origin)
    canaries = _build_canaries(source.get("canaries") or [], origin)
    version_src = {"source": source, "overrides": {k: v.value for k, v in params.items() if v.overridden}}
    version = hashlib.sha256(_canonical(version_src).encode()).hexdigest()
    rs = RuleSet(
        rs_id,
        str(head.get("title") or rs_id),
        eff_from,
        eff_until,
        version,
        tuple(rules),
        params,
        canaries,
        json.loads(_canonical(source)),
        interpretations,
    )
    check_canaries(rs, origin)
    return rs


def _build_parameters(raw_params: Any, overrides: dict[str, Any], rs_id: str, origin: str) -> dict[str, Parameter]:
    """The declared parameters with the deployment's overrides applied (popped from `overrides`)."""
    params: dict[str, Parameter] = {}
    if not isinstance(raw_params, list):
        raise RuleSetError(f"{origin}/parameters.yaml: must be a list of parameters")
    for i, p in enumerate(raw_params):
        where = f"{origin}/parameters.yaml[{i}]"
        if not isinstance(p, Mapping) or not isinstance(p.get("name"), str) or "value" not in p:
            raise RuleSetError(f"{where}: each parameter needs 'name' and 'value'")
        if not p.get("article"):
            raise RuleSetError(f"{where} ({p['name']}): 'article' is required — every parameter cites its article")
        if p["name"] in params:
            raise RuleSetError(f"{where}: duplicate parameter {p['name']!r}")
        default = p["value"]
        value = default
        overridden = p["name"] in overrides
        if overridden:
            value = overrides.pop(p["name"])
            if type(value) is not type(default) and not (
                isinstance(value, int | float)
                and isinstance(default, int | float)
                and not isinstance(value, bool)
                and not isinstance(default, bool)
            ):
                raise RuleSetError(
                    f"policy override {rs_id}.{p['name']}: {value!r} has type {type(value).__name__}, "
                    f"the default {default!r} has type {type(default).__name__}"
                )
        params[p["name"]] = Parameter(
            p["name"],
            value,
            default,
            str(p["article"]),
            str(p.get("interpretation") or ""),
            str(p.get("description") or ""),
            overridden,
        )
    return params


def _interpretation_ids(text: str) -> list[str]:
    """ "D7", "D5, D9" → ["D7"], ["D5", "D9"]."""
    return [part.strip() for part in text.replace("，", ",").split(",") if part.strip()]


def _build_interpretations(
    raw: Any, params: Mapping[str, Parameter], rules: list[Rule], origin: str
) -> tuple[Interpretation, ...]:
    """The D-decisions, each with the parameters and rules citing it; every `interpretation` a parameter or
    rule cites must be declared (one home per interpretation, issue #14 item 8)."""
    where = f"{origin}/interpretations.yaml"
    if not isinstance(raw, list):
        raise RuleSetError(f"{where}: must be a list of interpretations")
    declared: dict[str, Mapping] = {}
    for i, d in enumerate(raw):
        if not isinstance(d, Mapping) or not all(d.get(k) for k in ("id", "article", "meaning", "applied_by")):
            raise RuleSetError(f"{where}[{i}]: each interpretation needs id, article, meaning and applied_by")
        if d["id"] in declared:
            raise RuleSetError(f"{where}[{i}]: duplicate interpretation {d['id']!r}")
        declared[str(d["id"])] = d
    citing: dict[str, tuple[list[str], list[str]]] = {k: ([], []) for k in declared}
    cited = [(p.interpretation, p.name, 0) for p in params.values()] + [(r.interpretation, r.id, 1) for r in rules]
    for text, name, slot in cited:
        for d_id in _interpretation_ids(text):
            if d_id not in citing:
                raise RuleSetError(f"{where}: {name} cites {d_id}, which is not declared")
            citing[d_id][slot].append(name)
    return tuple(
        Interpretation(
            k, str(d["article"]), " ".join(str(d["meaning"]).split()), str(d["applied_by"]), *map(tuple, citing[k])
        )
        for k, d in declared.items()
    )


def _check_structured(params: Mapping[str, Parameter], rs_id: str) -> None:
    """Parameters whose values are trigger numbers or item lists: a bad override fails the load, never a decision.
    D14 `record.case_opening_items` = [{form: 1|2, item: an item of that form, triggers: [第二十六条 1..6]}];
    D12 `feedback.review_trigger` is a 第二十七条 trigger (7, 8); D13 `penalty.serious_triggers` are 第二十六条 ones."""

    def bad_item(e: Any) -> bool:
        return not (
            isinstance(e, Mapping)
            and e.get("form") in ANNEX3_ITEMS
            and isinstance(e.get("item"), int)
            and 1 <= e["item"] <= ANNEX3_ITEMS[e["form"]]
            and isinstance(e.get("triggers"), list)
            and e["triggers"]
            and all(t in ART26_TRIGGERS for t in e["triggers"])
        )

    checks = {
        "record.case_opening_items": (
            lambda v: any(bad_item(e) for e in v),
            "[{form: 1|2, item: n, triggers: [1..6]}]",
        ),
        "feedback.review_trigger": (lambda v: v not in ART27_TRIGGERS, "a 第二十七条 trigger (7 or 8)"),
        "penalty.serious_triggers": (lambda v: any(t not in ART26_TRIGGERS for t in v), "第二十六条 triggers (1..6)"),
    }
    for name, (is_bad, expected) in checks.items():
        if name in params and is_bad(params[name].value):
            raise RuleSetError(f"{rs_id}.{name}: {params[name].value!r} is not {expected}")


def _applies_to(raw: Mapping, kind: str, where: str) -> tuple[int, ...]:
    """The purposes an eligibility rule applies to (other kinds have none)."""
    names = raw.get("applies_to")
    if kind != "eligibility":
        if "applies_to" in raw:
            raise RuleSetError(f"{where}: applies_to is only for eligibility rules")
        return ()
    if not isinstance(names, list) or not names or any(n not in _PURPOSES for n in names):
        raise RuleSetError(f"{where}: applies_to must list some of appointment, renewal, dispatch")
    return tuple(_PURPOSES[n] for n in names)


def _build_rule(raw: Any, where: str, param, seen: set[str], order: int, rs_from: dt.date) -> Rule:
    if not isinstance(raw, Mapping):
        raise RuleSetError(f"{where}: a rule must be a mapping")
    rid = raw.get("id")
    if not isinstance(rid, str) or not rid:
        raise RuleSetError(f"{where}: 'id' is required")
    where = f"{where} ({rid})"
    if rid in seen:
        raise RuleSetError(f"{where}: duplicate rule id")
    seen.add(rid)
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise RuleSetError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("kind", "article", "severity", "message", "when", "valid_from"):
        if raw.get(key) in (None, ""):
            raise RuleSetError(f"{where}: '{key}' is required")
    kind = raw["kind"]
    if kind not in FACT_FIELDS:
        raise RuleSetError(f"{where}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    if raw["severity"] not in _SEVERITIES:
        raise RuleSetError(f"{where}: severity must be blocking or advisory, got {raw['severity']!r}")
    valid_from = _date(raw["valid_from"], f"{where}: valid_from")
    valid_until = _date(raw.get("valid_until"), f"{where}: valid_until", optional=True)
    if valid_until is not None and valid_until < valid_from:
        raise RuleSetError(f"{where}: valid_until {valid_until} is before valid_from {valid_from}")
    fields = FACT_FIELDS[kind]
    try:
        when = cond.parse(raw["when"], fields=fields, param=param)
    except cond.ConditionError as exc:
        raise RuleSetError(f"{where}: {exc}") from exc
    applies = _applies_to(raw, kind, where)
    extra: list[cond.Node] = [cond.Cmp("purpose", "in", applies)] if 0 < len(applies) < 3 else []
    rung = raw.get("rung")
    if kind == "penalty":
        if rung not in (1, 2, 3, "climb"):
            raise RuleSetError(f"{where}: penalty rules need rung 1, 2, 3 or climb")
    elif rung is not None or "immediate_report" in raw:
        raise RuleSetError(f"{where}: rung/immediate_report are only for penalty rules")
    extra.append(cond.Cmp(AS_OF, "ge", int(valid_from.strftime("%Y%m%d"))))
    if valid_until is not None:
        extra.append(cond.Cmp(AS_OF, "le", int(valid_until.strftime("%Y%m%d"))))
    effective = cond.Group("all", (when, *extra))
    return Rule(
        rid,
        kind,
        str(raw["article"]),
        str(raw.get("interpretation") or ""),
        _SEVERITIES[raw["severity"]],
        str(raw["message"]),
        str(raw.get("description") or ""),
        valid_from,
        valid_until,
        applies,
        when,
        effective,
        tuple(cond.fields_of(when)),
        order,
        rung,
        bool(raw.get("immediate_report", False)),
    )


def _build_canaries(raw: Any, origin: str) -> tuple[dict, ...]:
    if not isinstance(raw, list):
        raise RuleSetError(f"{origin}/canaries.yaml: must be a list")
    out = []
    for i, c in enumerate(raw):
        where = f"{origin}/canaries.yaml[{i}]"
        if not isinstance(c, Mapping) or c.get("kind") not in FACT_FIELDS or not isinstance(c.get("facts"), Mapping):
            raise RuleSetError(f"{where}: needs kind, facts and expect")
        missing = (FACT_FIELDS[c["kind"]] | {AS_OF}) - set(c["facts"])
        if missing:
            raise RuleSetError(f"{where}: facts missing {', '.join(sorted(missing))}")
        out.append({"kind": c["kind"], "facts": dict(c["facts"]), "expect": sorted(c.get("expect") or [])})
    return tuple(out)


def python_fired(rs: RuleSet, kind: str, facts: Mapping[str, Any]) -> list[str]:
    """Plain-Python evaluation of one fact message: ids of the rules that fire, declaration order."""
    return [r.id for r in rs.rules_of(kind) if cond.evaluate(r.effective, facts)]


def check_canaries(rs: RuleSet, origin: str = "") -> None:
    """The declared expectations hold for the rule-set defaults; with deployment overrides they may not
    (e.g. another age limit), so then only the engine-vs-declarations check in the workers applies."""
    if any(p.overridden for p in rs.parameters.values()):
        return
    for i, c in enumerate(rs.canaries):
        got = sorted(python_fired(rs, c["kind"], c["facts"]))
        if got != c["expect"]:
            raise RuleSetError(f"{origin}/canaries.yaml[{i}]: expected {c['expect']}, the rules fire {got}")


# ----------------------------------------------------------------------------------------------------------
# Catalog: all rule sets of a deployment, chosen by date (D16)


@dataclass
class Catalog:
    rulesets: tuple[RuleSet, ...]  # sorted by effective_from
    fingerprint: str

    def in_force(self, day: dt.date) -> RuleSet:
        for rs in self.rulesets:
            if rs.in_force(day):
                return rs
        first = self.rulesets[0].effective_from if self.rulesets else None
        raise FailedPrecondition(
            "NO_RULESET_IN_FORCE",
            [
                PreconditionViolation(
                    "ruleset.in-force",
                    day.isoformat(),
                    f"{day.isoformat()} 没有施行中的规则集（最早施行日期 {first}，本办法自发布之日起实施，第二十九条）",
                )
            ],
            metadata={"as_of_date": day.isoformat(), "earliest": str(first)},
        )

    def by_version(self, version: str) -> RuleSet | None:
        return next((rs for rs in self.rulesets if rs.version == version), None)

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(rs.version for rs in self.rulesets)


def fingerprint(root: Path, policy_file: Path | None) -> str:
    """Cheap change detector over the raw bytes of every rule-set file and the policy file."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.yaml")):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(b"<unreadable>")
    if policy_file is not None:
        h.update(b"\0policy\0")
        try:
            h.update(policy_file.read_bytes())
        except OSError:
            h.update(b"<missing>")
    return h.hexdigest()


def read_policy(policy_file: Path | None) -> dict[str, dict[str, Any]]:
    if policy_file is None:
        return {}
    if not policy_file.exists():
        raise RuleSetError(f"{policy_file}: policy file (BJSV_RULES_POLICY_FILE) does not exist")
    raw = _read_yaml(policy_file) or {}
    sets = raw.get("rulesets", {}) if isinstance(raw, Mapping) else None
    if not isinstance(sets, Mapping) or not all(isinstance(v, Mapping) for v in sets.values()):
        raise RuleSetError(f"{policy_file}: expected 'rulesets: {{<ruleset id>: {{<parameter>: <value>}}}}'")
    return {str(k): dict(v) for k, v in sets.items()}


def load_catalog(root: Path, policy_file: Path | None = None) -> Catalog:
    fp = fingerprint(root, policy_file)
    policy = read_policy(policy_file)
    sets: list[RuleSet] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and (p / "ruleset.yaml").exists()):
        source = read_source(folder)
        rs_id = (source.get("ruleset") or {}).get("id") if isinstance(source.get("ruleset"), Mapping) else None
        sets.append(build_ruleset(source, policy.pop(rs_id, None) if rs_id else None, origin=str(folder)))
    if not sets:
        raise RuleSetError(f"{root}: no rule-set folder (a directory with ruleset.yaml)")
    if policy:
        raise RuleSetError(f"{policy_file}: overrides for unknown rule set(s) {', '.join(sorted(policy))}")
    sets.sort(key=lambda r: r.effective_from)
    ids = [r.id for r in sets]
    if len(set(ids)) != len(ids):
        raise RuleSetError(f"{root}: duplicate rule-set ids {ids}")
    for a, b in itertools.pairwise(sets):
        if a.effective_until is None or a.effective_until >= b.effective_from:
            raise RuleSetError(f"{root}: rule sets {a.id} and {b.id} overlap in time (set effective_until on {a.id})")
    return Catalog(tuple(sets), fp)
