"""docs/conformance.md is generated (deploy/conformance.py) and must match the tree: every article 第一条–
第二十九条 and every annex, with the rules, parameters, code and tests that implement it (issue #14)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NUMBERS = ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十"]


def _name(n: int) -> str:
    tens, ones = divmod(n, 10)
    head = "" if not tens else ("十" if tens == 1 else NUMBERS[tens - 1] + "十")
    return f"第{head}{NUMBERS[ones - 1] if ones else ''}条"


def test_conformance_doc_is_current_run_deploy_conformance_py_to_refresh():
    result = subprocess.run(
        [sys.executable, "deploy/conformance.py", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_conformance_doc_covers_every_article_and_annex_item_art1_to_art29():
    text = (ROOT / "docs" / "conformance.md").read_text(encoding="utf-8")
    for n in range(1, 30):
        assert f"## {_name(n)} — " in text, _name(n)
    for annex in range(1, 5):
        assert f"### 附件{annex}: rules, code and tests" in text
    assert "| 17 | 评价过程进行录像、拍照有影像资料 |" in text and "| 16 | 按规定保存考核结果及相关资料 |" in text
    assert all(f"| D{i} |" in text for i in range(1, 17))
