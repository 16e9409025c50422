"""`supervisionctl registry import`: every row validated first, a per-row report (row, column, Chinese
reason), nothing imported unless all pass (or --partial); CSV (UTF-8 / GBK) and XLSX."""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest
from openpyxl import Workbook
from registry_helpers import build_stack, new_id_number
from typer.testing import CliRunner

from bjsv.registry.v1 import registry_pb2 as pb
from services.registry.domain import roster
from supervisionctl import registry_cmds


@pytest.fixture(scope="module")
def stack(tmp_path_factory, nats_server):
    s = build_stack(tmp_path_factory.mktemp("cli"), nats_server.url, with_rules=False)
    yield s
    s.stop()


def row(**kw) -> dict:
    birth = kw.pop("birth", dt.date(1972, 3, 4))
    base = {
        roster.COL_NAME: "李四", roster.COL_GENDER: "女", roster.COL_BIRTH: birth.isoformat(),
        roster.COL_ID: new_id_number(birth, male=False), roster.COL_TYPE: "外督员", roster.COL_LEVEL: "区级",
        roster.COL_DISTRICT: "朝阳区", roster.COL_ATTESTED_BY: "朝阳区鉴定管理机构",
        roster.COL_ATTESTED_DATE: "2026-01-05",
        **{c: "是" for c in roster.COL_ART9.values()},
    }  # fmt: skip
    base.update(kw)
    return base


def write_xlsx(path, rows):
    wb = Workbook()
    ws = wb.active
    ws.append(list(roster.COLUMNS))
    for r in rows:
        ws.append([r.get(c, "") for c in roster.COLUMNS])
    wb.save(path)


def write_csv(path, rows, encoding="utf-8-sig"):
    with path.open("w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh)
        w.writerow(roster.COLUMNS)
        for r in rows:
            w.writerow([r.get(c, "") for c in roster.COLUMNS])


def total(stack) -> int:
    return stack.stub().ListSupervisors(pb.ListSupervisorsRequest()).total_size


def invoke(stack, *args):
    return CliRunner().invoke(registry_cmds.app, ["import", *map(str, args), "--target", stack.registry[0].target,
                                                  "--json"])  # fmt: skip


def test_one_bad_row_blocks_the_whole_import_and_is_reported_by_row_and_column(stack, tmp_path):
    path = tmp_path / "roster.xlsx"
    dup = row()
    write_xlsx(path, [row(), dup, dict(dup), row(**{roster.COL_DISTRICT: "火星区"}), row(**{roster.COL_ID: "123"})])
    before = total(stack)
    r = invoke(stack, path)
    assert r.exit_code == 1, r.output
    out = json.loads(r.stdout)
    got = {(e["row"], e["column"], e["reason"]) for e in out["errors"]}
    assert (4, "居民身份证号", "ID_NUMBER_DUPLICATE_IN_FILE") in got
    assert (5, "所属区", "UNKNOWN_DISTRICT") in got
    assert (6, "居民身份证号", "ID_NUMBER_LENGTH") in got
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in e["description"]) for e in out["errors"])
    assert out["imported"] == 0 and total(stack) == before


def test_partial_imports_the_good_rows(stack, tmp_path):
    path = tmp_path / "roster.csv"
    write_csv(path, [row(), row(**{roster.COL_GENDER: "男"}), row()])
    before = total(stack)
    r = invoke(stack, path, "--partial")
    out = json.loads(r.stdout)
    assert out["imported"] == 2 and [e["row"] for e in out["errors"]] == [3]
    assert total(stack) == before + 2


def test_a_clean_gbk_csv_imports_every_row(stack, tmp_path):
    path = tmp_path / "roster_gbk.csv"
    city = row(**{roster.COL_TYPE: "外督员", roster.COL_LEVEL: "市级", roster.COL_DISTRICT: ""})
    write_csv(path, [row(), row(), city], encoding="gbk")
    before = total(stack)
    r = invoke(stack, path)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["imported"] == 3 and total(stack) == before + 3
    again = invoke(stack, path)  # same people again: all rejected as already registered
    assert again.exit_code == 1
    assert {e["reason"] for e in json.loads(again.stdout)["errors"]} == {"ID_NUMBER_ALREADY_REGISTERED"}


def test_unreadable_file_and_unreachable_registry_have_their_exit_codes(stack, tmp_path):
    bad = tmp_path / "roster.txt"
    bad.write_text("x")
    assert invoke(stack, bad).exit_code == 2
    good = tmp_path / "r.csv"
    write_csv(good, [row()])
    r = CliRunner().invoke(registry_cmds.app, ["import", str(good), "--target", "127.0.0.1:1"])
    assert r.exit_code == 3
