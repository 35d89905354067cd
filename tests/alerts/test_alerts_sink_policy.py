"""The operator decides where sinks send and which secrets they read; a project admin learns
nothing about the server's environment, at configuration time or from a run's errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from watchkeeper.alerts import (
    AlertEvent,
    SinkPolicy,
    SmtpSink,
    WebhookSink,
    deliver,
    sink_from_dict,
    validate_alerting,
)

HOUR = 3600.0
T0 = 1_700_000_000.0 - (1_700_000_000.0 % HOUR)


def _event() -> list[AlertEvent]:
    return [AlertEvent("firing", {"rule": "r", "model": "m", "severity": "warning"})]


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[Any]]]:
    got: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((dict(self.headers), json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", got
    server.shutdown()
    server.server_close()


def test_a_secret_variable_must_be_on_the_operators_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WK_EXISTS", "top secret")
    monkeypatch.delenv("WK_ABSENT", raising=False)
    policy = SinkPolicy.parse("hooks.example.org", "SLACK_TOKEN")
    errors = []
    for var in ("WK_EXISTS", "WK_ABSENT"):
        for sink in (
            {"type": "webhook", "url": "https://hooks.example.org/x",
             "headers_env": {"Authorization": var}},
            {"type": "smtp", "host": "hooks.example.org", "recipients": ["a@b.c"],
             "username": "u", "password_env": var},
        ):  # fmt: skip
            with pytest.raises(ValueError) as info:
                validate_alerting([], [sink], policy)
            errors.append(str(info.value).replace(var, "VAR"))
    # The same words whether the variable exists or not: nothing to learn by trying names.
    assert errors[0] == errors[2] and errors[1] == errors[3]
    assert "sinks[0]: headers_env.Authorization:" in errors[0]
    assert "WATCHKEEPER_SINK_SECRET_ENV" in errors[0] and "password_env" in errors[1]
    validate_alerting(
        [], [{"type": "webhook", "url": "https://hooks.example.org/x",
              "headers_env": {"Authorization": "SLACK_TOKEN"}}], policy,
    )  # fmt: skip


def test_send_time_errors_do_not_reveal_a_variable(
    receiver: tuple[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, got = receiver
    monkeypatch.setenv("WK_EXISTS", "top secret")
    monkeypatch.setenv("WK_ALLOWED", "Bearer ok")
    monkeypatch.delenv("WK_ABSENT", raising=False)
    monkeypatch.delenv("WK_ALLOWED_UNSET", raising=False)
    policy = SinkPolicy.parse(address, "WK_ALLOWED,WK_ALLOWED_UNSET")
    texts = {}
    for var in ("WK_EXISTS", "WK_ABSENT", "WK_ALLOWED_UNSET"):
        sink = WebhookSink(f"http://{address}/h", headers_env={"X-Token": var}).with_policy(policy)
        status = deliver([sink], _event())
        texts[var] = str(status["webhook"]).replace(var, "VAR")
    assert texts["WK_EXISTS"] == texts["WK_ABSENT"] == texts["WK_ALLOWED_UNSET"]
    assert "top secret" not in json.dumps(texts) and got == []
    ok = WebhookSink(f"http://{address}/h", headers_env={"X-Token": "WK_ALLOWED"})
    assert deliver([ok.with_policy(policy)], _event()) == {"webhook": None}
    assert got[-1][0]["X-Token"] == "Bearer ok"


def test_destinations_come_from_the_operators_list() -> None:
    policy = SinkPolicy.parse("hooks.example.org, *.corp.example, smtp.example.org:587", "")
    policy.check_url("https://hooks.example.org/x", "url", resolve=False)
    policy.check_url("https://a.corp.example/x", "url", resolve=False)
    policy.check_host("smtp.example.org", 587, "host", resolve=False)
    for url in ("https://evil.example/x", "https://corp.example.evil/x"):
        with pytest.raises(ValueError, match=r"url: host .* \(WATCHKEEPER_SINK_HOSTS\)"):
            policy.check_url(url, "url", resolve=False)
    with pytest.raises(ValueError, match=r"host: host 'smtp\.example\.org'"):
        policy.check_host("smtp.example.org", 25, "host", resolve=False)
    with pytest.raises(ValueError, match="sinks\\[0\\]: url"):
        validate_alerting([], [{"type": "slack", "url": "https://evil.example/x"}], policy)
    with pytest.raises(ValueError, match="sinks\\[0\\]: host"):
        validate_alerting([], [{"type": "smtp", "host": "mail.evil", "recipients": ["a@b.c"]}],
                          policy)  # fmt: skip
    # No list at all: nothing is allowed.
    with pytest.raises(ValueError, match="WATCHKEEPER_SINK_HOSTS"):
        SinkPolicy().check_url("https://hooks.example.org/x", "url", resolve=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8000/",
        "http://[::1]/",
        "http://10.0.0.7/",
        "http://192.168.1.1/",
        "http://localhost:9000/",
        "http://[::ffff:169.254.169.254]/",
        "http://0.0.0.0/",
    ],
)
def test_internal_addresses_need_an_exact_entry(url: str) -> None:
    with pytest.raises(ValueError, match="url: host"):
        SinkPolicy.parse("*", "").check_url(url, "url", resolve=False)
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    exact = SinkPolicy.parse(f"[{parts.hostname}]" if ":" in str(parts.hostname)
                             else str(parts.hostname), "")  # fmt: skip
    exact.check_url(url, "url", resolve=False)


def test_a_wildcard_name_that_resolves_inside_is_refused_at_send_time() -> None:
    policy = SinkPolicy.parse("*.example.org", "")
    inside = lambda host, port: ["169.254.169.254"]  # noqa: E731
    outside = lambda host, port: ["93.184.216.34"]  # noqa: E731
    policy.check_url("https://hooks.example.org/x", "url", resolve=False)  # config time
    with pytest.raises(ValueError, match="resolves to an internal address"):
        policy.check_url("https://hooks.example.org/x", "url", resolve=inside)
    policy.check_url("https://hooks.example.org/x", "url", resolve=outside)


def test_the_policy_cannot_come_from_a_configuration() -> None:
    with pytest.raises(ValueError, match="policy"):
        sink_from_dict({"type": "webhook", "url": "https://x.org", "policy": {"hosts": ["*"]}})


def test_smtp_refused_before_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHKEEPER_SINK_HOSTS", raising=False)
    sink = SmtpSink("10.1.2.3", 25, recipients=["a@b.c"])
    status = deliver([sink], _event())
    assert "WATCHKEEPER_SINK_HOSTS" in str(status["smtp"])


def _model(tmp_path: Path, rng: np.random.Generator) -> Any:
    from watchkeeper.profiles import profile
    from watchkeeper.store import Store
    from watchkeeper.window import Window

    store = Store(str(tmp_path / "wk.db"))
    store.create_project("p")
    store.register_model_version("p", "m", "v1", window="1h")
    ref = Window.from_columns(features={"x": rng.normal(size=1000)})
    store.put_reference("p", "m", "v1", ref, profile=profile(ref).to_dict())
    for h, shift in enumerate([3.0]):
        store.log_events("p", "m", Window.from_columns(
            ids=[f"e{h}-{i}" for i in range(200)], ts=T0 + h * HOUR + np.arange(200.0),
            features={"x": rng.normal(shift, 1, 200)},
        ))  # fmt: skip
    return store


def test_http_and_cli_refuse_and_the_runner_checks_again(
    tmp_path: Path,
    rng: np.random.Generator,
    receiver: tuple[str, list[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from watchkeeper.checks import default_config
    from watchkeeper.cli import create_app as cli_app
    from watchkeeper.runner import run_monitors
    from watchkeeper.server import Settings, create_app

    address, got = receiver
    monkeypatch.setenv("WK_EXISTS", "top secret")
    monkeypatch.delenv("WATCHKEEPER_SINK_HOSTS", raising=False)
    monkeypatch.delenv("WATCHKEEPER_SINK_SECRET_ENV", raising=False)
    store = _model(tmp_path, rng)
    cfg = default_config(store.get_reference("p", "m", "v1"))
    cfg.rules = [{"name": "drift", "checks": ["feature_drift"], "subjects": ["x"]}]
    good = {"type": "webhook", "url": f"http://{address}/hook"}
    stolen = {**good, "headers_env": {"X-Leak": "WK_EXISTS"}}
    admin = {"Authorization": f"Bearer {store.create_token('p', {'admin'})}"}
    # HTTP: the server's settings hold the operator's list.
    for settings, sink, code in (
        (Settings(), good, 422),  # no list: the local receiver is refused
        (Settings(sink_hosts=address), stolen, 422),
        (Settings(sink_hosts="*"), good, 422),  # a wildcard does not reach 127.0.0.1
        (Settings(sink_hosts=address), good, 200),
    ):
        with TestClient(create_app(settings, store=store)) as client:
            reply = client.put("/v1/models/m/monitors", headers=admin,
                               json={**cfg.to_dict(), "sinks": [sink]})  # fmt: skip
        assert reply.status_code == code, (settings, sink, reply.text)
        if code == 422:
            assert "sinks[0]" in reply.text and "top secret" not in reply.text
    # CLI: the environment holds it.
    path = tmp_path / "monitors.json"
    path.write_text(json.dumps({**cfg.to_dict(), "sinks": [stolen]}))
    args = ["monitors", "set", "m", str(path), "--project", "p", "--db", str(tmp_path / "wk.db")]
    monkeypatch.setenv("WATCHKEEPER_SINK_HOSTS", address)
    out = CliRunner().invoke(cli_app(), args)
    assert out.exit_code != 0 and "headers_env.X-Leak" in out.output
    # A configuration written straight into the store is checked again when alerts are sent.
    store.put_monitor_config("p", "m", {**cfg.to_dict(), "sinks": [stolen]})
    result = run_monitors(store, "p", "m", now=T0 + HOUR + 1,
                          sink_policy=SinkPolicy.parse(address, ""))  # fmt: skip
    assert result.events and got == []
    assert "not a sink secret the operator provides" in str(result.sinks["webhook"])
    assert "top secret" not in json.dumps(result.to_dict(), default=str)
    store.close()
