"""`supervisionctl badge …` against the running documents service: verify (offline and with the fetched
key), print-badges from a JSON-lines file, blank forms."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from documents_helpers import page_sizes_mm, photo_bytes, plumber, seal_bytes
from typer.testing import CliRunner

from bjsv.documents.v1 import documents_pb2 as pb
from supervisionctl import documents_cmds

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def cli(env, *args: str):
    runner = CliRunner()
    # the service runs on this event loop: the (synchronous) CLI must run in another thread
    return await asyncio.to_thread(
        runner.invoke, documents_cmds.app, list(args), env={"BJSV_DOCUMENTS_TARGET": env.target, "COLUMNS": "120"}
    )


async def test_verify_is_offline_with_a_key_file_and_rejects_tampering(docs_env, tmp_path):
    resp = await docs_env.stub.RenderBadge(
        pb.RenderBadgeRequest(
            badge=pb.BadgeData(
                code="R1122A050",
                holder_name="张三",
                valid_from="2022-06",
                valid_until="2025-06",
                issuer="agencies/A",
                issuer_name="北京市职业技能鉴定管理中心",
            )
        )
    )
    key_file = tmp_path / "a.pem"
    r = await cli(docs_env, "public-key", "agencies/A", "--out", str(key_file))
    assert r.exit_code == 0 and key_file.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    ok = await cli(docs_env, "verify", resp.verification_payload, "--public-key", str(key_file), "--json")
    assert ok.exit_code == 0, ok.output
    out = json.loads(ok.output)
    assert (out["valid"], out["code"], out["validity"]) == (True, "R1122A050", "2022.06-2025.06")
    # Flip one bit of the signature's first byte: a change that always matters (editing the last base64url
    # characters can leave the decoded bytes unchanged).
    signed, signature = resp.verification_payload.rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0x01
    tampered = f"{signed}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"
    bad = await cli(docs_env, "verify", tampered, "--public-key", str(key_file), "--json")
    assert bad.exit_code == 1 and json.loads(bad.output)["valid"] is False
    fetched = await cli(docs_env, "verify", resp.verification_payload, "--holder-name", "张三")
    assert fetched.exit_code == 0 and "有效" in fetched.output
    wrong = await cli(docs_env, "verify", resp.verification_payload, "--holder-name", "李四", "--json")
    assert wrong.exit_code == 1 and json.loads(wrong.output)["reason"] == "NAME_MISMATCH"


async def test_print_badges_from_jsonl_writes_duplex_volumes(docs_env, tmp_path):
    (tmp_path / "photo.jpg").write_bytes(photo_bytes())
    (tmp_path / "seal.png").write_bytes(seal_bytes())
    lines = [
        json.dumps(
            {
                "code": f"R1122A{i:03d}",
                "holder_name": f"督导员{i}",
                "valid_from": "2022-06",
                "valid_until": "2025-06",
                "issuer": "agencies/A",
                "issuer_name": "北京市职业技能鉴定管理中心",
                "photo": "photo.jpg",
                "issuer_seal": "seal.png",
                "issuer_logo": "seal.png",
            },
            ensure_ascii=False,
        )
        for i in range(1, 7)
    ]
    src = tmp_path / "badges.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    r = await cli(docs_env, "print-badges", "--input", str(src), "--out", str(out), "--volume", "4", "--json")
    assert r.exit_code == 0, r.output
    result = json.loads(r.output[r.output.index("{") :])
    assert result["badges"] == 6 and [v["pages"] for v in result["volumes"]] == [2, 2]
    first = (out / result["volumes"][0]["file"].split("/")[-1]).read_bytes()
    assert page_sizes_mm(first) == [(210.0, 297.0), (210.0, 297.0)]
    assert len(plumber(first).pages[0].images) >= 4


async def test_print_badges_needs_exactly_one_source(docs_env, tmp_path):
    r = await cli(docs_env, "print-badges", "--out", str(tmp_path))
    assert r.exit_code == 2


async def test_blank_form_command_writes_pdf_and_docx(docs_env, tmp_path):
    pdf = tmp_path / "blank.pdf"
    r = await cli(docs_env, "blank-form", "on-site", "--out", str(pdf))
    assert r.exit_code == 0 and page_sizes_mm(pdf.read_bytes()) == [(210.0, 297.0)]
    d = tmp_path / "blank.docx"
    r = await cli(docs_env, "blank-form", "feedback", "--format", "docx", "--out", str(d))
    assert r.exit_code == 0 and d.read_bytes()[:2] == b"PK"
