"""Start/stop the platform test service (echo_service/app.py) as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from supervisionctl.natsd import free_port
from supervisionctl.stack import health_status

APP = Path(__file__).parent / "echo_service" / "app.py"


class EchoProcess:
    def __init__(self, data_dir: Path, nats_url: str, **env: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.env = {
            **os.environ,
            "BJSV_DATA_DIR": str(data_dir),
            "BJSV_NATS_URL": nats_url,
            "BJSV_ECHO_PORT": str(self.port),
            "BJSV_SHUTDOWN_GRACE": "5",
            "BJSV_AUTHZ_POLICY_FILE": str(APP.parent / "policy.yaml"),
            **env,
        }
        self.log = data_dir / "echo.log"
        self.proc: subprocess.Popen | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, wait: bool = True, timeout: float = 60) -> EchoProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, str(APP)], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        if wait:
            deadline = time.monotonic() + timeout
            while health_status(self.target, timeout=0.3) != "SERVING":
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"echo service did not start:\n{self.log.read_text()[-2000:]}")
                time.sleep(0.1)
        return self

    def run_to_exit(self, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run in the foreground expecting it to exit by itself (bad configuration cases)."""
        return subprocess.run([sys.executable, str(APP)], env=self.env, capture_output=True, text=True, timeout=timeout)

    def terminate(self, timeout: float = 15) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
