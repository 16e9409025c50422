"""Structured logging: text for people, JSON for collectors; every line carries service and trace id."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from common import context


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.trace_id = context.current_trace_id() or "-"
        return True


def configure(service: str, *, fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter(service))
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(service)s %(trace_id)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(service)s [%(trace_id)s] %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # nats-py logs reconnect noise at ERROR with tracebacks; our callbacks log it as one line instead.
    logging.getLogger("nats").setLevel(logging.CRITICAL)
