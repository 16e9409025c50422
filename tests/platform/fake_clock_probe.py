"""Run under deploy/hour_proof.py's fake clock by tests/platform/test_hour_proof.py: starts the registry (with its
own CA, issuer and nats-server, all made at the fake time) and prints the workflow clock's now as ISO text.

Its own CA and issuer, not the test session's: those were made at the real time, hours after the fake instant,
so their certificates and tokens would not be valid yet for a process that lives at the fake time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bjsv.registry.v1 import supervision_pb2 as spb
from bjsv.registry.v1 import supervision_pb2_grpc
from common import clients
from common.config import SERVICES
from supervisionctl.natsd import free_port
from supervisionctl.stack import Stack, StackConfig

CITY = ("agencies/A", "city-centre")


def main(data_dir: Path) -> None:
    for key in ("BJSV_IDENTITY_DIR", "BJSV_PKI_DIR"):
        os.environ.pop(key, None)
    os.environ.update(BJSV_PKI_DIR=str(data_dir / "pki"), BJSV_IDENTITY_PORT=str(free_port()))
    config = StackConfig(
        data_dir=data_dir,
        nats_port=free_port(),
        ports={name: free_port() for name in SERVICES},
        extra_env={"BJSV_LOG_LEVEL": "WARNING"},
    )
    stack = Stack(config, services=("registry",))
    stack.start(timeout=90)
    try:
        org, *roles = CITY
        with clients.sync_channel(config.target("registry"), token=stack.token(org, *roles)) as ch:
            now = supervision_pb2_grpc.SupervisionServiceStub(ch).GetSupervisionClock(spb.GetSupervisionClockRequest())
        print(now.now.ToJsonString())
    finally:
        stack.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
