"""What domain code raises: invalid input (Problems), refusals by a rule (Refused), duplicates (Conflict).

Pure Python; the use cases map them to common.errors (services/registry/usecases/errors.py)."""

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


class Refused(Exception):
    """A rule of the regulation refuses the change in the current state (mapped to FAILED_PRECONDITION).

    `rule` is the stable rule id, `subject` the resource it was applied to, `description` the Chinese text
    citing the article."""

    def __init__(self, reason: str, rule: str, subject: str, description: str):
        self.reason, self.rule, self.subject, self.description = reason, rule, subject, description
        super().__init__(f"{reason}: {subject}")


class Conflict(Exception):
    """The change would duplicate something that exists (mapped to ALREADY_EXISTS)."""

    def __init__(self, reason: str, description: str, *, field: str = "", resource: str = ""):
        self.reason, self.description, self.field, self.resource = reason, description, field, resource
        super().__init__(f"{reason}: {resource or field}")
