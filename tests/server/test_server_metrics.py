"""/metrics: Prometheus names, batch-filled histograms, bounded labels; health; settings."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from server_fixtures import Api

from watchkeeper.server.metrics import ServerMetrics
from watchkeeper.server.settings import Settings
from watchkeeper.window import Window


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_after_ingest(api: Api) -> None:
    events = [
        {"id": f"e{i}", "score": s, "latency_ms": 20.0, "version": "v1"}
        for i, s in enumerate([0.1, 0.2, 0.7, 0.9])
    ]
    h = api.h(api.ingest)
    api.client.post("/v1/models/m/events:batch", json={"events": events}, headers=h)
    api.client.post("/v1/models/m/events:batch", json={"events": events[:1]}, headers=h)
    api.client.post(
        "/v1/models/m/events:batch", json={"events": [{"id": 1, "score": "x"}]}, headers=h
    )
    api.client.post(
        "/v1/models/m/events:batch",
        json={
            "columns": {"ids": ["s1"], "scores": [0.5]},
            "system": {"cpu_utilization_ratio": 0.25, "gpu0_temperature_celsius": 60.0},
        },
        headers=h,
    )
    r = api.client.get("/metrics", headers=api.h(api.read))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    s = _samples(r.text)
    pm = (("model", "m"), ("project", api.project))
    assert s[("watchkeeper_events_accepted_total", pm)] == 5
    assert s[("watchkeeper_events_duplicate_total", pm)] == 1
    assert s[("watchkeeper_model_score_count", pm)] == 5
    assert s[("watchkeeper_model_score_bucket", (("le", "0.5"), *pm))] == 3
    assert s[("watchkeeper_model_latency_seconds_count", pm)] == 4
    assert s[("watchkeeper_model_latency_seconds_sum", pm)] == pytest.approx(0.08)
    # flagged at the default threshold 0.5: 0.7, 0.9 and 0.5 out of 5
    assert s[("watchkeeper_model_flagged_total", pm)] == 3
    assert s[("watchkeeper_model_flag_rate", pm)] == pytest.approx(3 / 5)
    assert s[("watchkeeper_serving_cpu_utilization_ratio", pm)] == 0.25
    # server-wide series carry no project: only a public scrape shows them
    assert ("watchkeeper_system_memory_total_bytes", ()) not in s
    _public(api)
    s = _samples(api.client.get("/metrics").text)
    assert s[("watchkeeper_events_rejected_total", (("reason", "validation"),))] >= 1
    assert s[("watchkeeper_ingest_duration_seconds_count", (("kind", "events"),))] >= 3
    assert ("watchkeeper_system_memory_total_bytes", ()) in s
    assert s[("watchkeeper_events_accepted_total", pm)] == 5


def _public(api: Api) -> None:
    app = api.client.app
    app.state.settings = app.state.settings.with_(public_metrics=True)


def test_version_threshold_drives_flags(api: Api) -> None:
    api.store.register_model_version(
        api.project, "m", "v9", operating_point={"threshold": 0.95, "tpr": 0.9, "fpr": 0.02}
    )
    events = [{"id": f"e{i}", "score": 0.9, "version": "v9"} for i in range(4)]
    api.client.post("/v1/models/m/events:batch", json={"events": events}, headers=api.h(api.ingest))
    s = _samples(api.client.get("/metrics", headers=api.h(api.read)).text)
    pm = (("model", "m"), ("project", api.project))
    assert s[("watchkeeper_model_flagged_total", pm)] == 0


def test_promtool_accepts_exposition(api: Api, tmp_path) -> None:
    import shutil
    import subprocess

    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed")
    api.client.post(
        "/v1/models/m/events:batch",
        json={"events": [{"id": "a", "score": 0.3, "latency_ms": 1}]},
        headers=api.h(api.ingest),
    )
    text = api.client.get("/metrics", headers=api.h(api.read)).text
    out = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
    )
    # promtool lints; errors (not naming hints) make it exit non-zero
    assert out.returncode == 0, out.stdout + out.stderr


def test_model_labels_are_bounded() -> None:
    reg = CollectorRegistry()
    m = ServerMetrics(reg, max_models=2)
    w = Window.from_columns(scores=[0.1, 0.9])
    for name in ("a", "b", "c", "d"):
        m.observe_events("p", name, w, 2, 0, 0.5)
    assert (
        reg.get_sample_value(
            "watchkeeper_events_accepted_total", {"project": "_other", "model": "_other"}
        )
        == 4
    )
    assert (
        reg.get_sample_value("watchkeeper_events_accepted_total", {"project": "p", "model": "c"})
        is None
    )


def test_label_lag_histogram() -> None:
    reg = CollectorRegistry()
    m = ServerMetrics(reg)
    m.observe_labels("p", "m", 3, np.array([30.0, 120.0, 7200.0]))
    assert (
        reg.get_sample_value(
            "watchkeeper_label_lag_seconds_bucket", {"project": "p", "model": "m", "le": "300.0"}
        )
        == 2
    )
    assert (
        reg.get_sample_value("watchkeeper_labels_accepted_total", {"project": "p", "model": "m"})
        == 3
    )


def test_health_and_readiness(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert api.client.get("/readyz").json() == {"status": "ready"}


def test_readiness_fails_when_database_fails() -> None:
    from fastapi.testclient import TestClient

    from watchkeeper.server import create_app

    class Broken:
        def ping(self) -> None:
            raise ConnectionError("connection to db.internal:5432 (wk_prod) refused")

    with TestClient(create_app(Settings(system_metrics=False), store=Broken())) as c:
        r = c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["detail"] == "the database does not answer"
    # the reason stays in the server's log: hosts, ports and database names are not public
    assert "db.internal" not in r.text and "5432" not in r.text


def test_openapi_documents_bodies(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    assert "EventsBatch" in doc["components"]["schemas"]
    assert "/v1/models/{model}/events:batch" in doc["paths"]


def test_settings_from_env_and_validation() -> None:
    s = Settings.from_env({"WATCHKEEPER_MAX_BODY_BYTES": "100", "WATCHKEEPER_DB": "sqlite:///x.db"})
    assert s.max_body_bytes == 100 and s.db == "sqlite:///x.db"
    with pytest.raises(ValueError, match="WATCHKEEPER_PORT"):
        Settings.from_env({"WATCHKEEPER_PORT": "eighty"})
    with pytest.raises(ValueError, match="WATCHKEEPER_RUN_SCHEDULER"):
        Settings.from_env({"WATCHKEEPER_RUN_SCHEDULER": "maybe"})
    with pytest.raises(ValueError, match="max_batch_events"):
        Settings(max_batch_events=0).validate()
    with pytest.raises(ValueError, match="flag_threshold"):
        Settings(flag_threshold=2).validate()


def test_startup_hooks_run_and_stop(api: Api) -> None:
    from fastapi.testclient import TestClient

    from watchkeeper.server import create_app

    calls: list[str] = []

    def hook(store: object) -> object:
        calls.append("start")
        return lambda: calls.append("stop")

    app = create_app(Settings(startup_hooks=(hook,), system_metrics=False), store=api.store)
    with TestClient(app):
        assert calls == ["start"]
    assert calls == ["start", "stop"]


def test_scheduler_hook_starts_runner(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from fastapi.testclient import TestClient

    from watchkeeper.server import create_app

    events: list[tuple[str, float]] = []

    class Scheduler:
        def __init__(
            self, store: object, interval: float, sink_policy: object = None,
            after_run: object = None,
        ) -> None:
            self.interval = interval
            assert callable(after_run)  # the retraining loop's step (WATCHKEEPER_RUN_LOOP)

        def start(self) -> None:
            events.append(("start", self.interval))

        def stop(self) -> None:
            events.append(("stop", self.interval))

    fake = types.ModuleType("watchkeeper.runner")
    fake.Scheduler = Scheduler  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "watchkeeper.runner", fake)
    settings = Settings(run_scheduler=True, scheduler_interval=7.0, system_metrics=False)
    with TestClient(create_app(settings, store=api.store)):
        assert events == [("start", 7.0)]
    assert events == [("start", 7.0), ("stop", 7.0)]


def test_monitor_collector_is_exposed(api: Api) -> None:
    pytest.importorskip("watchkeeper.runner")
    _public(api)
    text = api.client.get("/metrics").text
    assert "# TYPE watchkeeper_alerts_firing gauge" in text


def test_serving_system_figures_are_stored(api: Api) -> None:
    body = {
        "columns": {"ids": ["a"], "scores": [0.5]},
        "system": {"cpu_utilization_ratio": 0.4, "memory_used_bytes": 1.0e9},
    }
    r = api.client.post("/v1/models/m/events:batch", json=body, headers=api.h(api.ingest))
    assert r.status_code == 200
    values = api.store.list_metric_values(api.project, "m", name="serving_cpu_utilization_ratio")
    assert [v["value"] for v in values] == [0.4]
    assert values[0]["labels"] == {"source": "serving"}
