"""Code gates in the suite (issue #11 item 6), like the buf lint gate: formatting, lint with a complexity limit,
mypy on common/ and services/, no unexplained type ignores, size limits, and docs that name only what exists.

Every failure lists `path:line: problem`, so the gate's output is the to-do list.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.bus import stream_name
from common.config import SERVICES, Settings
from services.documents.config import DocumentsSettings
from services.notify.config import NotifySettings
from services.registry.config import RegistrySettings
from services.rules.config import RulesSettings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SOURCE_DIRS = ("common", "services")
MAX_FILE_LINES = 800
MAX_FUNCTION_LINES = 60
# Over the limits when the gate arrived (issue #11), with their size then: a listed one may shrink, not grow, and
# its entry goes when it is split (the test says so). Nothing may join the lists.
KNOWN_LONG_FILES: dict[str, int] = {}
KNOWN_LONG_FUNCTIONS = {"common/server.py::serve": 82}


def run_tool(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def source_files() -> Iterator[Path]:
    for top in SOURCE_DIRS:
        yield from sorted((ROOT / top).rglob("*.py"))


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def test_ruff_format_leaves_every_file_as_it_is():
    result = run_tool(str(BIN / "ruff"), "format", "--check", ".")
    assert result.returncode == 0, "run `.venv/bin/ruff format .`\n" + result.stdout + result.stderr


def test_ruff_lint_passes_with_the_curated_rules_and_complexity_limit():
    # The rule set, the complexity limit and the reason of every ignore are in pyproject.toml [tool.ruff.lint].
    result = run_tool(str(BIN / "ruff"), "check", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes_on_common_and_services():
    # Configuration in pyproject.toml [tool.mypy]; the incremental cache (.mypy_cache) keeps reruns fast.
    result = run_tool(sys.executable, "-m", "mypy", "--no-error-summary", "--no-pretty", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


IGNORE = re.compile(r"#\s*type:\s*ignore(?P<code>\[[^\]]*\])?(?P<rest>.*)$")


def ignore_problems(text: str, where: str) -> list[str]:
    """`# type: ignore[code]  # why` on the line, or a comment line right above it saying why."""
    problems = []
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        match = IGNORE.search(line)
        if not match:
            continue
        reason_here = re.match(r"\s*#\s*\S", match["rest"]) is not None
        reason_above = number > 1 and lines[number - 2].lstrip().startswith("#")
        if not match["code"]:
            problems.append(f"{where}:{number}: type: ignore without an error code")
        elif not (reason_here or reason_above):
            problems.append(f"{where}:{number}: type: ignore{match['code']} without a reason comment")
    return problems


def test_every_type_ignore_names_its_code_and_gives_a_reason():
    problems = [p for path in source_files() for p in ignore_problems(path.read_text(), rel(path))]
    assert not problems, "\n".join(problems)


def test_the_ignore_gate_refuses_a_bare_ignore_and_one_without_a_reason():
    text = (
        "a = f()  # type: ignore\n"
        "b = g()  # type: ignore[arg-type]\n"
        "c = h()  # type: ignore[arg-type]  # the stub is wrong\n"
        "# the stub is wrong\n"
        "d = k()  # type: ignore[arg-type]\n"
    )
    assert ignore_problems(text, "x.py") == [
        "x.py:1: type: ignore without an error code",
        "x.py:2: type: ignore[arg-type] without a reason comment",
    ]


def over_limit(sizes: dict[str, tuple[str, int]], limit: int, known: dict[str, int]) -> list[str]:
    """sizes: key → (where, size). Problems: a new one over the limit, a known one grown, a known one fixed."""
    problems = []
    for key, (where, size) in sizes.items():
        if size <= limit:
            if key in known:
                problems.append(f"{where}: {key} is {size} lines now: remove it from the known list of test_gates")
        elif key not in known:
            problems.append(f"{where}: {key} is {size} lines (limit {limit})")
        elif size > known[key]:
            problems.append(f"{where}: {key} is {size} lines (limit {limit}; listed at {known[key]}, may not grow)")
    problems += [f"{key}: listed but gone: remove it from test_gates" for key in known.keys() - sizes.keys()]
    return problems


def test_no_python_file_under_common_or_services_is_over_800_lines():
    sizes = {rel(path): (f"{rel(path)}:1", len(path.read_text().splitlines())) for path in source_files()}
    problems = over_limit(sizes, MAX_FILE_LINES, KNOWN_LONG_FILES)
    assert not problems, "\n".join(problems)


def test_no_function_is_over_60_lines_outside_migrations():
    sizes = {}
    for path in source_files():
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                count = (node.end_lineno or node.lineno) - node.lineno + 1
                key = f"{rel(path)}::{node.name}"
                if count > sizes.get(key, ("", 0))[1]:  # same name twice in a file: the longer one counts
                    sizes[key] = (f"{rel(path)}:{node.lineno}", count)
    problems = over_limit(sizes, MAX_FUNCTION_LINES, KNOWN_LONG_FUNCTIONS)
    assert not problems, "\n".join(problems)


# --- docs name only what exists ------------------------------------------------------------------------------

DOCS = [ROOT / "docs" / "conventions.md", *sorted((ROOT / "services").glob("*/README.md"))]
CODE_SPAN = re.compile(r"`([^`\n]+)`")
# A path-like span: segments of word characters, dots and dashes separated by "/", ending in a known suffix
# or "/"; spans with placeholders (<name>, …, *) or spaces are prose, not a path.
PATH_SPAN = re.compile(r"^[\w.-]+(/[\w.-]+)*(\.(py|md|yaml|yml|docx|toml|proto|json|mako)|/)$")
MODULE_SPAN = re.compile(r"^(common|services)(\.\w+)+$")
# `BJSV_<NAME>_PORT` is a pattern, not a name: a name followed by "<" is skipped.
SETTING = re.compile(r"\bBJSV_[A-Z0-9_]*\*?(?![<\w])")


def settings_names() -> set[str]:
    names = {"DATABASE_URL"}
    for cls in (Settings, RegistrySettings, RulesSettings, DocumentsSettings, NotifySettings):
        names |= {f"BJSV_{field.upper()}" for field in cls.model_fields}
    return names


def stream_names() -> set[str]:
    return {stream_name(service) for service in SERVICES} | {"BJSV_DLQ"}


def path_exists(span: str, doc: Path) -> bool:
    candidate = span.rstrip("/")
    bases = [ROOT, doc.parent]
    if any((base / candidate).exists() for base in bases):
        return True
    if "/" not in candidate:
        # A bare file name continuing a list ("`workflow/plans.py`, `dispatches.py`") names a file in the tree
        # the document describes.
        return any(next(base.rglob(candidate), None) for base in [doc.parent, *(ROOT / top for top in SOURCE_DIRS)])
    return False


def module_exists(span: str) -> bool:
    """`common.api`, `services.registry.workflow`, or an attribute of a module: `common.workdays.CalendarFile`."""
    parts = span.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def doc_problems(doc: Path) -> list[str]:
    settings, streams = settings_names(), stream_names()
    problems = []
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        for span in CODE_SPAN.findall(line):
            span = span.strip()
            if span.startswith("../"):
                continue  # outside the repository (the shared spec and notes next to it)
            if PATH_SPAN.match(span) and not MODULE_SPAN.match(span) and not path_exists(span, doc):
                problems.append(f"{rel(doc)}:{number}: names `{span}`, which does not exist")
            elif MODULE_SPAN.match(span) and not module_exists(span):
                problems.append(f"{rel(doc)}:{number}: names module `{span}`, which does not exist")
        for name in SETTING.findall(line):
            if name.endswith("*"):
                known = any(s.startswith(name[:-1]) for s in settings)
            else:
                known = name in settings or name in streams
            if not known:
                problems.append(f"{rel(doc)}:{number}: names setting `{name}`, which no Settings class has")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: rel(p))
def test_docs_name_only_modules_files_and_settings_that_exist(doc):
    problems = doc_problems(doc)
    assert not problems, "\n".join(problems)


def test_the_docs_gate_catches_a_missing_file_a_missing_module_and_an_unknown_setting(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text("`workflow/nowhere.py` and `common.nowhere` and `common.api.no_such` read `BJSV_NO_SUCH_THING`\n")
    problems = doc_problems(doc)
    assert len(problems) == 4, problems
