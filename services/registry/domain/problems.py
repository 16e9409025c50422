"""A validation problem found by domain code; the API edge turns lists of them into gRPC errors."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: which field, a stable English reason, a Chinese description."""

    field: str
    reason: str
    description: str


class ProblemsError(ValueError):
    """Raised by pure domain functions when the input is invalid (mapped to INVALID_ARGUMENT)."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in self.problems))

    @property
    def reason(self) -> str:
        return self.problems[0].reason if self.problems else "INVALID"
