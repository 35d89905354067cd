"""The offline report, the weak-segment search (false discoveries held, real ones found) and
the payload store."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
from console_data import MODEL, seed
from typer.testing import CliRunner

from watchkeeper.cli import create_app
from watchkeeper.payloads import MAX_PAYLOAD_BYTES, PayloadStore, payload_ref, thumbnail
from watchkeeper.store import Store
from watchkeeper.ui.segments import segment_tables, weak_segments
from watchkeeper.window import Window


def test_report_is_one_offline_file(tmp_path: Path) -> None:
    db = tmp_path / "wk.db"
    store = Store(str(db))
    s = seed(store, tmp_path / "payloads", n=120)
    store.close()
    out = tmp_path / "report.html"
    args = ["report", MODEL, "--project", s.project, "--db", str(db), "-o", str(out)]
    result = CliRunner().invoke(create_app(), args)
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert html.startswith("<!doctype html>")
    assert "Plotly" in html and 'id="chart-flags"' in html and "model_change" in html
    # nothing is fetched: no external script, style sheet or image
    markup = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    assert not re.search(r'(src|href)="(https?:)?//', markup)
    assert "<script src=" not in markup and "<link" not in markup
    assert "/ui/static" not in html
    bad = CliRunner().invoke(create_app(), [*args[:-2], "--since", "soon", "-o", str(out)])
    assert bad.exit_code == 2 and "--since" in bad.output
    missing = CliRunner().invoke(create_app(), ["report", "nope", "--db", str(db)])
    assert missing.exit_code == 2 and "not registered" in missing.output


def _window(rng: np.random.Generator, n: int, weak: float) -> Window:
    source = rng.choice(["a", "b", "c", "d"], n)
    region = rng.choice(["north", "south"], n)
    p = np.where((source == "b") & (region == "south"), 0.2 + weak, 0.2)
    scores = np.where(rng.random(n) < p, 0.9, 0.1)
    return Window.from_columns(
        scores=scores,
        tags={"source": source, "region": region},
        features={"x": rng.normal(size=n)},
    )


def test_weak_segments_find_a_real_one() -> None:
    rng = np.random.default_rng(5)
    found = weak_segments(_window(rng, 4000, 0.3), {"": 0.5})
    assert found["outcome"] == "flag"
    labels = [s["label"] for s in found["segments"]]
    assert labels and "source = b" in labels[0] and "region = south" in labels[0]


@pytest.mark.parametrize("sims", [40])
def test_weak_segments_hold_the_false_discovery_rate(sims: int) -> None:
    """Under no weak segment, some discovery happens in about alpha of the runs at most
    (Benjamini–Hochberg controls the family-wise rate under the global null)."""
    rng = np.random.default_rng(11)
    runs = [
        bool(weak_segments(_window(rng, 1500, 0.0), {"": 0.5})["segments"]) for _ in range(sims)
    ]
    assert np.mean(runs) <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / sims)


@pytest.mark.slow
def test_weak_segments_false_alarms_by_simulation() -> None:
    rng = np.random.default_rng(12)
    sims = 400
    runs = [
        bool(weak_segments(_window(rng, 1500, 0.0), {"": 0.5})["segments"]) for _ in range(sims)
    ]
    assert np.mean(runs) <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / sims)
    power = np.mean(
        [bool(weak_segments(_window(rng, 1500, 0.25), {"": 0.5})["segments"]) for _ in range(50)]
    )
    assert power >= 0.8


def test_weak_segments_bad_input() -> None:
    w = _window(np.random.default_rng(0), 100, 0.0)
    with pytest.raises(ValueError, match="min_support"):
        weak_segments(w, {}, min_support=1)
    with pytest.raises(ValueError, match="alpha"):
        weak_segments(w, {}, alpha=2.0)
    assert weak_segments(Window.from_columns(features={"x": [1.0]}), {})["segments"] == []


def test_segment_tables_mark_segments_outside_their_band() -> None:
    rows = segment_tables(_window(np.random.default_rng(1), 4000, 0.5), {"": 0.5}, 0.2)
    by = {t["name"]: {r["value"]: r for r in t["rows"]} for t in rows}
    assert by["source"]["b"]["outside"] and not by["source"]["a"]["outside"]


def test_payload_store_is_content_addressed_and_per_project(tmp_path: Path) -> None:
    store = PayloadStore(tmp_path)
    image = thumbnail(np.random.default_rng(0).random((600, 400, 3)))
    ref = store.put("p", image)
    assert ref == payload_ref(image) and store.put("p", image) == ref
    assert store.get("p", ref) == (image, "image/jpeg")
    assert store.get("q", ref) is None
    with pytest.raises(ValueError, match="payload_ref"):
        store.get("p", "sha256:../../etc/passwd")
    with pytest.raises(ValueError, match="project"):
        store.put("../x", image)
    with pytest.raises(ValueError, match="limit"):
        store.put("p", b"x" * (MAX_PAYLOAD_BYTES + 1))
    with pytest.raises(ValueError, match="media_type"):
        store.put("p", b"x", "application/x-sh")
    # a file changed on disk is never served as the payload it claims to be
    digest = ref.split(":")[1]
    (tmp_path / "p" / digest[:2] / digest).write_bytes(b"tampered")
    assert store.get("p", ref) is None


def test_payload_store_on_an_fsspec_url() -> None:
    pytest.importorskip("fsspec")  # the extra that brings remote payload stores
    store = PayloadStore(f"memory://wk-{time.time_ns()}")
    ref = store.put("p", b"a snippet", "text/plain")
    assert store.get("p", ref) == (b"a snippet", "text/plain")


def test_segments_command_stores_findings_that_open_their_samples(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from watchkeeper.server import Settings
    from watchkeeper.server import create_app as server_app

    db = tmp_path / "wk.db"
    store = Store(str(db))
    store.create_project("p")
    store.register_model_version("p", "m", "v1", operating_point={"threshold": 0.5})
    rng = np.random.default_rng(2)
    n = 2000
    src = rng.choice(["a", "b", "c"], n)
    scores = np.where(src == "c", 0.6 + 0.4 * rng.random(n), 0.7 * rng.random(n))
    now = time.time()
    store.log_events(
        "p", "m",
        Window.from_columns(ids=[f"e{i}" for i in range(n)], ts=now - 3600 + np.arange(n),
                            scores=scores, tags={"src": src}, versions=["v1"] * n),
    )  # fmt: skip
    args = ["segments", "m", "--project", "p", "--db", str(db), "--since", "2h", "--store"]
    result = CliRunner().invoke(create_app(), args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("src = c:")
    finding = store.list_findings("p", "m", check="weak_segment")[0]
    token = store.create_token("p", {"read"})
    app = server_app(Settings(system_metrics=False), store=store)
    with TestClient(app, follow_redirects=False) as client:
        client.post("/ui/login", data={"token": token})
        hop = client.get(f"/ui/models/m/findings/{finding['id']}/samples")
        assert "tag=src%3Dc" in hop.headers["location"]
        page = client.get(hop.headers["location"])
        assert page.text.count('class="sample"') == 100 and "src=a" not in page.text
    bad = CliRunner().invoke(create_app(), [*args[:-1], "--format", "xml"])
    assert bad.exit_code == 2 and "--format" in bad.output
    store.close()
