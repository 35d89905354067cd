"""AWE: accuracy-weighted ensembles of recent versions (weights, drift simulation, plan, job)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from awe_members import save, score
from loop_fixtures import DAY, T0

from watchkeeper.loop import (
    MaintenancePlan,
    WeightedEnsemble,
    awe_weights,
    fit_awe,
    load_ensemble,
    register_awe,
)
from watchkeeper.loop._jobs import run_job
from watchkeeper.loop._plan import put_plan
from watchkeeper.loop._triggers import maybe_retrain
from watchkeeper.window import Window


def test_weights_are_random_mse_minus_member_mse() -> None:
    y = np.array([1, 0, 0, 0])  # prevalence 1/4: MSE_r = 3/16
    s = np.array([0.7, 0.2, 0.1, 0.4])
    w = awe_weights(y, {"m": s})["m"]
    assert w == pytest.approx(3 / 16 - np.mean((y - s) ** 2))
    # a constant guess at the prevalence is the random model: weight zero
    assert awe_weights(y, {"prior": np.full(4, 0.25)})["prior"] == pytest.approx(0.0)


def _logistic(x: np.ndarray, y: np.ndarray, iters: int = 25) -> np.ndarray:
    """Newton's method for a logistic regression with intercept (a small ridge keeps it
    finite on separable chunks)."""
    X = np.column_stack([np.ones(len(x)), x])
    beta = np.zeros(X.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-X @ beta))
        grad = X.T @ (y - p) - 1e-2 * beta
        hess = (X * (p * (1 - p))[:, None]).T @ X + 1e-2 * np.eye(X.shape[1])
        beta += np.linalg.solve(hess, grad)
    return beta


def _predict(beta: np.ndarray, x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1 / (1 + np.exp(-(beta[0] + x @ beta[1:])))
    return out


def _chunk(rng: np.random.Generator, angle: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A rotating hyperplane: the concept turns by ``angle`` (10% label noise)."""
    x = rng.normal(size=(n, 2))
    w = np.array([np.cos(angle), np.sin(angle)])
    y = (x @ w > 0).astype(np.int64)
    flip = rng.random(n) < 0.1
    return x, np.where(flip, 1 - y, y)


def test_awe_beats_the_single_old_model_on_a_drifting_stream() -> None:
    """Chunks whose concept rotates by 12 degrees each: five versions trained on the first five
    chunks, weighted on the fifth, scored on the sixth (unseen, drifted once more)."""
    wins, gains = 0, []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        members = {}
        for k in range(5):
            x, y = _chunk(rng, np.radians(12 * k), 400)
            members[f"v{k + 1}"] = _logistic(x, y)
        x_last, y_last = _chunk(rng, np.radians(48), 400)  # chunk 5's labels: the weights
        ens = fit_awe(y_last, {m: _predict(b, x_last) for m, b in members.items()})
        x_new, y_new = _chunk(rng, np.radians(60), 2000)
        scores = {m: _predict(b, x_new) for m, b in members.items()}
        acc_ens = np.mean((ens.predict(scores) >= 0.5) == y_new)
        acc_old = np.mean((scores["v1"] >= 0.5) == y_new)
        wins += acc_ens > acc_old
        gains.append(acc_ens - acc_old)
        # the newest concept weighs more than the oldest
        assert ens.candidates["v5"] > ens.candidates["v1"]
    assert wins >= 28
    assert np.median(gains) > 0.05


