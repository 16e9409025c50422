"""Half-month period close (第二十四条, D10): the district report is delivered to the city centre — inbox,
and e-mail with the rendered PDF attached, fetched from the real documents service (GetDocument)."""

import os
import subprocess
import sys
import time

import grpc
import nats
import notify_support as support
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from notify_support import ROOT, SmtpSink, publish, start_inprocess, stop_inprocess, wait_for

from bjsv.notify.v1 import notify_pb2 as K
from bjsv.notify.v1 import notify_pb2_grpc
from bjsv.registry.v1 import supervision_events_pb2, supervision_pb2
from common import pki
from supervisionctl.natsd import free_port
from tests import auth_support

pytestmark = pytest.mark.asyncio(loop_scope="session")


def start_documents(data_dir, port: int, nats_url: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "BJSV_DATA_DIR": str(data_dir),
        "BJSV_DOCUMENTS_PORT": str(port),
        "BJSV_NATS_URL": nats_url,
        "BJSV_LOG_LEVEL": "WARNING",
        "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
    }
    log = (data_dir / "documents.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.documents"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    with auth_support.channel(f"127.0.0.1:{port}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.skip(f"documents service does not start here: {(data_dir / 'documents.log').read_text()[-500:]}")
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5).status == 1:
                    return proc
            except grpc.RpcError:
                time.sleep(0.1)
    proc.kill()
    pytest.skip("documents service did not become healthy within 60 s")


def period_closed() -> object:
    report = supervision_pb2.DistrictReport(
        name="reports/08/2025-10-1",
        district="08",
        district_name="海淀区",
        period_start="2025-10-01",
        period_end="2025-10-15",
        late_records=1,
        late_feedback=0,
        cases_opened=1,
        cases_decided=0,
        dispatches_created=3,
        recipient="agencies/A",
        feedback_count=2,
    )
    report.supervisions_by_form.add(form=supervision_pb2.SUPERVISION_FORM_ON_SITE, count=3)
    report.no_counts.add(
        form=supervision_pb2.SUPERVISION_FORM_ON_SITE,
        item_number=12,
        item_text="现场工作人员全程佩带相应工作证卡",
        count=1,
    )
    payload = supervision_events_pb2.PeriodClosed(
        report=report,
        recipients=[
            supervision_events_pb2.Recipient(
                party="agencies/A", display_name="北京市职业技能鉴定管理中心", role="city_centre"
            )
        ],
    )
    return support.envelope("period.closed", report.name, payload)


async def test_period_close_delivers_the_district_report_pdf_to_the_city_centre_art24(nats_server, tmp_path):
    docs_port = free_port()
    docs = start_documents(tmp_path, docs_port, nats_server.url)
    smtp = SmtpSink(free_port()).start()
    port, stop, task = await start_inprocess(tmp_path, nats_server.url, smtp, documents_port=docs_port)
    channel = auth_support.aio_channel(f"127.0.0.1:{port}")
    stub = notify_pb2_grpc.NotifyServiceStub(channel)
    nc = await nats.connect(nats_server.url, tls=pki.ssl_context())
    try:
        await stub.SetContact(K.SetContactRequest(contact=K.Contact(recipient="agencies/A", email="centre@x.cn")))
        await publish(nc.jetstream(), period_closed())

        async def mail():
            return smtp.by_recipient("centre@x.cn")

        msgs = await wait_for(mail, limit=30, what="report mail")
        msg = msgs[0]
        assert "半月督导结果报送" in str(msg["Subject"])
        assert "第二十四条" in msg.get_body(preferencelist=("plain",)).get_content()
        pdfs = [part for part in msg.iter_attachments() if part.get_content_type() == "application/pdf"]
        assert len(pdfs) == 1 and pdfs[0].get_content().startswith(b"%PDF")
        inbox = await stub.ListNotifications(
            K.ListNotificationsRequest(recipient="agencies/A", kinds=[K.NOTIFICATION_KIND_PERIOD_REPORT])
        )
        assert inbox.total_size == 1 and "2025年10月1日至2025年10月15日" in inbox.notifications[0].body
    finally:
        await channel.close()
        await nc.close()
        await stop_inprocess(stop, task)
        smtp.stop()
        docs.terminate()
        docs.wait(15)
