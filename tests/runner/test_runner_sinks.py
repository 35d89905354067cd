"""The runner notifies sinks: a webhook gets firing and resolved, Alertmanager gets heartbeats."""

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
from watchkeeper.runner import Scheduler, run_monitors
from watchkeeper.window import Window

HOUR = 3600.0
T0 = 1_700_000_000.0 - (1_700_000_000.0 % HOUR)


@pytest.fixture(autouse=True)
def operator_allows_local_receivers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHKEEPER_SINK_HOSTS", "127.0.0.1")


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, Any]]]]:
    got: list[tuple[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", got
    server.shutdown()
    server.server_close()


def _window(rng: np.random.Generator, start: float, shift: float) -> Window:
    n = 300
    return Window.from_columns(
        ids=[f"e{start:.0f}-{i}" for i in range(n)],
        ts=start + np.linspace(0, HOUR - 1, n),
        features={"x": rng.normal(shift, 1, n)},
    )


def test_webhook_and_alertmanager_through_the_runner(
    tmp_path: Path, rng: np.random.Generator, receiver: tuple[str, list[tuple[str, Any]]]
) -> None:
    from watchkeeper.store import Store

    url, got = receiver
    store = Store(str(tmp_path / "wk.db"))
    store.create_project("p")
    store.register_model_version("p", "m", "v1", window="1h")
    ref = Window.from_columns(features={"x": rng.normal(size=2000)})
    store.put_reference("p", "m", "v1", ref, profile=profile(ref).to_dict())
    cfg = default_config(ref)
    cfg.rules = [{"name": "drift", "checks": ["feature_drift"], "subjects": ["x"]}]
    cfg.sinks = [
        {"type": "webhook", "url": url + "/hook"},
        {"type": "alertmanager", "url": url, "ttl": 600},
    ]
    store.put_monitor_config("p", "m", cfg.to_dict())
    for h, shift in enumerate([0.0, 1.0]):
        store.log_events("p", "m", _window(rng, T0 + h * HOUR, shift))
    run_monitors(store, "p", "m", now=T0 + 2 * HOUR + 1)  # two windows: calm, then drift
    hooks = [b for p, b in got if p == "/hook"]
    assert [e["kind"] for e in hooks[0]["events"]] == ["firing"]
    am = [b for p, b in got if p == "/api/v2/alerts"]
    assert am[0][0]["labels"]["alertname"] == "drift"
    # A tick with no closed window re-posts the firing alert to Alertmanager only.
    n_hooks = len(hooks)
    Scheduler(store, interval=60).run_once(now=T0 + 2 * HOUR + 120)
    am = [b for p, b in got if p == "/api/v2/alerts"]
    assert len(am) == 2 and am[1][0]["labels"]["model"] == "m"
    assert len([b for p, b in got if p == "/hook"]) == n_hooks
    # Back to normal: resolved to both.
    store.log_events("p", "m", _window(rng, T0 + 2 * HOUR, 0.0))
    run_monitors(store, "p", "m", now=T0 + 3 * HOUR + 1)
    hooks = [b for p, b in got if p == "/hook"]
    assert [e["kind"] for e in hooks[-1]["events"]] == ["resolved"]
    last_am = [b for p, b in got if p == "/api/v2/alerts"][-1][0]
    import datetime as dt

    resolved_at = dt.datetime.fromtimestamp(T0 + 3 * HOUR + 1, tz=dt.UTC)
    assert last_am["endsAt"] == resolved_at.isoformat().replace("+00:00", "Z")
    assert am[1][0]["endsAt"] > am[0][0]["endsAt"]  # each heartbeat pushes expiry ahead
    assert store.list_alerts("p", model="m")[0]["status"] == "resolved"
    store.close()


def test_scheduler_thread_starts_and_stops(tmp_path: Path) -> None:
    from watchkeeper.store import Store

    store = Store(str(tmp_path / "wk.db"))
    s = Scheduler(store, interval=0.05).start()
    s.stop(timeout=5)
    assert s._thread is None
    with pytest.raises(ValueError, match="interval"):
        Scheduler(store, interval=0).start()
    store.close()
