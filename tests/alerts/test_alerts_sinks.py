"""Sinks against real receivers on 127.0.0.1: an HTTP server, aiosmtpd, and Alertmanager."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from watchkeeper.alerts import (
    AlertEngine,
    AlertEvent,
    AlertmanagerSink,
    SlackSink,
    SmtpSink,
    WebhookSink,
    deliver,
    sink_from_dict,
    validate_alerting,
)

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


@pytest.fixture(autouse=True)
def operator_allows_local_receivers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receivers here listen on 127.0.0.1: the operator lists it exactly, and the one
    secret variable the webhook uses."""
    monkeypatch.setenv("WATCHKEEPER_SINK_HOSTS", "127.0.0.1")
    monkeypatch.setenv("WATCHKEEPER_SINK_SECRET_ENV", "WK_TEST_TOKEN")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _events(kind: str = "firing") -> list[AlertEvent]:
    engine = AlertEngine([{"name": "data_drift", "checks": ["feature_drift"]}])
    findings = [{"check": "feature_drift", "subject": f"x{i}", "drift": True} for i in range(3)]
    ev = engine.evaluate(findings, now=time.time() - 60, model="fraud", project="p")
    assert ev.events and ev.events[0].kind == "firing"
    return [AlertEvent(kind, {**ev.events[0].alert, "status": kind})]


@pytest.fixture
def http_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(
                {"path": self.path, "body": json.loads(body), "auth": self.headers["Authorization"]}
            )
            self.send_response(200 if self.path != "/fail" else 500)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_webhook_and_slack(
    http_receiver: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = http_receiver
    monkeypatch.setenv("WK_TEST_TOKEN", "Bearer s3cret")
    hook = WebhookSink(url + "/hook", headers_env={"Authorization": "WK_TEST_TOKEN"})
    hook.send(_events())
    body = received[-1]["body"]
    assert received[-1]["auth"] == "Bearer s3cret"
    assert body["version"] == 1 and body["events"][0]["alert"]["subjects"] == ["x0", "x1", "x2"]
    SlackSink(url + "/slack").send(_events("resolved"))
    slack = received[-1]["body"]
    assert slack["text"].startswith("[RESOLVED] data_drift on fraud")
    assert slack["blocks"][0]["type"] == "section"
    n = len(received)
    hook.send(_events("refresh"))  # heartbeats are for Alertmanager only
    assert len(received) == n
    # A failing sink is reported, and the others still get their events.
    status = deliver([WebhookSink(url + "/fail", name="bad"), hook], _events())
    assert status["bad"] is not None and "500" in status["bad"] and status["webhook"] is None


def test_smtp_with_aiosmtpd() -> None:
    pytest.importorskip("aiosmtpd")
    from aiosmtpd.controller import Controller

    messages: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            messages.append(envelope)
            return "250 OK"

    port = _free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        sink = SmtpSink(
            "127.0.0.1", port, sender="wk@example.org", recipients=["oncall@example.org"]
        )
        sink.send(_events())
    finally:
        controller.stop()
    (env,) = messages
    assert env.rcpt_tos == ["oncall@example.org"]
    text = env.content.decode()
    assert "Subject: [watchkeeper] 1 firing, 0 resolved: data_drift" in text
    assert "subjects: x0, x1, x2" in text


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    if not Path(ALERTMANAGER).exists() and shutil.which("prometheus-alertmanager") is None:
        pytest.skip("prometheus-alertmanager is not installed")
    port = _free_port()
    config = tmp_path / "am.yml"
    config.write_text(
        "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n"
    )
    proc = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip: one instance, ready at once
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(url + "/-/ready", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("Alertmanager did not become ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _am_alerts(url: str, active: bool) -> list[dict[str, Any]]:
    params = {"active": str(active).lower(), "silenced": "false", "inhibited": "false"}
    if not active:
        params["unprocessed"] = "false"
    response = httpx.get(url + "/api/v2/alerts", params=params, timeout=5)
    response.raise_for_status()
    return list(response.json())


def test_alertmanager_fire_refresh_resolve(alertmanager: str) -> None:
    sink = AlertmanagerSink(alertmanager, ttl=120, labels={"team": "risk"})
    now = time.time()
    sink.send(_events(), now=now)
    (alert,) = _am_alerts(alertmanager, active=True)
    assert alert["labels"]["alertname"] == "data_drift"
    assert alert["labels"]["model"] == "fraud" and alert["labels"]["team"] == "risk"
    assert alert["status"]["state"] == "active"
    first_end = alert["endsAt"]
    # Re-posting a firing alert pushes its expiry forward instead of letting it lapse.
    sink.send(_events("refresh"), now=now + 60)
    (alert,) = _am_alerts(alertmanager, active=True)
    assert alert["endsAt"] > first_end
    # Resolving sets endsAt to now: the alert is no longer active.
    sink.send(_events("resolved"), now=time.time())
    deadline = time.time() + 5
    while time.time() < deadline and _am_alerts(alertmanager, active=True):
        time.sleep(0.1)
    assert _am_alerts(alertmanager, active=True) == []


def test_sink_configuration_errors() -> None:
    with pytest.raises(ValueError, match="url"):
        sink_from_dict({"type": "webhook", "url": "ftp://x"}).validate()
    with pytest.raises(ValueError, match="recipients"):
        sink_from_dict({"type": "smtp", "host": "h"}).validate()
    with pytest.raises(ValueError, match="webhook: "):
        sink_from_dict({"type": "webhook", "url": "http://x", "colour": 1})
    with pytest.raises(ValueError, match=r"rules\[0\]\.sinks"):
        validate_alerting(
            [{"name": "r", "sinks": ["pager"]}], [{"type": "webhook", "url": "http://127.0.0.1"}]
        )
