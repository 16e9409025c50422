"""聘期届满自动解聘 (第十三条): the registry's scheduled sweep expires ended terms by itself and publishes
appointment.expired (the notify service reacts to it)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from registry_helpers import start_service, stream_events

from bjsv.registry.v1 import registry_pb2 as pb
from common.config import Settings
from common.db import Database
from services.registry.storage import models as m
from services.registry.storage.seed import ScopeSpec, seed_population
from supervisionctl.natsd import free_port
from tests import auth_support


def test_the_scheduled_sweep_expires_a_term_that_ended_and_publishes_the_event(tmp_path, nats_server):
    # an appointment made in 2020 (as of then): its term ended on 2022-12-31
    data = tmp_path / "registry"
    migrations = Path(m.__file__).parent / "migrations"
    db = Database(Settings(data_dir=data), service="registry", metadata=m.Base.metadata, migrations=migrations)
    db.migrate()
    spec = [ScopeSpec(district="15", count=1)]
    (appt_id,) = db.write_sync(
        lambda s: seed_population(s, specs=spec, today=dt.date(2020, 1, 1), start=dt.date(2020, 1, 1), reason="test")
    )
    db.dispose()
    env = {"BJSV_NATS_URL": nats_server.url, "BJSV_LOG_LEVEL": "WARNING", "BJSV_REGISTRY_EXPIRY_SWEEP_INTERVAL": "0.5",
           "BJSV_RULES_TARGET": f"127.0.0.1:{free_port()}"}  # fmt: skip
    proc = start_service("registry", data, env)
    try:
        from bjsv.registry.v1 import registry_pb2_grpc

        with auth_support.channel(proc.target) as ch:
            stub = registry_pb2_grpc.RegistryServiceStub(ch)
            name = f"appointments/{appt_id}"
            deadline, status = time.monotonic() + 20, None
            while time.monotonic() < deadline:
                status = stub.GetAppointment(pb.GetAppointmentRequest(name=name)).appointment.status
                if status == pb.APPOINTMENT_STATUS_EXPIRED:
                    break
                time.sleep(0.3)
            assert status == pb.APPOINTMENT_STATUS_EXPIRED
            sup = stub.GetSupervisor(pb.GetSupervisorRequest(name=stub.GetAppointment(
                pb.GetAppointmentRequest(name=name)).appointment.supervisor)).supervisor  # fmt: skip
            assert sup.status == pb.APPOINTMENT_STATUS_EXPIRED
        deadline, expired = time.monotonic() + 15, []  # the outbox relay publishes right after the commit
        while not expired and time.monotonic() < deadline:  # each look waits 1 s for more events
            expired = [p for _, p in stream_events(nats_server.url, "appointment.expired") if p.appointment == name]
        assert expired and expired[0].term.end_date == "2022-12-31" and expired[0].supervisor.full_name
    finally:
        proc.stop()
