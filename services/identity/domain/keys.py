"""Signing-key rotation: which key signs, which keys the JWKS publishes, when a new key is due.

A key signs for `rotate_after`; then the next one takes over, and the old one stays in the JWKS until
every token it signed has expired (its successor's age > token ttl + clock leeway), then it is dropped.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from common.auth.tokens import LEEWAY_SECONDS


@dataclass(frozen=True)
class KeyInfo:
    kid: str
    created: float  # unix seconds


def newest(keys: list[KeyInfo]) -> KeyInfo | None:
    return max(keys, key=lambda k: k.created, default=None)


def rotation_due(keys: list[KeyInfo], now: float, rotate_after: float) -> bool:
    current = newest(keys)
    return current is None or now - current.created >= rotate_after


def retired(keys: list[KeyInfo], now: float, token_ttl: float) -> list[KeyInfo]:
    """Keys no valid token can still name: a newer key has signed for longer than a token lives."""
    ordered = sorted(keys, key=lambda k: k.created)
    return [
        old for old, successor in itertools.pairwise(ordered) if now - successor.created > token_ttl + LEEWAY_SECONDS
    ]
