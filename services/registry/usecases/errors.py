"""Domain errors → common.errors (whose interceptor answers with the gRPC status and google.rpc details)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from common.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
)
from services.registry.domain.problems import Conflict, ProblemsError, Refused

P = ParamSpec("P")
R = TypeVar("R")
Row = TypeVar("Row")


def as_error(e: ProblemsError | Refused | Conflict, field_prefix: str = "") -> DomainError:
    if isinstance(e, ProblemsError):
        return InvalidArgument(
            e.reason, [FieldViolation(f"{field_prefix}{p.field}", p.description) for p in e.problems]
        )
    if isinstance(e, Refused):
        return FailedPrecondition(e.reason, [PreconditionViolation(e.rule, e.subject, e.description)])
    return AlreadyExists(e.reason, e.description, field_name=e.field, resource_name=e.resource)


def translated(fn: Callable[P, R]) -> Callable[P, R]:
    """Raise domain errors of `fn` as common.errors, for callers outside the registry's API edge too."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (ProblemsError, Refused, Conflict) as e:
            raise as_error(e) from None

    return wrapper


def found(row: Row | None, name: str) -> Row:
    """The row, or NOT_FOUND naming the resource."""
    if row is None:
        raise NotFound(name)
    return row
