"""Start the real rules service (`python -m services.rules`) as a subprocess for integration tests/bench."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import grpc
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from tests import auth_support

ROOT = Path(__file__).resolve().parents[2]


class RulesProcess:
    def __init__(
        self,
        *,
        data_dir: Path,
        port: int,
        nats_url: str,
        rules_dir: Path | None = None,
        reload_interval: float = 0.0,
        workers: int = 2,
        extra_env: dict | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.rules_dir = rules_dir or data_dir / "rulesets"
        if rules_dir is None:
            shutil.copytree(ROOT / "services" / "rules" / "rulesets", self.rules_dir)
        self.env = {
            **os.environ,
            "BJSV_DATA_DIR": str(data_dir),
            "BJSV_RULES_PORT": str(port),
            "BJSV_BIND_HOST": "127.0.0.1",
            "BJSV_NATS_URL": nats_url,
            "BJSV_RULES_DIR": str(self.rules_dir),
            "BJSV_RULES_RELOAD_INTERVAL": str(reload_interval),
            "BJSV_RULES_WORKERS": str(workers),
            "BJSV_LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / "rules.log"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        self.launch()
        self.wait_serving(timeout)

    def launch(self) -> None:
        """Start the process without waiting (replicas started together: launch each, then wait_serving)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.rules"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_serving(self, timeout: float = 30.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        with auth_support.channel(self.target) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"rules service exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
                try:
                    if (
                        stub.Check(
                            health_pb2.HealthCheckRequest(service="bjsv.rules.v1.RulesService"), timeout=1
                        ).status
                        == health_pb2.HealthCheckResponse.SERVING
                    ):
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"rules service not serving within {timeout}s: {self.log.read_text()[-2000:]}")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return sorted(int(p) for p in out.split())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def status_details(err: grpc.RpcError) -> dict:
    """The google.rpc details of a refusal, by message type name (ErrorInfo, BadRequest, PreconditionFailure)."""
    out = {}
    for d in rpc_status.from_call(err).details:
        for cls in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.PreconditionFailure):
            if d.Is(cls.DESCRIPTOR):
                msg = cls()
                d.Unpack(msg)
                out[cls.__name__] = msg
    return out
