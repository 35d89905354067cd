"""The real path, in one process: a Watchkeeper server on a free port, and a webhook receiver.

:func:`start_server` runs the FastAPI app of :mod:`watchkeeper.server` under uvicorn in a
background thread, on a store you give (the embedded SQLite file by default), with a project and
API tokens made for the occasion. :class:`WebhookReceiver` is a tiny HTTP endpoint that records
every JSON body posted to it: where the scenario's alerts arrive.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["RunningServer", "WebhookReceiver", "start_server"]


def _free_socket(host: str, port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


@dataclass
class RunningServer:
    """A server started by :func:`start_server`; ``stop()`` shuts it down."""

    url: str
    store: Any
    project: str
    admin_token: str
    ingest_token: str
    read_token: str
    sink_policy: Any = None
    """The server's :class:`~watchkeeper.alerts.SinkPolicy`."""
    _server: Any = None
    _thread: threading.Thread | None = None

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C stops it)."""
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            self.stop()


def start_server(
    store: Any = None,
    *,
    project: str = "demo",
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 30.0,
    sink_hosts: str | None = None,
) -> RunningServer:
    """Start the Watchkeeper server in a background thread.

    Parameters
    ----------
    store
        An open :class:`watchkeeper.store.Store`, or a database URL for one (``None``: the
        default embedded SQLite file).
    project
        Project to create (if missing) and to make tokens for.
    host, port
        Where to listen; port 0 picks a free one.
    startup_timeout
        Seconds to wait for the server to answer.
    sink_hosts
        The operator's list of hosts alert sinks may reach (``Settings.sink_hosts``); the demo
        names its own local webhook here, since internal addresses are refused otherwise.
    """
    import uvicorn

    from watchkeeper.server import Settings, create_app

    if store is None or isinstance(store, str):
        from watchkeeper.store import Store

        store = Store(store)
    _ensure_project(store, project)
    admin = store.create_token(project, {"admin", "ingest", "read"})
    ingest = store.create_token(project, {"ingest"})
    read = store.create_token(project, {"read"})
    settings = Settings(
        host=host, port=port or 8000, system_metrics=False, sink_hosts=sink_hosts
    )
    app = create_app(settings, store=store)
    sock = _free_socket(host, port)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="watchkeeper-demo-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the Watchkeeper server did not start on {host}:{bound_port}")
        time.sleep(0.05)
    return RunningServer(
        url=f"http://{host}:{bound_port}", store=store, project=project, admin_token=admin,
        ingest_token=ingest, read_token=read, sink_policy=settings.sink_policy(),
        _server=server, _thread=thread,
    )


def _ensure_project(store: Any, project: str) -> None:
    try:
        store.create_project(project)
    except Exception as exc:  # already there from an earlier run on the same database
        if "exist" not in str(exc).lower() and "unique" not in str(exc).lower():
            raise


@dataclass
class WebhookReceiver:
    """A local HTTP endpoint that keeps every JSON body POSTed to it, in ``received``.

    Examples
    --------
    >>> import httpx
    >>> with WebhookReceiver() as hook:
    ...     _ = httpx.post(hook.url, json={"alert": "flag count out of band"})
    >>> hook.received
    [{'alert': 'flag count out of band'}]
    """

    host: str = "127.0.0.1"
    received: list[Any] = field(default_factory=list)
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where to post."""
        if self._httpd is None:
            raise RuntimeError("the receiver is not started")
        return f"http://{self.host}:{self._httpd.server_address[1]}/hook"

    @property
    def address(self) -> str:
        """``host:port``, the entry an operator's sink allow-list needs for this receiver."""
        if self._httpd is None:
            raise RuntimeError("the receiver is not started")
        return f"{self.host}:{self._httpd.server_address[1]}"

    def start(self) -> WebhookReceiver:
        """Listen on a free port, in a background thread."""
        received = self.received
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body: Any = json.loads(raw or b"null")
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with lock:
                    received.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, format: str, *args: Any) -> None:
                return None  # keep the narrative clean

        self._httpd = ThreadingHTTPServer((self.host, 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="watchkeeper-demo-webhook", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