def test_members_no_better_than_chance_are_dropped() -> None:
    rng = np.random.default_rng(1)
    x, y = _chunk(rng, 0.0, 1000)
    good = _logistic(x, y)
    candidates = {
        "good": _predict(good, x),
        "inverted": 1 - _predict(good, x),  # the opposite concept: worse than chance
        "shuffled": rng.permutation(_predict(good, x)),
    }
    ens = fit_awe(y, candidates, max_members=3)
    assert ens.members == ["good"]
    assert ens.candidates["inverted"] < 0 and ens.candidates["shuffled"] <= 0.01
    with pytest.raises(ValueError, match="no candidate does better than a random guess"):
        fit_awe(y, {"inverted": candidates["inverted"]})


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ValueError, match="0/1 labels"):
        awe_weights([0, 2, 1], {"m": [0.1, 0.2, 0.3]})
    with pytest.raises(ValueError, match=r"scores\['m'\]: expected 3 scores"):
        awe_weights([0, 1, 1], {"m": [0.1, 0.2]})
    with pytest.raises(ValueError, match=r"scores\['m'\]: expected probabilities"):
        awe_weights([0, 1, 1], {"m": [0.1, 0.2, 1.5]})
    with pytest.raises(ValueError, match="max_members"):
        fit_awe([0, 1], {"m": [0.1, 0.9]}, max_members=0)
    with pytest.raises(ValueError, match="positive finite weights"):
        WeightedEnsemble(["a"], [0.0])
    with pytest.raises(ValueError, match="no scores for member 'b'"):
        WeightedEnsemble(["a", "b"], [0.1, 0.2]).predict({"a": [0.5]})
    with pytest.raises(ValueError, match=r"ensemble\.members"):
        WeightedEnsemble.from_dict({"members": "a", "weights": [1.0]})


