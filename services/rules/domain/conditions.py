"""Engine-neutral rule conditions.

A rule's `when` is data: a comparison `[field, op, value]` or a group `{all: [...]}` / `{any: [...]}`.
Values are numbers (or a list of numbers for `in`); a string value "@name" refers to a rule-set parameter
and is resolved when the rule set is loaded, so the engine receives literal numbers only. Fields are the
flat fact names of the rule's kind (services.rules.domain.facts.FACT_FIELDS).

The same tree is compiled to durable_rules JSON by the engine adapter and evaluated by `evaluate` here
(plain Python: used to validate canaries at load time, cross-check the engine in tests, and as the
bench baseline).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

OPS = ("eq", "ne", "lt", "le", "gt", "ge", "in")


class ConditionError(ValueError):
    """A malformed condition; the message says where (the caller prefixes file and rule id)."""


@dataclass(frozen=True)
class Cmp:
    field: str
    op: str
    value: float | int | tuple[float | int, ...]


@dataclass(frozen=True)
class Group:
    op: str  # "all" | "any"
    items: tuple[Cmp | Group, ...]


Node = Cmp | Group


def _number(value: Any, where: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConditionError(f"{where}: value {value!r} must be a number or an @parameter")
    return value


def parse(raw: Any, *, fields: frozenset[str], param: Callable[[str], Any], where: str = "when") -> Node:
    """Parse and validate a condition; `param(name)` returns a parameter value or raises KeyError."""
    if isinstance(raw, Mapping):
        if len(raw) != 1 or next(iter(raw)) not in ("all", "any"):
            raise ConditionError(f"{where}: a group must be exactly one of {{all: [...]}} or {{any: [...]}}")
        op, items = next(iter(raw.items()))
        if not isinstance(items, list) or not items:
            raise ConditionError(f"{where}.{op}: must be a non-empty list")
        return Group(
            op, tuple(parse(it, fields=fields, param=param, where=f"{where}.{op}[{i}]") for i, it in enumerate(items))
        )
    if isinstance(raw, list | tuple):
        if len(raw) != 3:
            raise ConditionError(f"{where}: a comparison is [field, op, value], got {raw!r}")
        field, op, value = raw
        if field not in fields:
            raise ConditionError(f"{where}: unknown fact field {field!r} (known: {', '.join(sorted(fields))})")
        if op not in OPS:
            raise ConditionError(f"{where}: unknown operator {op!r} (known: {', '.join(OPS)})")
        if isinstance(value, str) and value.startswith("@"):
            try:
                value = param(value[1:])
            except KeyError as exc:
                raise ConditionError(f"{where}: unknown parameter {value!r}") from exc
        if op == "in":
            if not isinstance(value, list | tuple) or not value:
                raise ConditionError(f"{where}: 'in' needs a non-empty list of numbers")
            return Cmp(field, op, tuple(_number(v, where) for v in value))
        return Cmp(field, op, _number(value, where))
    raise ConditionError(f"{where}: expected a comparison list or an all/any group, got {raw!r}")


def all_of(*nodes: Node) -> Node:
    return nodes[0] if len(nodes) == 1 else Group("all", tuple(nodes))


def fields_of(node: Node) -> list[str]:
    """Fact fields the condition reads, in first-use order (a finding reports these facts)."""
    out: list[str] = []

    def walk(n: Node) -> None:
        if isinstance(n, Cmp):
            if n.field not in out:
                out.append(n.field)
        else:
            for it in n.items:
                walk(it)

    walk(node)
    return out


def evaluate(node: Node, facts: Mapping[str, Any]) -> bool:
    """Plain-Python semantics (numbers only, like the engine receives)."""
    if isinstance(node, Group):
        if node.op == "all":
            return all(evaluate(it, facts) for it in node.items)
        return any(evaluate(it, facts) for it in node.items)
    v = facts[node.field]
    op = node.op
    if op == "eq":
        return v == node.value
    if op == "ne":
        return v != node.value
    if op == "lt":
        return v < node.value
    if op == "le":
        return v <= node.value
    if op == "gt":
        return v > node.value
    if op == "ge":
        return v >= node.value
    if not isinstance(node.value, tuple):  # parse() gives "in" a tuple, every other operator a number
        raise TypeError(f"{node.field} {op}: expected a list of values")
    return v in node.value  # "in"


def to_jsonable(node: Node) -> Any:
    if isinstance(node, Group):
        return {node.op: [to_jsonable(it) for it in node.items]}
    return [node.field, node.op, list(node.value) if isinstance(node.value, tuple) else node.value]
