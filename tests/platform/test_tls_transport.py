"""TLS on by default (issue #12 item 2): every gRPC server requires mutual TLS with certificates from the
stack CA; an expired certificate stops start-up with a one-line fix; rotation loses no call; on NATS each
service user may publish only its own subjects."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import nats
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common import clients, pki
from common.config import Settings
from supervisionctl.natsd import NatsServer, free_port
from supervisionctl.stack import health_status
from tests.platform.echo_process import EchoProcess

ROOT = Path(__file__).resolve().parents[2]
CTL = Path(sys.executable).parent / "supervisionctl"


def check(ch: grpc.Channel) -> int:
    return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def test_client_with_a_certificate_from_the_stack_ca_is_served(stack):
    with clients.sync_channel(stack.config.target("registry")) as ch:
        assert check(ch) == health_pb2.HealthCheckResponse.SERVING


def test_plaintext_client_is_refused(stack):
    with grpc.insecure_channel(stack.config.target("registry")) as ch, pytest.raises(grpc.RpcError) as e:
        check(ch)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_client_without_a_certificate_is_refused(stack, test_pki):
    creds = grpc.ssl_channel_credentials((test_pki / "ca.crt").read_bytes())
    with grpc.secure_channel(stack.config.target("rules"), creds) as ch, pytest.raises(grpc.RpcError) as e:
        check(ch)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_client_certificate_from_another_ca_is_refused(stack, test_pki, tmp_path):
    other = tmp_path / "other-pki"
    pki.ensure(other, components=("supervisionctl",))
    # The client trusts the real CA (so only its own certificate can be the reason for the refusal).
    creds = grpc.ssl_channel_credentials(
        (test_pki / "ca.crt").read_bytes(),
        (other / "supervisionctl.key").read_bytes(),
        (other / "supervisionctl.crt").read_bytes(),
    )
    with grpc.secure_channel(stack.config.target("registry"), creds) as ch, pytest.raises(grpc.RpcError) as e:
        check(ch)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_expired_service_certificate_stops_start_up_with_a_one_line_fix(tmp_path):
    folder = tmp_path / "pki"
    pki.ensure(folder)
    now = dt.datetime.now(dt.UTC)
    pki.issue(folder, "rules", not_before=now - dt.timedelta(days=400), not_after=now - dt.timedelta(days=1))
    env = {
        **os.environ,
        "BJSV_DATA_DIR": str(tmp_path),
        "BJSV_PKI_DIR": str(folder),
        "BJSV_RULES_PORT": str(free_port()),
        "BJSV_NATS_URL": f"nats://127.0.0.1:{free_port()}",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "services.rules"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "rules certificate" in lines[0] and "supervisionctl certs rotate" in lines[0]


def served_serial(target: str, test_pki: Path, *, nats: bool = False) -> int:
    """Serial number of the certificate the server presents on a new connection (mutual TLS handshake);
    NATS sends its INFO line in plaintext before the TLS upgrade."""
    host, port = target.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(test_pki / "ca.crt"))
    ctx.load_cert_chain(test_pki / "supervisionctl.crt", test_pki / "supervisionctl.key")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        if nats:
            sock.recv(4096)
        with ctx.wrap_socket(sock, server_hostname=host) as s:
            return x509.load_der_x509_certificate(s.getpeercert(binary_form=True)).serial_number


def test_rotation_while_calls_run_loses_none(stack, test_pki):
    target = stack.config.target("registry")
    before = served_serial(target, test_pki)
    nats_before = served_serial(f"127.0.0.1:{int(stack.config.nats_url.rsplit(':', 1)[1])}", test_pki, nats=True)
    stop, failures, done = threading.Event(), [], [0]

    def caller(fresh: bool) -> None:
        ch = clients.sync_channel(target)
        while not stop.is_set():
            try:
                if fresh:  # a new connection per call: every call is a handshake during the rotation
                    ch.close()
                    ch = clients.sync_channel(target)
                check(ch)
                done[0] += 1
            except grpc.RpcError as e:
                failures.append(e.code())
        ch.close()

    threads = [threading.Thread(target=caller, args=(fresh,)) for fresh in (True, True, False)]
    for t in threads:
        t.start()
    try:
        env = {**os.environ, "BJSV_PKI_DIR": str(test_pki), "BJSV_DATA_DIR": str(stack.config.data_dir)}
        for _ in range(2):
            out = subprocess.run([str(CTL), "certs", "rotate"], env=env, capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stdout + out.stderr
            assert "内置 NATS 已重新加载证书" in out.stdout
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == [] and done[0] > 20
    assert served_serial(target, test_pki) != before  # the new certificate is served without a restart
    nats_port = int(stack.config.nats_url.rsplit(":", 1)[1])
    assert served_serial(f"127.0.0.1:{nats_port}", test_pki, nats=True) != nats_before  # NATS reloaded too


def test_ca_path_is_printed(test_pki):
    out = subprocess.run([str(CTL), "auth", "ca-path"], env={**os.environ}, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == str(test_pki / "ca.crt")


async def test_nats_service_user_cannot_publish_another_services_subjects(nats_server):
    errors: list[Exception] = []

    async def on_error(e: Exception) -> None:
        errors.append(e)

    operator = await nats.connect(nats_server.url, tls=pki.ssl_context())
    registry = await nats.connect(nats_server.url, tls=pki.ssl_context(component="registry"), error_cb=on_error)
    try:
        seen: list[str] = []
        own_arrived = asyncio.Event()

        async def on_message(msg) -> None:
            seen.append(msg.subject)
            if msg.subject == "bjsv.registry.badge.issued":
                own_arrived.set()

        sub = await operator.subscribe("bjsv.>", cb=on_message)
        await operator.flush()
        await registry.publish("bjsv.rules.decision.made", b"forged")
        await registry.publish("bjsv.registry.badge.issued", b"own")
        await registry.flush()
        # The own message follows the forged one on the same connection: once it has arrived, the forged one
        # would have too, had the server let it through.
        await asyncio.wait_for(own_arrived.wait(), 10)
        await operator.flush()
        await sub.unsubscribe()
        assert seen == ["bjsv.registry.badge.issued"], (errors, nats_server.log_file)
        assert any("permissions violation" in str(e) and "bjsv.rules.decision.made" in str(e) for e in errors)
    finally:
        await registry.close()
        await operator.close()


async def test_nats_refuses_plaintext_clients(nats_server):
    with pytest.raises(Exception):  # noqa: B017 - TLS required: nats-py fails the connect in various ways
        await nats.connect(nats_server.url, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False)


def test_plaintext_only_by_the_explicit_development_setting_which_warns_and_doctor_flags(tmp_path):
    nats_plain = NatsServer(store_dir=tmp_path / "nats", port=free_port())
    nats_plain.start()
    port = free_port()
    env = {
        **os.environ,
        "BJSV_TLS": "off",
        "BJSV_DATA_DIR": str(tmp_path),
        "BJSV_RULES_PORT": str(port),
        "BJSV_NATS_URL": nats_plain.url,
    }
    log = tmp_path / "rules.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "services.rules"], cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        plain = Settings(tls="off")
        deadline = time.monotonic() + 60
        while health_status(f"127.0.0.1:{port}", timeout=0.5, settings=plain) != "SERVING":
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert "BJSV_TLS=off" in log.read_text() and "PLAINTEXT" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(30)
        nats_plain.stop()
    doctor = subprocess.run([str(CTL), "doctor", "--json"], env=env, capture_output=True, text=True, timeout=60)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)}
    assert doctor.returncode == 1 and not checks["传输加密（TLS）"]["ok"]


def test_doctor_checks_certificate_expiry_and_clock_skew(stack, test_pki, tmp_path):
    folder = tmp_path / "pki"
    shutil.copytree(test_pki, folder)  # the stack's CA: doctor's call to notify must be accepted
    now = dt.datetime.now(dt.UTC)
    pki.issue(folder, "rules", not_after=now + dt.timedelta(days=10))  # inside the 30-day warning window
    env = {
        **os.environ,
        "BJSV_PKI_DIR": str(folder),
        "BJSV_DATA_DIR": str(stack.config.data_dir),
        "BJSV_NOTIFY_PORT": str(stack.config.ports["notify"]),
    }
    doctor = subprocess.run([str(CTL), "doctor", "--json"], env=env, capture_output=True, text=True, timeout=60)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)}
    assert not checks["证书 rules"]["ok"] and "supervisionctl certs rotate" in checks["证书 rules"]["fix"]
    assert checks["证书 registry"]["ok"] and checks["证书 ca"]["ok"]
    assert checks["时钟偏差（notify 服务）"]["ok"], checks  # compared with the running notify service's clock
    assert doctor.returncode == 1


def test_the_kubelet_probe_port_answers_health_in_plaintext_and_nothing_else(tmp_path, nats_server):
    probe = free_port()
    echo = EchoProcess(tmp_path / "echo", nats_server.url, BJSV_HEALTH_PROBE_PORT=str(probe)).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{probe}") as ch:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.RpcError) as other:  # no API behind the plaintext port
                ch.unary_unary("/bjsv.test.v1.EchoService/Record")(b"", timeout=5)
            assert other.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with grpc.insecure_channel(echo.target) as ch, pytest.raises(grpc.RpcError) as refused:
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # the API port still needs mutual TLS
    finally:
        echo.terminate()