@pytest.mark.parametrize(
    ("retraining", "field"),
    [
        ({"strategy": "bagging"}, "retraining.strategy"),
        ({"strategy": "awe"}, "retraining.ensemble.scorer"),
        ({"strategy": "awe", "ensemble": {"scorer": "nocolon"}}, "retraining.ensemble.scorer"),
        ({"strategy": "awe", "ensemble": {"scorer": "m:f", "max_members": 50}},
         "retraining.ensemble.max_members"),
        ({"strategy": "awe", "ensemble": {"scorer": "m:f", "size": 3}},
         "retraining.ensemble.size"),
        ({"ensemble": [1]}, "retraining.ensemble"),
    ],
)
def test_plan_errors_name_the_field(retraining: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        MaintenancePlan.from_dict({"retraining": retraining}).validate()


def test_plan_default_strategy_is_transfer() -> None:
    plan = MaintenancePlan.from_dict({"retraining": {}}).validate()
    assert plan.retraining is not None
    assert plan.retraining["strategy"] == "transfer" and plan.retraining["ensemble"] is None
    awe = MaintenancePlan.from_dict(
        {"retraining": {"strategy": "awe", "ensemble": {"scorer": "awe_members:score"}}}
    ).validate()
    assert awe.retraining is not None and awe.retraining["ensemble"]["max_members"] == 5


def _stream_store(tmp_path: Path) -> Any:
    """Four days of half-labelled events whose label follows the feature x (the old concept
    had the opposite sign: version v1 learnt it)."""
    from watchkeeper.store import Store

    rng = np.random.default_rng(3)
    store = Store(str(tmp_path / "wk.db"))
    store.register_model_version("p", "m", "v1", artifact_uri=save(
        tmp_path / "v1.json", -2.0).resolve().as_uri())  # fmt: skip
    store.register_model_version("p", "m", "v2", artifact_uri=save(
        tmp_path / "v2.json", 0.5).resolve().as_uri())  # fmt: skip
    store.set_alias("p", "m", "champion", "v2", actor="test", reason="setup")
    for d in range(4):
        ids = [f"d{d}-{i}" for i in range(300)]
        x = rng.normal(size=300)
        w = Window.from_columns(
            ids=ids, ts=T0 + d * DAY + np.linspace(0, DAY - 1, 300), features={"x": x},
            scores=rng.uniform(size=300),
        )  # fmt: skip
        store.log_events("p", "m", w)
        y = (x + rng.normal(scale=0.5, size=300) > 0).astype(np.int64)
        store.log_labels("p", "m", ids[:150], y[:150])
    return store


def test_register_awe_records_members_in_the_lineage(tmp_path: Path) -> None:
    import pandas as pd

    store = _stream_store(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    frame = pd.DataFrame({"feature.x": x})
    y = (x + rng.normal(scale=0.5, size=400) > 0).astype(np.int64)
    new = save(tmp_path / "v3.json", 3.0)
    ens = register_awe(store, "p", "m", "v3-awe", labels=y, frame=frame, scorer=score,
                       out_dir=tmp_path / "ens", extra={"v3": str(new)})  # fmt: skip
    assert ens.members == ["v3", "v2"]  # v1 learnt the opposite concept: dropped
    record = store.get_model_version("p", "m", "v3-awe")
    lineage = record["lineage"]
    assert lineage["strategy"] == "awe" and lineage["members"] == ["v3", "v2"]
    assert lineage["parent"] == "v2" and lineage["candidates"]["v1"] < 0
    assert set(lineage["weights"]) == {"v3", "v2"} and lineage["chunk"]["rows"] == 400
    loaded, artifacts = load_ensemble(tmp_path / "ens" / "ensemble.json")
    assert loaded.members == ens.members and Path(artifacts["v3"]).name == "v3.json"
    assert store.get_model_version("p", "m", "v3")["artifact_uri"].endswith("v3.json")
    with pytest.raises(ValueError, match="labels"):
        register_awe(store, "p", "m", "v4", labels=[3] * 400, frame=frame, scorer=score,
                     out_dir=tmp_path / "e2")  # fmt: skip
    store.close()


def test_job_with_strategy_awe_registers_the_ensemble(tmp_path: Path) -> None:
    store = _stream_store(tmp_path)
    # the trainer fits the slope of the new concept and writes its artifact
    script = (
        "import sys, json, pathlib, pandas as pd, numpy as np\n"
        "t = pd.read_parquet(sys.argv[1]); x = t['feature.x'].to_numpy(float)\n"
        "y = t['label'].astype(float).to_numpy()\n"
        "slope = 4.0 * np.sign(np.corrcoef(x, y)[0, 1])\n"
        "out = pathlib.Path(sys.argv[2], 'model.json')\n"
        "out.write_text(json.dumps(dict(slope=slope, offset=0.0)))\n"
        "print('artifact:' + str(out))\n"
    )
    doc = {"retraining": {
        "trainer": {"command": [sys.executable, "-c", script, "{train}", "{output}"]},
        "dataset": {"since": "10d", "reference": "none"},
        "strategy": "awe", "ensemble": {"scorer": "awe_members:score", "max_members": 3},
    }}  # fmt: skip
    put_plan(store, "p", "m", MaintenancePlan.from_dict(doc).validate())
    job = maybe_retrain(store, "p", "m", now=T0 + 4 * DAY, force=True)
    assert job is not None
    done = run_job(store, "p", job["id"], workdir=tmp_path / "jobs")
    assert done["state"] == "succeeded", done.get("error")
    ens = done["outputs"]["ensemble"]
    member = f"job-{job['id']}"
    assert ens["version"] == f"{member}-awe" and ens["members"][0] == member
    assert "v1" not in ens["members"]
    assert Path(done["outputs"]["artifact"]).name == "ensemble.json"
    lineage = store.get_model_version("p", "m", ens["version"])["lineage"]
    assert lineage["members"] == ens["members"]
    assert lineage["chunk"]["fingerprint"] == done["outputs"]["dataset"]["fingerprint"]
    body = json.loads(Path(done["outputs"]["artifact"]).read_text())
    assert set(body["artifacts"]) == set(ens["members"])
    # the gate judges the ensemble: its scores on every labelled evaluation row, beside it
    import pandas as pd

    from watchkeeper.loop._cycle import _challenger_scores

    gated = _challenger_scores(done["outputs"])
    evaluation = pd.read_parquet(done["outputs"]["dataset"]["eval"])
    labelled = evaluation[evaluation["label"].notna()].reset_index(drop=True)
    assert gated["id"].tolist() == labelled["id"].astype(str).tolist()
    members = {m: score(body["artifacts"][m], labelled) for m in ens["members"]}
    expected = sum(w * members[m] for m, w in zip(ens["members"], ens["weights"], strict=True))
    np.testing.assert_allclose(gated["score"], expected / sum(ens["weights"]))
    store.close()
