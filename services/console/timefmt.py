"""Instants shown and entered in Beijing time (the regulation's days are Beijing days)."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from common.clock import SHANGHAI


def beijing(ts: Timestamp | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return ""
    return ts.ToDatetime(tzinfo=SHANGHAI).strftime(fmt)


def local_input(ts: Timestamp | None) -> str:
    """A Timestamp as a datetime-local input value in Beijing time."""
    return beijing(ts, "%Y-%m-%dT%H:%M")
