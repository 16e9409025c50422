"""End to end: the registry issues a badge → badge.issued → the documents service fetches the badge with
its photo (GetBadge view=FULL) and stores the badge PDF (附件2). Real processes: rules, registry, documents
and a nats-server, as `supervisionctl up` runs them — the session-wide `stack` fixture of tests/conftest.py,
shared with the other end-to-end tests so its start-up is paid once per test run."""

from __future__ import annotations

import datetime as dt
import io
import os
import random
import time
from pathlib import Path

import pytest
from documents_helpers import lines_of, plumber
from PIL import Image

from bjsv.documents.v1 import documents_pb2 as pb
from bjsv.documents.v1 import documents_pb2_grpc
from bjsv.registry.v1 import registry_pb2 as rpb
from bjsv.registry.v1 import registry_pb2_grpc
from services.documents.domain import signing
from services.registry.domain import id_number
from tests import auth_support

CITY = ("agencies/A", "city-centre")

pytestmark = pytest.mark.slow


def photo() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (295, 413), (200, 60, 60)).save(buf, "JPEG")
    return buf.getvalue()


def test_issued_badge_is_rendered_from_the_event_with_the_registry_photo(stack):
    with (
        auth_support.channel(stack.config.target("registry")) as rch,
        auth_support.channel(stack.config.target("documents")) as dch,
    ):
        registry = registry_pb2_grpc.RegistryServiceStub(rch)
        documents = documents_pb2_grpc.DocumentsServiceStub(dch)
        number = id_number.compose("110108", dt.date(1975, 5, 6), 2 * random.randrange(1, 490) + 1)
        attested = [
            rpb.Attestation(item=i, satisfied=True, attested_by="市鉴定管理中心", attested_date="2025-01-05")
            for i in (
                rpb.ATTESTATION_ITEM_PARTY_LINE,
                rpb.ATTESTATION_ITEM_POLICY_KNOWLEDGE,
                rpb.ATTESTATION_ITEM_INTEGRITY,
                rpb.ATTESTATION_ITEM_ABILITY,
                rpb.ATTESTATION_ITEM_HEALTH,
            )
        ]
        sup = registry.RegisterSupervisor(
            rpb.RegisterSupervisorRequest(
                supervisor=rpb.Supervisor(
                    full_name="欧阳明远",
                    gender=rpb.GENDER_MALE,
                    birth_date="1975-05-06",
                    id_number=number,
                    type=rpb.SUPERVISOR_TYPE_EXTERNAL,
                    level=rpb.SUPERVISOR_LEVEL_CITY,
                    phone="13800000000",
                    photo=photo(),
                    attestations=attested,
                    training=rpb.TrainingAssessment(
                        passed=True, assessed_by="市鉴定管理中心", assessed_date="2025-05-01"
                    ),
                )
            ),
            metadata=auth_support.bearer(*CITY),
            timeout=20,
        ).supervisor
        appt = registry.AppointSupervisor(
            rpb.AppointSupervisorRequest(supervisor=sup.name, start_date="2025-06-01", appointed_by="主任 王某"),
            metadata=auth_support.bearer(*CITY),
            timeout=20,
        ).appointment
        badge = registry.IssueBadge(
            rpb.IssueBadgeRequest(appointment=appt.name), metadata=auth_support.bearer(*CITY), timeout=20
        ).badge

        deadline = time.monotonic() + 30
        docs = []
        while not docs and time.monotonic() < deadline:
            docs = documents.ListDocuments(pb.ListDocumentsRequest(subject=f"badges/{badge.code}")).documents
            time.sleep(0.2)
        assert docs, "badge.issued was not rendered"
        chunks = [
            r.chunk
            for r in documents.GetDocument(pb.GetDocumentRequest(name=docs[0].name))
            if not r.HasField("document")
        ]
        pdf = plumber(b"".join(chunks))
        front = [t for _, t in lines_of(pdf.pages[0])]
        assert "姓　　名：欧阳明远" in front and f"证卡编号：{badge.code}" in front
        assert f"有效期限：{badge.validity_text}" in front
        assert "质量督导员 (外督员)" in front
        assert pdf.pages[0].images, "the registry photo is on the card"
        # the QR payload of this badge verifies against the issuer key the documents service publishes
        key = documents.GetIssuerPublicKey(pb.GetIssuerPublicKeyRequest(issuer=badge.issuer))
        again = documents.RenderBadge(
            pb.RenderBadgeRequest(
                badge=pb.BadgeData(
                    code=badge.code,
                    holder_name=badge.holder_name,
                    valid_from=badge.valid_from,
                    valid_until=badge.valid_until,
                    issuer=badge.issuer,
                    issuer_name=badge.issuer_name,
                    validity_text=badge.validity_text,
                )
            )
        )
        public = signing.load_public_key(key.public_key)
        assert signing.verify_payload(again.verification_payload, lambda i, k: public, holder_name="欧阳明远").valid


def test_print_badges_from_the_registry_imposes_the_active_badges(stack, tmp_path):
    import json
    import subprocess
    import sys

    env = {
        "BJSV_REGISTRY_TARGET": stack.config.target("registry"),
        "BJSV_DOCUMENTS_TARGET": stack.config.target("documents"),
        "PATH": "/usr/bin:/bin",
        **auth_support.issuer_env(),
        "BJSV_PKI_DIR": os.environ["BJSV_PKI_DIR"],  # the CLI presents its certificate (TLS on)
    }
    cli = str(Path(sys.executable).parent / "supervisionctl")
    out = subprocess.run(
        [cli, "badge", "print-badges", "--registry", "--district", "A", "--out", str(tmp_path / "run"), "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=str(tmp_path),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout[out.stdout.index("{") :])
    assert result["badges"] >= 1 and result["volumes"]
    pdf = plumber((tmp_path / "run" / result["volumes"][0]["file"].split("/")[-1]).read_bytes())
    assert any("R11" in t and "正面" in t for _, t in lines_of(pdf.pages[0]))
