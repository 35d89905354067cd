"""The document-fraud scenario end to end, smaller: SDK -> server -> store -> runner -> webhook."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest

pytest.importorskip("torch")

from rich.console import Console

from watchkeeper.demo.scenario import DemoConfig, run_demo


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> object:
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    out = io.StringIO()
    res = run_demo(
        DemoConfig(days=6, db=db, n_train=2000, n_val=1500, epochs=4, volume=600, seed=7,
                   label_delay=1),
        console=Console(file=out, width=120),
    )
    res.narrative = out.getvalue()  # type: ignore[attr-defined]
    return res


@pytest.mark.slow
def test_story_of_the_days(result: object) -> None:
    r = result
    days = {d.day: d for d in r.days}  # type: ignore[attr-defined]
    assert [d.act for d in days.values()][:5] == [
        "normal", "twice the photocopies", "normal", "new scanner", "new scanner"
    ]
    # Normal days: the count is what the operating point promises (a day may fall just outside
    # the 95% band by chance, which the check at alpha = 0.01 allows), the scores fit validation.
    for d in (days[1], days[3]):
        assert d.count_verdict == "as_expected", d
        assert d.low - 5 <= d.flags <= d.high + 5, d
        assert d.verdict == "as_expected"
    # Twice the photocopies: out of the band, a prior shift at about 20%.
    assert days[2].flags > days[2].high
    assert days[2].verdict == "prior_shift"
    assert days[2].prevalence_low <= 0.2 <= days[2].prevalence_high
    assert abs(days[2].prevalence - 0.2) < 0.05
    # The new scanner: out of the band, a model or data change, colour and embeddings drift.
    for d in (days[4], days[5]):
        assert d.flags > d.high
        assert d.verdict == "model_change"
        assert "colourfulness" in d.drifted_features
        assert d.embedding_drift is True


@pytest.mark.slow
def test_alerts_labels_and_where_things_are(result: object) -> None:
    r = result
    days = {d.day: d for d in r.days}  # type: ignore[attr-defined]
    assert importlib.util.find_spec("watchkeeper.runner") is not None
    # An alert about the operating point reached the webhook once the scanner changed things.
    scanner_alerts = days[4].alerts + days[5].alerts
    assert any("operating_point" in a for a in scanner_alerts), scanner_alerts
    assert r.alerts  # type: ignore[attr-defined]
    # Late labels: the normal day's realised precision agrees with the label-free estimate.
    d1 = days[1]
    assert d1.labels > 50 and d1.realised["precision"]["value"] > 0.5
    assert d1.agrees is True
    # On the scanner's first day, the late labels show the loss the monitors saw without them.
    assert days[4].realised and days[4].agrees is True
    # Everything is in the SQLite file, and the narrative says where.
    db = Path(r.db)  # type: ignore[attr-defined]
    assert db.exists()
    from watchkeeper.store import Store

    checks = {f["check"] for f in Store(f"sqlite:///{db}").list_findings("demo", "document-fraud")}
    assert {"operating_point", "feature_drift", "embedding_drift", "shift_diagnosis"} <= checks
    text = r.narrative  # type: ignore[attr-defined]
    assert str(db) in text and "Webhook received" in text and "tensorboard --logdir" in text


@pytest.mark.slow
def test_the_loop_closes(result: object) -> None:
    """The scanner days' model change starts the loop; the fine-tuned challenger passes the
    gate and the shadow test, is promoted, and the days it serves are as expected against its
    own operating point and reference; the prior-shift day queued nothing."""
    r = result
    loop = r.loop  # type: ignore[attr-defined]
    assert loop["prior_shift_job"] is None  # the loop queued no job at the prior-shift day
    from watchkeeper.store import Store

    store = Store(f"sqlite:///{r.db}")  # type: ignore[attr-defined]
    jobs = store.list_jobs("demo")
    assert len(jobs) == 1 and jobs[0]["state"] == "succeeded"  # the scanner days' job only
    assert jobs[0]["trigger"]["fired"][0]["verdict"] == "model_change"
    assert loop["job"] == "succeeded"
    gate = loop["gate"]
    assert set(gate["sets"]) == {"validation", "recent"}
    assert gate["passed"], gate
    assert loop["shadow"]["n_paired"] > 0.9 * loop["shadow"]["n_champion"]
    assert loop["shadow"]["decision"] == "promote"
    assert loop["promoted"] == "cnn-v2"
    assert store.get_alias("demo", "document-fraud", "champion") == "cnn-v2"
    v2 = store.get_model_version("demo", "document-fraud", "cnn-v2")
    assert v2["lineage"]["parent"] == "cnn-v1"
    # cnn-v2 is monitored against its own operating point and reference (recent faded scans)
    v1 = store.get_model_version("demo", "document-fraud", "cnn-v1")
    assert v2["operating_point"]["threshold"] != v1["operating_point"]["threshold"]
    ref = store.get_reference("demo", "document-fraud", "cnn-v2")
    assert all(str(i).startswith("recent:") for i in ref.ids)
    after = [d for d in r.days if d.act == "new scanner, cnn-v2 champion"]  # type: ignore[attr-defined]
    assert after and [a["day"] for a in loop["after"]] == [d.day for d in after]
    for d in after:
        assert d.verdict == "as_expected", d
        assert d.count_verdict == "as_expected", d
    assert loop["watch"] == "confirmed"
    assert 1 <= loop["shadow_days"] <= 3
    assert set(loop["timings"]) >= {"dataset and training job", "gate", "shadow",
                                    "promotion and the days after"}
    assert {"training and operating point", "the days"} <= set(r.timings)  # type: ignore[attr-defined]
    store.close()


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="days"):
        DemoConfig(days=0).resolved()
    with pytest.raises(ValueError, match="volume"):
        DemoConfig(volume=10).resolved()
    with pytest.raises(ValueError, match="epochs"):
        DemoConfig(epochs=-1).resolved()
    existing = tmp_path / "mine.db"
    existing.write_text("precious")
    with pytest.raises(ValueError, match=r"db: .* exists"):
        run_demo(DemoConfig(days=1, db=existing, n_train=500, n_val=500, epochs=1),
                 console=Console(file=io.StringIO()))
    assert existing.read_text() == "precious"


def test_schedule_has_every_act() -> None:
    acts = [d["act"] for d in DemoConfig(days=10).resolved().schedule()]
    assert acts.count("twice the photocopies") == 1 and acts[0] == "normal"
    assert acts[-1] == "new scanner" and acts.index("new scanner") > acts.index(
        "twice the photocopies")


def test_cli_refuses_an_existing_db_at_once(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from watchkeeper.cli import create_app

    existing = tmp_path / "mine.db"
    existing.write_text("precious")
    result = CliRunner().invoke(create_app(), ["demo", "--db", str(existing), "--days", "1"])
    assert result.exit_code == 2
    assert "exists" in result.output and existing.read_text() == "precious"


@pytest.mark.slow
def test_the_console_shows_the_faded_scans_in_two_clicks(result: object) -> None:
    import re

    from fastapi.testclient import TestClient

    from watchkeeper.payloads import PayloadStore, default_root
    from watchkeeper.server import Settings, create_app
    from watchkeeper.store import Store

    db = str(result.db)  # type: ignore[attr-defined]
    store = Store(db)
    token = store.create_token("demo", {"read"})
    app = create_app(Settings(system_metrics=False, db=db), store=store)
    with TestClient(app, follow_redirects=False) as client:
        client.post("/ui/login", data={"token": token})
        home = client.get("/ui/").text
        alert = re.search(r'class="alert-link" href="([^"]+)"', home)
        assert alert is not None, "no firing alert on the overview"
        page = client.get(alert.group(1)).text
        link = re.search(r'class="samples-link" href="([^"]+)"', page)
        assert link is not None
        samples = client.get(client.get(link.group(1)).headers["location"]).text
        digests = re.findall(r'src="/ui/payloads/([0-9a-f]{64})"', samples)
        assert digests
        got = client.get(f"/ui/payloads/{digests[0]}")
        assert got.status_code == 200 and got.content[:2] == b"\xff\xd8"
    rows = store.sample_page("demo", "document-fraud", limit=5).rows
    ref = rows[0]["tags"]["payload_ref"]
    assert PayloadStore(default_root(db)).get("demo", ref) is not None
    store.close()
