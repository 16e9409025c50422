"""Reading submitted forms into protobuf values, with Chinese messages beside the offending field."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from google.protobuf.timestamp_pb2 import Timestamp

from common.clock import SHANGHAI


class FormErrors(Exception):
    """Field name -> Chinese message; the page shows each beside its field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


class Form:
    """A submitted form; getters record a message per bad field, `check()` raises them together."""

    def __init__(self, data: Mapping[str, str]) -> None:
        self.data = data
        self.errors: dict[str, str] = {}

    def text(self, name: str, label: str, *, required: bool = True, max_len: int = 200) -> str:
        value = (self.data.get(name) or "").strip()
        if required and not value:
            self.errors[name] = f"请填写{label}"
        elif len(value) > max_len:
            self.errors[name] = f"{label}不能超过{max_len}个字"
        return value

    def integer(self, name: str, label: str, *, minimum: int = 0, maximum: int = 100000) -> int:
        raw = (self.data.get(name) or "").strip()
        try:
            value = int(raw)
        except ValueError:
            self.errors[name] = f"{label}须为整数"
            return 0
        if not minimum <= value <= maximum:
            self.errors[name] = f"{label}须在{minimum}至{maximum}之间"
        return value

    def date(self, name: str, label: str, *, required: bool = True) -> str:
        raw = (self.data.get(name) or "").strip()
        if not raw and not required:
            return ""
        try:
            return dt.date.fromisoformat(raw).isoformat()
        except ValueError:
            self.errors[name] = f"请按 年-月-日 填写{label}"
            return ""

    def instant(self, name: str, label: str) -> Timestamp:
        """A Beijing-time `YYYY-MM-DDTHH:MM` (datetime-local input) as a Timestamp."""
        raw = (self.data.get(name) or "").strip()
        ts = Timestamp()
        try:
            ts.FromDatetime(dt.datetime.fromisoformat(raw).replace(tzinfo=SHANGHAI))
        except ValueError:
            self.errors[name] = f"请填写{label}（北京时间）"
        return ts

    def check(self) -> None:
        if self.errors:
            raise FormErrors(self.errors)


def field_errors(fields: dict[str, str]) -> dict[str, str]:
    """A service's BadRequest field paths (e.g. `plan.sessions[0].start_time`, `record.answers[11].remark`)
    keyed by the form's input names: the path without the message prefix, indexes kept."""
    out: dict[str, str] = {}
    for path, message in fields.items():
        key = path.split(".", 1)[1] if "." in path else path
        out[key] = message
    return out
