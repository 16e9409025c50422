"""Only the engine adapter may touch durable_rules (engine isolation, library-notes §1 Do/Don't)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_only_the_adapter_imports_durable_rules():
    pattern = re.compile(r"^\s*(import durable|from durable)", re.M)
    users = sorted(
        str(p.relative_to(ROOT))
        for base in ("services", "common", "bench")
        for p in (ROOT / base).rglob("*.py")
        if pattern.search(p.read_text(encoding="utf-8"))
    )
    assert users == ["services/rules/engine/adapter.py"]


def test_the_grpc_front_never_imports_the_engine_adapter():
    front = [
        "services/rules/api.py",
        "services/rules/runtime.py",
        "services/rules/__main__.py",
        "services/rules/engine/pool.py",
    ]
    for rel in front:
        assert "engine.adapter" not in (ROOT / rel).read_text(encoding="utf-8"), rel
