"""Helpers of the reliability suite: ``watchkeeper server`` as a real child process."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``python -m watchkeeper server`` as a child process that can be killed and restarted."""

    def __init__(self, db: str, port: int, log: Path, env: dict[str, str] | None = None) -> None:
        self.db = db
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        env = {**os.environ, "WATCHKEEPER_SYSTEM_METRICS": "0", **self.env}
        cmd = [sys.executable, "-m", "watchkeeper", "server", "--db", self.db,
               "--port", str(self.port)]  # fmt: skip
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become ready: {self.log.read_text()[-3000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class Setup:
    db: str
    store: Any
    project: str
    token: str
    tmp: Path

    def server(self, **env: str) -> ServerProcess:
        log = self.tmp / f"server-{secrets.token_hex(3)}.log"
        return ServerProcess(self.db, free_port(), log, env)

    def count(self, model: str = "m") -> int:
        return int(self.store.count_events(self.project, model))
