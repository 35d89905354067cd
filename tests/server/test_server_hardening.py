"""A hostile caller cannot exhaust the server, read another project's figures, stall it with an
unauthenticated body, or get a 500 from a bad query value (one test per class of fault)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest
from server_fixtures import Api

# ------------------------------------------------------------------ resource exhaustion

_BOUND_CHECK = textwrap.dedent(
    """
    import json, resource, sys, time
    from fastapi.testclient import TestClient
    from watchkeeper.server import Settings, create_app
    from watchkeeper.store import Store

    def rss_mib():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    store = Store("sqlite://")
    store.create_project("p")
    store.register_model("p", "m")
    read = {"Authorization": "Bearer " + store.create_token("p", {"read"})}
    admin = {"Authorization": "Bearer " + store.create_token("p", {"admin"})}
    client = TestClient(create_app(Settings(system_metrics=False), store=store))
    client.__enter__()
    warm = {"tpr": 0.9, "fpr": 0.02, "prevalence": 0.1, "volume": 1000, "observed": 100}
    assert client.post("/v1/tools/expect", json=warm, headers=read).status_code == 200
    client.post("/v1/models/m/monitors:run", headers=admin)
    base = rss_mib()
    # A hard ceiling, so a runaway allocation fails here instead of taking the machine down.
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as f:
        vm = next(int(l.split()[1]) for l in f if l.startswith("VmSize:")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + 1024 * 2**20, hard))
    out = []
    for method, url, body, headers in json.loads(sys.argv[1]):
        start = time.perf_counter()
        try:
            r = client.request(method, url, json=body, headers=read if headers == "read" else admin)
            status = r.status_code
        except MemoryError:
            status = "MemoryError"
        out.append([url, status, time.perf_counter() - start, rss_mib() - base])
    print(json.dumps(out))
    """
)


def test_hostile_numbers_answer_fast_with_bounded_memory() -> None:
    """Each request adds < 256 MB RSS and answers in < 2 s, in a process whose address space
    is capped (a bound check, not a benchmark)."""
    big = {"tpr": 0.9, "fpr": 0.02, "prevalence": 0.1}
    requests: list[Any] = [
        ["POST", "/v1/tools/expect", {**big, "volume": 10**18, "observed": 10**17}, "read"],
        ["POST", "/v1/tools/expect", {**big, "volume": 10**15, "observed": 10**14}, "read"],
        ["POST", "/v1/tools/expect", {**big, "volume": 10**15}, "read"],
        [
            "POST",
            "/v1/tools/expect",
            {**big, "volume": 10**12, "n_positive": 10**12, "n_negative": 1},
            "read",
        ],
        ["POST", "/v1/models/m/monitors:run?now=1e12", None, "admin"],
        ["POST", "/v1/models/m/monitors:run?now=99999999999", None, "admin"],
        ["GET", "/v1/models/m/events?start=0&end=1e11", None, "read"],
    ]
    proc = subprocess.run(
        [sys.executable, "-c", _BOUND_CHECK, json.dumps(requests)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"MALLOC_ARENA_MAX": "2", **_env()},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for url, status, seconds, grown in json.loads(proc.stdout.splitlines()[-1]):
        assert status in (200, 404, 422), (url, status)
        assert seconds < 2.0, (url, seconds)
        assert grown < 256, (url, grown)


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}


def test_numbers_past_their_bound_name_the_field(api: Api) -> None:
    h = api.h(api.read)
    base = {"tpr": 0.9, "fpr": 0.02, "prevalence": 0.1}
    for field, value in [("volume", 10**18), ("observed", 10**18), ("n_positive", 10**18)]:
        body = {**base, "volume": 1000, field: value}
        r = api.client.post("/v1/tools/expect", json=body, headers=h)
        assert r.status_code == 422, r.text
        assert field in r.json()["detail"]
    r = api.client.post(
        "/v1/models/m/monitors:run?now=1e12", headers=api.h(api.admin)
    )  # past the year 5138
    assert r.status_code == 422 and "now" in r.json()["detail"]
    wide = {"reference": {f"c{i}": [1.0] for i in range(1001)}}
    wide["current"] = wide["reference"]
    r = api.client.post("/v1/tools/drift", json=wide, headers=h)
    assert r.status_code == 422 and "reference" in r.json()["detail"]


def test_a_far_future_run_computes_only_the_windows_it_keeps() -> None:
    from watchkeeper.checks import MonitorConfig
    from watchkeeper.runner._run import MAX_WINDOWS, _time_windows

    cfg = MonitorConfig.from_dict({"window": {"kind": "time", "size": "1h"}})
    start = time.perf_counter()
    windows = _time_windows(cfg, 0.0, 1e15)
    assert time.perf_counter() - start < 0.1
    assert len(windows) == MAX_WINDOWS
    assert windows[-1][1] == 1e15 // 3600 * 3600
    assert all(b - a == 3600 for a, b in windows)
    # the ordinary case is unchanged: every closed window since the last end
    assert _time_windows(cfg, 3600.0, 4 * 3600.0 + 5) == [
        (3600.0, 7200.0),
        (7200.0, 10800.0),
        (10800.0, 14400.0),
    ]
    assert _time_windows(cfg, 3600.0, 3600.0 + 5) == []


# ------------------------------------------------------------------ /metrics and /readyz


def test_metrics_need_a_token_and_show_only_its_project(api: Api) -> None:
    from watchkeeper.server import Settings, create_app

    other = f"{api.project}x"
    api.store.create_project(other)
    api.store.register_model(other, "secret_model")
    other_ingest = api.store.create_token(other, {"ingest"})
    for project_token, model in ((api.ingest, "m"), (other_ingest, "secret_model")):
        r = api.client.post(
            f"/v1/models/{model}/events:batch",
            json={"events": [{"id": "a", "score": 0.5}]},
            headers=api.h(project_token),
        )
        assert r.status_code == 200
    assert api.client.get("/metrics").status_code == 401
    assert api.client.get("/metrics", headers=api.h("wk_nope")).status_code == 401
    assert api.client.get("/metrics", headers=api.h(api.ingest)).status_code == 403
    text = api.client.get("/metrics", headers=api.h(api.read)).text
    assert f'project="{api.project}"' in text
    assert "secret_model" not in text and f'project="{other}"' not in text
    assert "watchkeeper_system_" not in text  # the host's figures are the operator's

    from fastapi.testclient import TestClient

    public = create_app(Settings(public_metrics=True, system_metrics=False), store=api.store)
    with TestClient(public) as c:
        c.post(
            "/v1/models/secret_model/events:batch",
            json={"events": [{"id": "b", "score": 0.5}]},
            headers=api.h(other_ingest),
        )
        assert "secret_model" in c.get("/metrics").text


# ------------------------------------------------------------------ authenticate before parsing


def test_a_large_body_without_a_token_is_refused_before_it_is_read(api: Api) -> None:
    body = b'{"reference": {"x": [' + b"1.0," * (15 * 2**20 // 4) + b'1.0]}, "current": {}}'
    assert len(body) > 15 * 2**20
    start = time.perf_counter()
    r = api.client.post(
        "/v1/tools/drift", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 401
    assert time.perf_counter() - start < 1.5  # parsed first, it took 5 s
    # with a token, the tools' cap answers 413 by the Content-Length, unread
    r = api.client.post(
        "/v1/tools/drift",
        content=body,
        headers={"Content-Type": "application/json", **api.h(api.read)},
    )
    assert r.status_code == 413 and "MAX_TOOL_BODY_BYTES" in r.json()["detail"]


def test_healthz_answers_while_heavy_work_runs(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import watchkeeper.server.routers.tools as tools

    def slow(body: bytes) -> dict[str, Any]:
        time.sleep(2.0)  # stands for two seconds of CPU-bound numerics in a worker thread
        return {}

    monkeypatch.setattr(tools, "_expect", slow)
    done: list[int] = []
    worker = threading.Thread(
        target=lambda: done.append(
            api.client.post(
                "/v1/tools/expect",
                json={"tpr": 0.9, "fpr": 0.1, "prevalence": 0.1, "volume": 10},
                headers=api.h(api.read),
            ).status_code
        )
    )
    worker.start()
    time.sleep(0.3)
    waits = []
    for _ in range(5):
        start = time.perf_counter()
        assert api.client.get("/healthz").status_code == 200
        waits.append(time.perf_counter() - start)
    worker.join()
    assert done == [200]
    assert max(waits) < 1.0, waits  # blocked, each would wait out the 2 s


def test_heavy_requests_past_the_bound_get_429(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import watchkeeper.server.routers.tools as tools

    gate = threading.Event()

    def slow(body: bytes) -> dict[str, Any]:
        gate.wait(10)
        return {}

    monkeypatch.setattr(tools, "_expect", slow)
    body = {"tpr": 0.9, "fpr": 0.1, "prevalence": 0.1, "volume": 10}
    codes: list[int] = []
    threads = [
        threading.Thread(
            target=lambda: codes.append(
                api.client.post("/v1/tools/expect", json=body, headers=api.h(api.read)).status_code
            )
        )
        for _ in range(4)  # the default bound
    ]
    for t in threads:
        t.start()
    time.sleep(0.5)
    r = api.client.post("/v1/tools/expect", json=body, headers=api.h(api.read))
    gate.set()
    for t in threads:
        t.join()
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert sorted(codes) == [200] * 4


# ------------------------------------------------------------------ 422, never 500


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/v1/models/m/events?version=", "version"),
        ("/v1/models/m/events?start=inf", "start"),
        ("/v1/models/m/events?start=1e400", "start"),
        ("/v1/models/m/events?start=nan", "start"),
        ("/v1/models/m/events?end=-inf", "end"),
        ("/v1/models/m/stats?since=inf", "since"),
        ("/v1/models/m/stats?since=1e300", "since"),
        ("/v1/models/m/stats?since=-1.79e308", "since"),
        ("/v1/models/m/stats?since=NaN", "since"),
        ("/v1/models/m/metrics?since=nan", "since"),
        ("/v1/models/m/metrics?until=nan", "until"),
        ("/v1/models/m/findings?since=nan", "since"),
        ("/v1/models/m/environments?since=nan", "since"),
        ("/v1/alerts?since=nan", "since"),
        ("/v1/models/m/versions/a%00b", "path"),
        ("/v1/models/m/events?version=v%001", "version"),
    ],
)
def test_bad_query_values_are_422_naming_the_field(api: Api, url: str, field: str) -> None:
    r = api.client.get(url, headers=api.h(api.read))
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]


@pytest.mark.parametrize("now", ["nan", "inf", "-inf", "1e400"])
def test_a_run_at_no_time_is_422(api: Api, now: str) -> None:
    r = api.client.post(f"/v1/models/m/monitors:run?now={now}", headers=api.h(api.admin))
    assert r.status_code == 422 and "now" in r.json()["detail"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/models/m/events:batch", {"events": [{"id": "a\x00b", "score": 0.5}]}, "events[0].id"),
        (
            "/v1/models/m/events:batch",
            {"events": [{"id": "a", "score": 0.5, "version": "v\x001"}]},
            "events[0].version",
        ),
        (
            "/v1/models/m/events:batch",
            {"columns": {"ids": ["a"], "versions": ["v\x00"]}},
            "columns.versions[0]",
        ),
        ("/v1/models/m/labels:batch", {"ids": ["a\x00"], "labels": [1]}, "ids[0]"),
        (
            "/v1/models/m/versions",
            {"version": "v1", "data_fingerprint": "x\x00"},
            "data_fingerprint",
        ),
    ],
)
def test_nul_characters_are_422_naming_the_field(
    api: Api, path: str, body: dict[str, Any], field: str
) -> None:
    token = api.admin
    r = api.client.post(path, json=body, headers=api.h(token))
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(field), r.json()
    assert api.store.count_events(api.project, "m") == 0


# ------------------------------------------------------------------ counters count what was stored


def _sample(text: str, name: str, project: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and f'project="{project}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_counters_count_only_what_was_stored(api: Api) -> None:
    h = api.h(api.ingest)
    # overlapping batches: 0-199, 100-299, ..., each event sent twice but the first and last
    for start in range(0, 1000, 100):
        events = [
            {"id": f"e{i}", "ts": 1_800_000_000.0 + i, "score": (i % 10) / 10, "latency_ms": 5}
            for i in range(start, min(start + 200, 1001))
        ]
        r = api.client.post("/v1/models/m/events:batch", json={"events": events}, headers=h)
        assert r.status_code == 200
    ids = [f"e{i}" for i in range(0, 1000, 2)]  # 500, the fixture's batch limit
    for _ in range(3):  # the same labels three times
        body = {"ids": ids, "labels": [1] * len(ids)}
        assert api.client.post("/v1/models/m/labels:batch", json=body, headers=h).status_code == 200
    body = {"ids": ids[:10], "labels": [0] * 10}  # ten labels change
    assert api.client.post("/v1/models/m/labels:batch", json=body, headers=h).status_code == 200
    text = api.client.get("/metrics", headers=api.h(api.read)).text
    stored = api.store.count_events(api.project, "m")
    assert stored == 1001
    for name in (
        "watchkeeper_events_accepted_total",
        "watchkeeper_model_scored_total",
        "watchkeeper_model_score_count",
        "watchkeeper_model_latency_seconds_count",
    ):
        assert _sample(text, name, api.project) == stored, name
    assert _sample(text, "watchkeeper_model_flagged_total", api.project) == sum(
        1 for i in range(1001) if (i % 10) / 10 >= 0.5
    )
    assert _sample(text, "watchkeeper_labels_accepted_total", api.project) == len(ids) + 10
    assert _sample(text, "watchkeeper_label_lag_seconds_count", api.project) == len(ids) + 10


def test_event_times_are_bounded(api: Api) -> None:
    h = api.h(api.ingest)
    for body, field in [
        ({"events": [{"id": "a", "ts": 1e300}]}, "events[0].ts"),
        ({"columns": {"ids": ["a"], "ts": [-1e12]}}, "columns.ts[0]"),
    ]:
        r = api.client.post("/v1/models/m/events:batch", json=body, headers=h)
        assert r.status_code == 422 and r.json()["detail"].startswith(field), r.text
    r = api.client.post(
        "/v1/models/m/labels:batch", json={"ids": ["a"], "labels": [1], "ts": [1e200]}, headers=h
    )
    assert r.status_code == 422 and r.json()["detail"].startswith("ts[0]"), r.text


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"checks": {"embedding_drift": {"max_samples": 10**7}}}, "max_samples"),
        ({"checks": {"realised_performance": {"n_bootstrap": 10**9}}}, "n_bootstrap"),
        ({"checks": {"calibration": {"bins": 10**8}}}, "bins"),
        ({"window": {"kind": "count", "size": 10**12}}, "window.size"),
    ],
)
def test_monitor_options_that_size_work_are_bounded(
    api: Api, config: dict[str, Any], field: str
) -> None:
    r = api.client.put("/v1/models/m/monitors", json=config, headers=api.h(api.admin))
    assert r.status_code == 422 and field in r.json()["detail"], r.text
