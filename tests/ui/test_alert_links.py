"""Every alert links to its console page when the public address is set."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from watchkeeper.checks import default_config
from watchkeeper.profiles import profile
from watchkeeper.runner import run_monitors
from watchkeeper.window import Window

HOUR = 3600.0
T0 = 1_700_000_000.0 - (1_700_000_000.0 % HOUR)


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[Any]]]:
    got: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()
    server.server_close()


def test_alert_carries_its_console_link(
    tmp_path: Path, receiver: tuple[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from watchkeeper.server import Settings, create_app
    from watchkeeper.store import Store

    monkeypatch.setenv("WATCHKEEPER_PUBLIC_URL", "https://wk.example.org/")
    url, got = receiver
    rng = np.random.default_rng(0)
    store = Store(str(tmp_path / "wk.db"))
    store.create_project("p")
    store.register_model_version("p", "m", "v1", window="1h")
    ref = Window.from_columns(features={"x": rng.normal(size=1000)})
    store.put_reference("p", "m", "v1", ref, profile=profile(ref).to_dict())
    cfg = default_config(ref)
    cfg.rules = [{"name": "drift", "checks": ["feature_drift"], "subjects": ["x"], "k": 1, "n": 1}]
    cfg.sinks = [{"type": "webhook", "url": url}]
    store.put_monitor_config("p", "m", cfg.to_dict())
    n = 300
    store.log_events(
        "p", "m",
        Window.from_columns(ids=[f"e{i}" for i in range(n)], ts=T0 + np.linspace(0, HOUR - 1, n),
                            features={"x": rng.normal(2.0, 1, n)}),
    )  # fmt: skip
    run_monitors(store, "p", "m", now=T0 + HOUR + 1)
    alert = store.list_alerts("p", model="m")[0]
    assert alert["console_url"] == f"https://wk.example.org/ui/alerts/{alert['id']}"
    assert alert["console_url"] in json.dumps(got)
    token = store.create_token("p", {"read"})
    app = create_app(Settings(system_metrics=False), store=store)
    with TestClient(app) as client:
        client.post("/ui/login", data={"token": token})
        page = client.get(f"/ui/alerts/{alert['id']}")
        assert page.status_code == 200 and 'class="samples-link"' in page.text
    store.close()
