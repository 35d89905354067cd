"""Explanations of a stored finding over HTTP and the CLI."""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def _seed(store: Any, project: str) -> int:
    from watchkeeper.window import Window

    rng = np.random.default_rng(4)

    def batch(n: int, shift: float, t0: float) -> Window:
        region = rng.choice(["eu", "us", "apac"], n)
        return Window.from_columns(
            ids=[f"{t0}-{i}" for i in range(n)],
            ts=t0 + np.arange(n, dtype=float),
            features={"x": rng.normal(size=n) + shift * (region == "apac"),
                      "y": rng.normal(size=n)},
            tags={"region": region},
        )  # fmt: skip

    store.register_model(project, "m")
    store.put_reference(project, "m", None, batch(1500, 0.0, 0.0))
    store.log_events(project, "m", batch(1500, 2.0, 10_000.0))
    store.add_findings(project, "m", [
        {"check": "feature_drift", "subject": "x", "drift": True,
         "window_start": 10_000.0, "window_end": 11_499.0},
        {"check": "feature_drift", "subject": "y", "drift": False},
    ])  # fmt: skip
    found = store.list_findings(project, "m")
    return int(found[0]["id"])


def test_explain_over_http(store: Any) -> None:
    from fastapi.testclient import TestClient
    from server_fixtures import unique_project

    from watchkeeper.server import Settings, create_app

    project = unique_project()
    store.create_project(project)
    fid = _seed(store, project)
    read = {"Authorization": f"Bearer {store.create_token(project, {'read'})}"}
    ingest = {"Authorization": f"Bearer {store.create_token(project, {'ingest'})}"}
    with TestClient(create_app(Settings(system_metrics=False), store=store)) as client:
        url = f"/v1/models/m/findings/{fid}"
        assert client.get(f"{url}/explanation", headers=read).status_code == 404
        assert client.post(f"{url}:explain", headers=ingest).status_code == 403
        assert client.post(f"{url}:explain").status_code == 401
        reply = client.post(f"{url}:explain", headers=read)
        assert reply.status_code == 200, reply.text
        e = reply.json()["explanation"]
        assert e["features"][0]["name"] == "x" and e["features"][0]["above_null"]
        assert (e["segments"][0]["tag"], e["segments"][0]["value"]) == ("region", "apac")
        kept = client.get(f"{url}/explanation", headers=read).json()["explanation"]
        assert kept["features"] == e["features"]
        # it is in the finding's details as well
        rows = client.get("/v1/models/m/findings", headers=read).json()["findings"]
        assert rows[0]["details"]["explanation"]["segments"][0]["value"] == "apac"
        # bad input: each named
        assert client.post("/v1/models/m/findings/0:explain", headers=read).status_code == 422
        missing = client.post("/v1/models/m/findings/999999:explain", headers=read)
        assert missing.status_code == 404 and "999999" in missing.json()["detail"]
        assert client.post(f"/v1/models/nope/findings/{fid}:explain",
                           headers=read).status_code == 404  # fmt: skip
        no_window = client.post(f"/v1/models/m/findings/{fid + 1}:explain", headers=read)
        assert no_window.status_code == 422 and "window" in no_window.json()["detail"]


def test_explain_cli(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from watchkeeper.cli import create_app
    from watchkeeper.store import Store

    db = str(tmp_path / "wk.db")
    with Store(db) as store:
        store.create_project("default")
        fid = _seed(store, "default")
    cli = create_app()
    out = CliRunner().invoke(cli, ["explain", "m", str(fid), "--db", db, "--format", "json"])
    assert out.exit_code == 0, out.output
    e = json.loads(out.output)
    assert e["features"][0]["name"] == "x" and e["segments"][0]["value"] == "apac"
    table = CliRunner().invoke(cli, ["explain", "m", str(fid), "--db", db, "--no-save"])
    assert table.exit_code == 0 and "apac" in table.output and "above null" in table.output
    bad = CliRunner().invoke(cli, ["explain", "m", "424242", "--db", db])
    assert bad.exit_code != 0 and "424242" in bad.output
    with Store(db) as store:
        assert "explanation" in store.get_finding("default", "m", fid)["details"]


def test_console_finding_view_shows_the_explanation(tmp_path: Any) -> None:
    from fastapi.testclient import TestClient

    from watchkeeper.runner import explain
    from watchkeeper.server import Settings, create_app
    from watchkeeper.store import Store

    store = Store(str(tmp_path / "wk.db"))
    store.create_project("p")
    fid = _seed(store, "p")
    token = store.create_token("p", {"read"})
    with TestClient(create_app(Settings(system_metrics=False), store=store)) as client:
        client.post("/ui/login", data={"token": token})
        before = client.get(f"/ui/models/m/findings/{fid}")
        assert before.status_code == 200 and "Not explained yet" in before.text
        assert f"watchkeeper explain m {fid}" in before.text
        explain(store, "p", "m", fid)
        page = client.get(f"/ui/models/m/findings/{fid}")
        assert page.status_code == 200
        features = page.text.split('id="explain-features"')[1].split("</table>")[0]
        assert features.index("<td>x</td>") < features.index("<td>y</td>")
        segments = page.text.split('id="explain-segments"')[1].split("</table>")[0]
        assert "<td>apac</td>" in segments.split("</tr>")[1]  # the first segment row
        assert client.get("/ui/models/m/findings/999999").status_code == 404
        model_page = client.get("/ui/models/m")
        assert f"/ui/models/m/findings/{fid}\"" in model_page.text
    store.close()
