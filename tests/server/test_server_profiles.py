"""POST /v1/models/{model}/profiles:check: a batch job's profile checked and stored; bad input."""

from __future__ import annotations

import numpy as np
from server_fixtures import Api

from watchkeeper.profiles import profile
from watchkeeper.window import Window


def test_profile_check_stores_findings(api: Api) -> None:
    rng = np.random.default_rng(4)
    ref = Window.from_columns(features={"x": rng.normal(size=3000),
                                        "c": rng.choice(["a", "b"], 3000)})
    api.store.put_reference(api.project, "m", None, ref, profile(ref).to_dict())
    day = profile({"x": rng.normal(1.0, 1.0, 4000), "c": rng.choice(["a", "b", "z"], 4000)})
    body = {"profile": day.to_dict(), "start": 1_700_000_000.0, "end": 1_700_086_400.0,
            "partition": "2023-11-14"}
    url = "/v1/models/m/profiles:check"
    assert api.client.post(url, json=body, headers=api.h(api.read)).status_code == 403
    r = api.client.post(url, json=body, headers=api.h(api.ingest))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["rows"] == 4000 and out["stored"] == len(out["findings"])
    drifted = {(f["check"], f["subject"]) for f in out["findings"] if f["drift"]}
    assert {("feature_drift", "x"), ("data_quality.new_category", "c")} <= drifted
    stored = api.store.list_findings(api.project, "m")
    assert len(stored) == out["stored"]
    assert all(f["window_start"] == 1_700_000_000.0 for f in stored)
    r = api.client.post(url + "?dry_run=true", json=body, headers=api.h(api.ingest))
    assert r.json()["stored"] == 0
    assert len(api.store.list_findings(api.project, "m")) == len(stored)


def test_profile_check_bad_input(api: Api) -> None:
    rng = np.random.default_rng(5)
    ref = Window.from_columns(features={"x": rng.normal(size=100)})
    api.store.put_reference(api.project, "m", None, ref, profile(ref).to_dict())
    h = api.h(api.ingest)
    url = "/v1/models/m/profiles:check"
    r = api.client.post(url, json={"profile": 3}, headers=h)
    assert r.status_code == 422 and "profile" in r.json()["detail"]
    r = api.client.post(url, json={"profile": {"features": {}}}, headers=h)
    assert r.status_code == 422 and "profile" in r.json()["detail"]
    good = profile({"x": rng.normal(size=100)}).to_dict()
    r = api.client.post(url, json={"profile": good, "start": "monday"}, headers=h)
    assert r.status_code == 422 and "start" in r.json()["detail"]
    r = api.client.post(url, json={"profile": good, "start": 10.0, "end": 5.0}, headers=h)
    assert r.status_code == 422 and "start" in r.json()["detail"]
    r = api.client.post("/v1/models/ghost/profiles:check", json={"profile": good}, headers=h)
    assert r.status_code == 404
    assert api.store.list_findings(api.project, "m") == []
