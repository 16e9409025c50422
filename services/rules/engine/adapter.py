"""The ONE module that imports durable_rules (library-notes §1): compile declarations, evaluate facts.

Rules of use, all enforced here:
- `SyncHost`: the engine's hidden background timer threads are disabled (§1.6), so nothing calls into
  the native engine behind our back; the caller (one worker process, one evaluation at a time) is the
  only thread using it.
- Every rule is single-pattern on one flat fact message (`m`), so deleting a session is always safe
  (§1.4) and facts, not events, are used so every matching rule fires (§1.7).
- One evaluation = a fresh session id → `assert_facts` (≤ CHUNK facts per call) → `delete_state`.
  Exactly one session is alive at a time, far below the 1024-session cap (§1.3).
- A catch-all rule handles every message so batches never raise MessageNotHandledException (§1.2).
- Engine ruleset names carry the rule-set version, because names can never be unregistered (§1.10);
  a new version is loaded into fresh worker processes (blue-green), never into this host.
- Actions are looked up by name (`get_action`), so compiled rulesets are plain JSON.
"""

from __future__ import annotations

import itertools
from typing import Any

from durable import engine

from services.rules.domain import conditions as cond
from services.rules.domain.ruleset import AS_OF, KINDS, RuleSet, python_fired

CHUNK = 250
_NOOP = "__noop__"
_OPS = {"ne": "$neq", "lt": "$lt", "le": "$lte", "gt": "$gt", "ge": "$gte"}


def compile_condition(node: cond.Node) -> dict:
    """Engine-neutral condition → durable_rules JSON expression (operator first, then field)."""
    if isinstance(node, cond.Group):
        items = [compile_condition(it) for it in node.items]
        if len(items) == 1:
            return items[0]
        return {"$and" if node.op == "all" else "$or": items}
    if node.op == "eq":
        return {node.field: node.value}
    if node.op == "in":
        if not isinstance(node.value, tuple):  # parse() gives "in" a tuple, every other operator a number
            raise TypeError(f"{node.field} in: expected a list of values")
        alts = [{node.field: v} for v in node.value]
        return alts[0] if len(alts) == 1 else {"$or": alts}
    return {_OPS[node.op]: {node.field: node.value}}


def compile_kind(rs: RuleSet, kind: str) -> dict:
    """The durable_rules definition of one kind of a rule set: one single-pattern rule per declaration."""
    definition: dict[str, Any] = {
        f"r{rule.order}": {"all": [{"m": compile_condition(rule.effective)}], "run": rule.id}
        for rule in rs.rules_of(kind)
    }
    definition["catch_all"] = {"all": [{"m": {"$ex": {AS_OF: 1}}}], "run": _NOOP}
    return definition


class _SyncHost(engine.Host):
    """engine.Host without its background dispatch/timer threads (§1.6); actions resolved by name."""

    def __init__(self) -> None:
        self.sink: list[tuple[int, str]] = []
        super().__init__()

    def _run(self) -> None:  # the base class starts threading.Timer loops here
        pass

    def get_action(self, action_name: str):
        if action_name == _NOOP:
            return _noop
        return _firing_action(self, action_name)


def _noop(c) -> None:
    return None


def _firing_action(owner: _SyncHost, rule_id: str):
    # exactly one parameter: durable_rules treats a 2-parameter action as asynchronous (completion callback)
    def fire(c):
        owner.sink.append((c.m["eid"], rule_id))

    return fire


class EngineHost:
    """One durable_rules host holding compiled rule sets; not thread-safe by design (one caller)."""

    def __init__(self) -> None:
        self._host = _SyncHost()
        self._names: dict[tuple[str, str], str] = {}
        self._sids = itertools.count(1)
        self.evaluations = 0
        self.open_sessions = 0

    def load(self, rs: RuleSet) -> None:
        definitions = {}
        for kind in KINDS:
            name = rs.engine_name(kind)
            if (rs.version, kind) in self._names:
                continue
            definitions[name] = compile_kind(rs, kind)
            self._names[(rs.version, kind)] = name
        if definitions:
            self._host.set_rulesets(definitions)

    def loaded_versions(self) -> set[str]:
        return {v for v, _ in self._names}

    def evaluate(self, version: str, kind: str, facts: list[dict[str, Any]]) -> list[list[str]]:
        """Fired rule ids per fact message (unordered within a message)."""
        name = self._names[(version, kind)]
        sid = f"e{next(self._sids)}"
        host = self._host
        sink: list[tuple[int, str]] = []
        host.sink = sink
        self.open_sessions += 1
        try:
            for start in range(0, len(facts), CHUNK):
                batch = [{**f, "sid": sid, "eid": i} for i, f in enumerate(facts[start : start + CHUNK], start)]
                state = host.assert_facts(name, batch)
                if isinstance(state, dict) and state.get("exception"):
                    raise RuntimeError(f"rule action failed: {state['exception']}")
        finally:
            host.delete_state(name, sid)
            self.open_sessions -= 1
        out: list[list[str]] = [[] for _ in facts]
        for eid, rule_id in sink:
            out[eid].append(rule_id)
        self.evaluations += len(facts)
        return out

    def session_alive(self, version: str, kind: str, sid: str) -> bool:
        try:
            return bool(self._host.get_state(self._names[(version, kind)], sid))
        except Exception:  # noqa: BLE001 — the engine raises a bare Exception for an unknown sid
            return False

    def run_canaries(self, rs: RuleSet) -> list[str]:
        """Evaluate the rule set's canaries in this engine; mismatches returned (empty = OK). Compared with the
        declared expectations, or — when deployment overrides change parameters — with the declarations
        evaluated in plain Python."""
        problems = []
        defaults = not any(p.overridden for p in rs.parameters.values())
        for i, c in enumerate(rs.canaries):
            got = sorted(self.evaluate(rs.version, c["kind"], [c["facts"]])[0])
            want = c["expect"] if defaults else sorted(python_fired(rs, c["kind"], c["facts"]))
            if got != want:
                problems.append(f"{rs.id} canary {i} ({c['kind']}): expected {want}, engine fired {got}")
        return problems
