"""Registry integration helpers: start the real registry (and rules) processes on free ports; test data."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import nats
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from PIL import Image

from bjsv.events.v1 import envelope_pb2
from bjsv.registry.v1 import events_pb2, registry_pb2_grpc
from bjsv.registry.v1 import registry_pb2 as pb
from common import pki
from services.registry.domain import id_number
from supervisionctl.natsd import free_port
from supervisionctl.stack import health_status
from tests import auth_support

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Proc:
    name: str
    port: int
    proc: subprocess.Popen
    log: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:]) if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_service(service: str, data_dir: Path, env_extra: dict[str, str], *, port: int | None = None,
                  label: str = "", timeout: float = 60.0) -> Proc:  # fmt: skip
    port = port or free_port()
    env = dict(os.environ)
    env.update({"BJSV_DATA_DIR": str(data_dir), "BJSV_BIND_HOST": "127.0.0.1",
                f"BJSV_{service.upper()}_PORT": str(port), "PYTHONUNBUFFERED": "1", **env_extra})  # fmt: skip
    log = data_dir / f"{label or service}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", f"services.{service}"], cwd=ROOT, env=env, stdout=fh,
                                stderr=subprocess.STDOUT)  # fmt: skip
    p = Proc(label or service, port, proc, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{p.name} exited with {proc.returncode}:\n{p.tail()}")
        if health_status(p.target, "", timeout=0.5) == "SERVING":
            return p
        time.sleep(0.2)
    p.stop()
    raise RuntimeError(f"{p.name} not serving after {timeout}s:\n{p.tail()}")


def rules_available() -> bool:
    return (ROOT / "services" / "rules" / "__main__.py").exists()


@dataclass
class RegistryStack:
    data_dir: Path
    env: dict[str, str]
    registry: list[Proc] = field(default_factory=list)
    rules: Proc | None = None
    _channels: list = field(default_factory=list)

    def stub(self, i: int = 0) -> registry_pb2_grpc.RegistryServiceStub:
        ch = auth_support.channel(self.registry[i].target)
        self._channels.append(ch)
        return registry_pb2_grpc.RegistryServiceStub(ch)

    def stop(self) -> None:
        for ch in self._channels:
            ch.close()
        for p in self.registry:
            p.stop()
        if self.rules:
            self.rules.stop()


def build_stack(tmp: Path, nats_url: str, *, registries: int = 1, database_url: str = "", schema_prefix: str = "",
                with_rules: bool = True, rules_env: dict[str, str] | None = None) -> RegistryStack:  # fmt: skip
    env = {"BJSV_NATS_URL": nats_url, "BJSV_LOG_LEVEL": "WARNING", "BJSV_REGISTRY_EXPIRY_SWEEP_INTERVAL": "0"}
    if database_url:
        env.update({"DATABASE_URL": database_url, "BJSV_DB_SCHEMA_PREFIX": schema_prefix})
    stack = RegistryStack(tmp, env)
    try:
        if with_rules:
            if not rules_available():
                pytest.skip("the rules service (services/rules/__main__.py) is not there yet; needed for appointments")
            stack.rules = start_service("rules", tmp / "rules", {**env, **(rules_env or {})})
        env["BJSV_RULES_TARGET"] = stack.rules.target if stack.rules else f"127.0.0.1:{free_port()}"
        for i in range(registries):
            stack.registry.append(start_service("registry", tmp / "registry", env, label=f"registry{i}"))
    except BaseException:
        stack.stop()
        raise
    return stack


# ----------------------------------------------------------------------------- data builders


def photo_bytes(fmt: str = "JPEG", size=(295, 413)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (90, 120, 200)).save(buf, fmt)
    return buf.getvalue()


def new_id_number(birth: dt.date = dt.date(1970, 5, 20), male: bool = True) -> str:
    return _unique_id(birth, male)


_used: set[str] = set()


def _unique_id(birth: dt.date, male: bool) -> str:
    for region in range(110101, 119999):
        for seq in range(1 if male else 2, 1000, 2):
            n = id_number.compose(str(region), birth, seq)
            if n not in _used:
                _used.add(n)
                return n
    raise RuntimeError("exhausted")


ATTESTED = [
    pb.Attestation(item=item, satisfied=True, attested_by="市鉴定管理中心", attested_date="2026-01-05")
    for item in (pb.ATTESTATION_ITEM_PARTY_LINE, pb.ATTESTATION_ITEM_POLICY_KNOWLEDGE, pb.ATTESTATION_ITEM_INTEGRITY,
                 pb.ATTESTATION_ITEM_ABILITY, pb.ATTESTATION_ITEM_HEALTH)
]  # fmt: skip


def supervisor_msg(*, level=pb.SUPERVISOR_LEVEL_DISTRICT, district="08", institution="", birth=dt.date(1970, 5, 20),
                   male=True, name="张三", photo=True, attested=True, trained=True) -> pb.Supervisor:  # fmt: skip
    internal = bool(institution)
    return pb.Supervisor(
        full_name=name, gender=pb.GENDER_MALE if male else pb.GENDER_FEMALE, birth_date=birth.isoformat(),
        id_number=new_id_number(birth, male),
        type=pb.SUPERVISOR_TYPE_INTERNAL if internal else pb.SUPERVISOR_TYPE_EXTERNAL,
        level=pb.SUPERVISOR_LEVEL_INSTITUTION if internal else level,
        district_code="" if internal or level == pb.SUPERVISOR_LEVEL_CITY else district, institution=institution,
        phone="13800000000", photo=photo_bytes() if photo else b"", attestations=ATTESTED if attested else [],
        training=pb.TrainingAssessment(passed=trained, assessed_by="市鉴定管理中心", assessed_date="2026-02-01"),
    )  # fmt: skip


# ----------------------------------------------------------------------------- errors and events


def details(err: grpc.RpcError) -> dict:
    st = rpc_status.from_call(err)
    out: dict = {"code": err.code(), "violations": [], "preconditions": [], "reason": ""}
    for d in st.details:
        for cls, key in ((error_details_pb2.BadRequest, "violations"),
                         (error_details_pb2.PreconditionFailure, "preconditions"),
                         (error_details_pb2.ErrorInfo, "reason")):  # fmt: skip
            if d.Is(cls.DESCRIPTOR):
                msg = cls()
                d.Unpack(msg)
                if key == "violations":
                    out[key] += [(v.field, v.description) for v in msg.field_violations]
                elif key == "preconditions":
                    out[key] += [(v.type, v.description) for v in msg.violations]
                else:
                    out[key] = msg.reason
    return out


def call_error(fn, request) -> dict:
    with pytest.raises(grpc.RpcError) as e:
        fn(request, timeout=10)
    return details(e.value)


def stream_events(nats_url: str, event_type: str) -> list:
    """Every event of one type on the BJSV_REGISTRY stream so far (payload unpacked)."""
    cls = {
        "appointment.started": events_pb2.AppointmentStarted, "appointment.renewed": events_pb2.AppointmentRenewed,
        "appointment.expired": events_pb2.AppointmentExpired, "appointment.suspended": events_pb2.AppointmentSuspended,
        "appointment.revoked": events_pb2.AppointmentRevoked, "badge.issued": events_pb2.BadgeIssued,
        "badge.filed": events_pb2.BadgeFiled, "supervisor.registered": events_pb2.SupervisorRegistered,
    }[event_type]  # fmt: skip

    async def run():
        nc = await nats.connect(nats_url, tls=pki.ssl_context())
        try:
            js = nc.jetstream()
            sub = await js.subscribe(f"bjsv.registry.{event_type}", ordered_consumer=True)
            out = []
            while True:
                try:
                    msg = await sub.next_msg(timeout=1.0)
                except nats.errors.TimeoutError:
                    return out
                env = envelope_pb2.EventEnvelope()
                env.ParseFromString(msg.data)
                payload = cls()
                env.payload.Unpack(payload)
                out.append((env, payload))
        finally:
            await nc.close()

    return asyncio.run(run())
