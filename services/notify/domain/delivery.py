"""Delivery state machine and retry/backoff policy for the outbound channels (NATS, e-mail).

States: pending → sending (claimed with a lease) → delivered
                                                → pending (retry after backoff)
                                                → dead_lettered (last attempt, or a permanent error)
        sending with an expired lease → pending   (the replica died mid-send; the key keeps it single)
        dead_lettered → pending                   (operator RetryDeadLetter; attempts reset)
        pending → skipped                         (nothing to send to, e.g. no e-mail address)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"
    SKIPPED = "skipped"


TRANSITIONS: dict[DeliveryState, frozenset[DeliveryState]] = {
    DeliveryState.PENDING: frozenset({DeliveryState.SENDING, DeliveryState.SKIPPED}),
    DeliveryState.SENDING: frozenset(
        {DeliveryState.DELIVERED, DeliveryState.PENDING, DeliveryState.DEAD_LETTERED, DeliveryState.SKIPPED}
    ),
    DeliveryState.DEAD_LETTERED: frozenset({DeliveryState.PENDING}),
    DeliveryState.DELIVERED: frozenset(),
    DeliveryState.SKIPPED: frozenset({DeliveryState.PENDING}),
}


class IllegalTransition(ValueError):
    pass


def check_transition(current: DeliveryState | str, target: DeliveryState | str) -> DeliveryState:
    cur, tgt = DeliveryState(current), DeliveryState(target)
    if tgt not in TRANSITIONS[cur]:
        raise IllegalTransition(f"delivery cannot go from {cur} to {tgt}")
    return tgt


class SendError(Exception):
    """A channel failed. ``reason`` is a stable English code; ``permanent`` skips the remaining retries."""

    def __init__(self, reason: str, detail: str = "", *, permanent: bool = False) -> None:
        self.reason = reason
        self.detail = detail
        self.permanent = permanent
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: delay(k) = min(base * factor**(k-1), max_delay) after the k-th failed attempt."""

    max_attempts: int = 6
    base_delay: float = 2.0
    factor: float = 2.0
    max_delay: float = 600.0

    def delay_after(self, attempt: int) -> float:
        return min(self.base_delay * self.factor ** max(attempt - 1, 0), self.max_delay)


@dataclass(frozen=True)
class FailureOutcome:
    state: DeliveryState
    retry_in: float | None
    reason: str


def after_failure(attempts: int, error: SendError, policy: RetryPolicy) -> FailureOutcome:
    """What happens after the ``attempts``-th attempt failed with ``error``."""
    reason = str(error)
    if error.permanent or attempts >= policy.max_attempts:
        return FailureOutcome(DeliveryState.DEAD_LETTERED, None, reason)
    return FailureOutcome(DeliveryState.PENDING, policy.delay_after(attempts), reason)
