"""Helpers of the SDK tests: a live server in a thread on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def open_store(url: str) -> Any:
    store = pytest.importorskip("watchkeeper.store")
    return store.Store(url)


class LiveServer:
    """uvicorn serving ``create_app`` in a thread; ``start``/``stop`` can be repeated."""

    def __init__(self, store: Any, port: int, **settings: Any) -> None:
        self.store = store
        self.settings = settings
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        import uvicorn

        from watchkeeper.server import Settings, create_app

        app = create_app(Settings(system_metrics=False, **self.settings), store=self.store)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            assert self._thread is not None
            self._thread.join(10)
            self._server = None


@dataclass
class Live:
    server: LiveServer
    store: Any
    project: str
    token: str

    @property
    def url(self) -> str:
        return self.server.url
