"""Nothing lost, nothing counted twice, bad input refused: real processes, real databases."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import numpy as np
import pytest
from reliability_fixtures import ServerProcess, Setup

from watchkeeper.sdk import Client


def _batch(start: int, n: int) -> dict[str, Any]:
    ids = [f"e{i}" for i in range(start, start + n)]
    return {
        "columns": {
            "ids": ids,
            "ts": [1_700_000_000.0 + i for i in range(start, start + n)],
            "scores": [((i * 7) % 100) / 100 for i in range(start, start + n)],
            "features": {"x": [float(i) for i in range(start, start + n)]},
        }
    }


def test_kill9_mid_stream_keeps_every_acknowledged_event(setup: Setup) -> None:
    server = setup.server()
    server.start()
    headers = {"Authorization": f"Bearer {setup.token}"}
    acked: list[int] = []
    sent: list[int] = []
    stop = threading.Event()

    def stream() -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=5) as http:
            k = 0
            while not stop.is_set():
                sent.append(k)
                try:
                    r = http.post("/v1/models/m/events:batch", json=_batch(k * 200, 200))
                except httpx.HTTPError:
                    return  # the server died with this batch in flight
                if r.status_code == 200:
                    acked.append(k)
                k += 1

    t = threading.Thread(target=stream)
    t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill9()  # mid-stream: a batch is very likely in flight
    time.sleep(0.2)
    stop.set()
    t.join(10)
    assert len(acked) >= 5
    server.start()
    try:
        ids_present = set(
            setup.store.read_window(setup.project, "m", last_n=len(sent) * 200 + 10).ids.tolist()
        )
        for k in acked:
            assert {f"e{i}" for i in range(k * 200, k * 200 + 200)} <= ids_present
        # replay every batch sent (what an SDK does with the unacknowledged ones): the store
        # ends with each event exactly once
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
            duplicates = 0
            for k in sent:
                r = http.post("/v1/models/m/events:batch", json=_batch(k * 200, 200))
                assert r.status_code == 200, r.text
                duplicates += r.json()["duplicates"]
        assert duplicates >= len(acked) * 200
        assert setup.count() == len(sent) * 200
    finally:
        server.stop()


def test_sdk_replays_what_a_killed_server_did_not_acknowledge(setup: Setup) -> None:
    server = setup.server()
    server.start()
    client = Client(server.url, setup.token, spool_dir=setup.tmp / "spool", batch_size=250,
                    flush_interval=0.05, retry_base=0.1, retry_max=0.5)  # fmt: skip
    n = 3000
    try:
        for i in range(n):
            client.log("m", id=f"s{i}", score=(i % 10) / 10, features={"x": float(i)})
            if i == n // 3:
                time.sleep(0.3)  # let some batches land, then pull the plug
                server.kill9()
            if i % 500 == 0:
                time.sleep(0.01)
        time.sleep(0.5)
        server.start()
        assert client.flush(timeout=60), client.last_error
    finally:
        client.close(timeout=5)
        server.stop()
    assert client.stats["retries"] > 0  # the kill did interrupt delivery
    assert setup.count() == n  # every event present, none twice
    assert client.stats["accepted"] <= n
    assert client.stats["accepted"] + client.stats["duplicates"] >= n


def test_sdk_spools_while_the_server_is_down_then_delivers(setup: Setup) -> None:
    server = setup.server()
    client = Client(server.url, setup.token, spool_dir=setup.tmp / "spool", batch_size=100,
                    flush_interval=0.05, retry_base=0.1, retry_max=0.5)  # fmt: skip
    try:
        client.log_batch("m", ids=[f"d{i}" for i in range(700)], scores=np.full(700, 0.4),
                         embeddings=np.ones((700, 8), dtype=np.float32))  # fmt: skip
        for i in range(300):
            client.log("m", id=f"r{i}", score=0.6)
        time.sleep(0.5)  # down for a while
        assert client.stats["spooled_events"] > 0
        assert setup.count() == 0
        server.start()
        assert client.flush(timeout=60), client.last_error
    finally:
        client.close(timeout=5)
        server.stop()
    assert setup.count() == 1000
    w = setup.store.read_window(setup.project, "m", last_n=2000)
    assert w.embeddings is not None
    assert np.isnan(w.embeddings[np.isin(w.ids, [f"r{i}" for i in range(300)])]).all()


BAD: list[tuple[str, Any, int, str]] = [
    ("malformed JSON", b'{"events": [{"id": "x", ', 422, "Invalid JSON"),
    ("wrong type", {"events": [{"id": "x"}, {"id": "y", "score": "high"}]}, 422, "events[1].score"),
    ("NaN score", b'{"events": [{"id": "x", "score": NaN}]}', 422, "events[0].score"),
    ("negative latency", {"events": [{"id": "x", "latency_ms": -1}]}, 422, "events[0].latency_ms"),
    ("ragged columns", {"columns": {"ids": ["x", "y"], "scores": [0.1]}}, 422, "columns.scores"),
    ("too many events", {"columns": {"ids": [f"t{i}" for i in range(60)]}}, 413, "limit of 50"),
    ("oversized body", {"events": [{"id": "x", "payload_ref": "z" * 300_000}]}, 413, "bytes"),
    ("unknown field", {"events": [{"id": "x", "scroe": 0.3}]}, 422, "events[0].scroe"),
]


def test_bad_batches_are_refused_and_change_nothing(setup: Setup) -> None:
    # The rejection counter has no project label, so only the operator's public view shows it.
    server: ServerProcess = setup.server(
        WATCHKEEPER_MAX_BATCH_EVENTS="50", WATCHKEEPER_MAX_BODY_BYTES="200000",
        WATCHKEEPER_PUBLIC_METRICS="1",
    )
    server.start()
    headers = {"Authorization": f"Bearer {setup.token}"}
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
            r = http.post("/v1/models/m/events:batch", json=_batch(0, 40))
            assert r.status_code == 200
            before = setup.store.read_window(setup.project, "m", last_n=1000)
            for name, body, status, needle in BAD:
                if isinstance(body, bytes):
                    r = http.post("/v1/models/m/events:batch", content=body)
                else:
                    r = http.post("/v1/models/m/events:batch", json=body)
                assert r.status_code == status, (name, r.text)
                assert needle in r.json()["detail"], (name, r.json())
            r = http.post("/v1/models/ghost/events:batch", json=_batch(0, 1))
            assert r.status_code == 404
            r = http.post(
                "/v1/models/m/events:batch",
                json=_batch(0, 1),
                headers={"Authorization": "Bearer x"},
            )
            assert r.status_code == 401
            # the server still works, and what was stored is unchanged
            assert http.get("/readyz").status_code == 200
            after = setup.store.read_window(setup.project, "m", last_n=1000)
            order_b, order_a = np.argsort(before.ids), np.argsort(after.ids)
            assert after.ids[order_a].tolist() == before.ids[order_b].tolist()
            np.testing.assert_array_equal(after.scores[order_a], before.scores[order_b])
            metrics = http.get("/metrics").text
            assert 'watchkeeper_events_rejected_total{reason="validation"}' in metrics
    finally:
        server.stop()


@pytest.mark.parametrize("scopes", [["ingest", "read"]])
def test_cli_token_create(db_url: str, tmp_path: Any, scopes: list[str]) -> None:
    import subprocess
    import sys

    store_mod = pytest.importorskip("watchkeeper.store")
    project = f"cli-{time.time_ns()}"
    args = [sys.executable, "-m", "watchkeeper", "token", "create", project, "--db", db_url]
    for s in scopes:
        args += ["--scope", s]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    store = store_mod.Store(db_url)
    found = store.authenticate(token)
    assert found is not None and found[0] == project and set(found[1]) == set(scopes)
    bad = subprocess.run(
        [*args[:-2], "--scope", "root"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode != 0 and "root" in bad.stderr


def test_sdk_flushes_at_exit(setup: Setup) -> None:
    import subprocess
    import sys

    server = setup.server()
    server.start()
    script = (
        "import watchkeeper, sys\n"
        f"c = watchkeeper.Client({server.url!r}, {setup.token!r},"
        f" spool_dir={str(setup.tmp / 'x')!r}, flush_interval=60, system_metrics=False)\n"
        "for i in range(250):\n"
        "    c.log('m', id=f'x{i}', score=0.5)\n"
        "sys.exit(0)  # no flush, no close: the exit hook delivers\n"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert setup.count() == 250
    finally:
        server.stop()
