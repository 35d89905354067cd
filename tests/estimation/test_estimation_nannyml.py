"""NannyML's CBPE as a test-only oracle, run in its own interpreter when it is installed.

NannyML is not importable from Watchkeeper's environment (its pins conflict); the peer script
``benchmarks/peers/w5_nannyml.py`` runs under ``$PEERS_DIR/nannyml/bin/python`` and prints its
per-chunk estimates as JSON. Without that interpreter the test skips.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from watchkeeper.estimation import PerformanceEstimator, realised_performance

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "peers" / "w5_nannyml.py"
# the same default as benchmarks/_common.py: the peers' environments beside the checkout
PYTHON = Path(os.environ.get("PEERS_DIR", ROOT.parent / ".peers")) / "nannyml" / "bin" / "python"
METRICS = ("accuracy", "f1", "roc_auc")
CHUNK = 5000


def _data(seed: int = 0) -> dict[str, np.ndarray]:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(n_samples=60_000, n_features=8, random_state=seed)
    model = LogisticRegression().fit(x[:10_000], y[:10_000])
    xa, ya = x[20_000:], y[20_000:]
    sa = model.predict_proba(xa)[:, 1]
    rng = np.random.default_rng(seed)
    z = (xa[:, 0] - xa[:, 0].mean()) / xa[:, 0].std()
    cov = np.concatenate(
        [rng.choice(len(ya), CHUNK, replace=False, p=np.exp(g * z) / np.exp(g * z).sum())
         for g in np.linspace(0, 1, 5)]
    )  # fmt: skip
    pos, neg = np.flatnonzero(ya == 1), np.flatnonzero(ya == 0)
    prior = np.concatenate(
        [np.r_[rng.choice(pos, round(CHUNK * p), replace=False),
               rng.choice(neg, CHUNK - round(CHUNK * p), replace=False)]
         for p in np.linspace(0.5, 0.1, 5)]
    )  # fmt: skip
    return {
        "ref_scores": model.predict_proba(x[10_000:20_000])[:, 1],
        "ref_labels": y[10_000:20_000],
        "covariate_scores": sa[cov],
        "covariate_labels": ya[cov],
        "prior_scores": sa[prior],
        "prior_labels": ya[prior],
        "scenarios": np.array(["covariate", "prior"]),
        "chunk_size": np.array(CHUNK),
        "threshold": np.array(0.5),
    }


@pytest.mark.slow
def test_plain_estimator_agrees_with_nannyml_and_correction_wins(tmp_path: Path) -> None:
    if not (PYTHON.exists() and (PYTHON.parent.parent / ".ok").exists()):  # .ok: setup done
        pytest.skip("NannyML's environment is not installed (benchmarks/peers/setup.sh)")
    data = _data()
    path = tmp_path / "oracle.npz"
    np.savez(path, **data)
    proc = subprocess.run(
        [str(PYTHON), str(SCRIPT), str(path), "1"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    nml = json.loads(proc.stdout.strip().splitlines()[-1])

    plain = PerformanceEstimator(0.5, prior_correction=False, metrics=METRICS)
    plain.fit(data["ref_scores"], data["ref_labels"])
    ours = plain.estimate_chunks(data["covariate_scores"], CHUNK)
    theirs = nml["covariate"]["chunks"]
    assert len(ours) == len(theirs) == 5
    for o, t in zip(ours, theirs, strict=True):
        for m in METRICS:  # the same method on the same scores: the same answer
            assert o[m].value == pytest.approx(t[m], abs=0.006), m

    fixed = PerformanceEstimator(0.5, prior_correction=True, metrics=METRICS)
    fixed.fit(data["ref_scores"], data["ref_labels"])
    corrected = fixed.estimate_chunks(data["prior_scores"], CHUNK)
    errs: dict[str, dict[str, list[float]]] = {"ours": {}, "nannyml": {}}
    for i, (o, t) in enumerate(zip(corrected, nml["prior"]["chunks"], strict=True)):
        sl = slice(i * CHUNK, (i + 1) * CHUNK)
        real = realised_performance(data["prior_scores"][sl], data["prior_labels"][sl], 0.5)
        for m in METRICS:
            errs["ours"].setdefault(m, []).append(abs(o[m].value - real[m].value))
            errs["nannyml"].setdefault(m, []).append(abs(t[m] - real[m].value))
    for m in ("accuracy", "f1"):  # under label shift the correction is what makes it right
        assert np.mean(errs["ours"][m]) < np.mean(errs["nannyml"][m]), m
    assert np.mean(errs["ours"]["f1"]) < 0.5 * np.mean(errs["nannyml"]["f1"])
