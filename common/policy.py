"""The policy parameters (D1–D16) in force on a date, as the rules service serves them.

The rule set (`services/rules/rulesets/<id>/parameters.yaml`, overridden per deployment by
BJSV_RULES_POLICY_FILE) is the one place where a parameter such as D5 `record.deadline_workdays` or
第十三条 `appointment.term_years` is declared and overridden. Other services read the value in force
through GetRuleSet instead of keeping a copy of their own. Values are cached per date for `ttl` seconds,
so a hot reload of the rule set reaches them within that time.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import grpc

from bjsv.rules.v1 import rules_pb2, rules_pb2_grpc
from common import clients

CACHED_DATES = 64  # distinct dates kept (a service asks about today and a few dates around it)


class PolicyParameters:
    def __init__(self, target: str, *, ttl: float = 30.0, timeout: float = 5.0) -> None:
        self._target = target
        self._ttl = ttl
        self._timeout = timeout
        self._channel: grpc.aio.Channel | None = None
        self._cache: dict[dt.date, tuple[float, dict[str, Any]]] = {}

    async def get(self, name: str, as_of: dt.date) -> Any:
        """The value of parameter `name` in the rule set in force on `as_of`. UNAVAILABLE when the rules
        service cannot be reached; FAILED_PRECONDITION when no rule set is in force on that date."""
        return (await self._values(as_of))[name]

    async def _values(self, as_of: dt.date) -> dict[str, Any]:
        hit = self._cache.get(as_of)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        if self._channel is None:  # created on first use, inside the serving event loop
            self._channel = clients.channel(self._target)
        stub = rules_pb2_grpc.RulesServiceStub(self._channel)
        response = await clients.invoke(
            stub.GetRuleSet(rules_pb2.GetRuleSetRequest(as_of_date=as_of.isoformat()), timeout=self._timeout),
            dependency="rules",
        )
        values = {p.name: json.loads(p.value_json) for p in response.rule_set.parameters}
        if len(self._cache) >= CACHED_DATES:
            self._cache.clear()
        self._cache[as_of] = (time.monotonic() + self._ttl, values)
        return values

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(grace=None)
            self._channel = None
