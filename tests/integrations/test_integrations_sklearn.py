"""scikit-learn wrapper: same predictions, logged inputs, scores and latency."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from watchkeeper.integrations.sklearn import MonitoredEstimator


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[dict[str, Any]] = []
        self.fail = fail

    def log_batch(self, model: str, **columns: Any) -> None:
        if self.fail:
            raise ConnectionError("away")
        self.batches.append({"model": model, **columns})


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    X = pd.DataFrame({"age": rng.normal(40, 10, 200), "income": rng.normal(3, 1, 200)})
    y = (X["income"] + rng.normal(0, 0.5, 200) > 3).astype(int).to_numpy()
    return X, y


def test_pipeline_predictions_unchanged_and_logged(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    plain = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    client = Recorder()
    wrapped = MonitoredEstimator(
        make_pipeline(StandardScaler(), LogisticRegression()), client, "m", version="v2"
    ).fit(X, y)
    np.testing.assert_array_equal(wrapped.predict(X), plain.predict(X))
    np.testing.assert_allclose(wrapped.predict_proba(X), plain.predict_proba(X))
    first, second = client.batches
    assert set(first["features"]) == {"age", "income"} and first["version"] == "v2"
    np.testing.assert_allclose(first["scores"], plain.predict_proba(X)[:, 1])
    assert first["predicted"][:3].tolist() == [str(v) for v in plain.predict(X)[:3]]
    assert (first["latency_ms"] >= 0).all() and len(first["ids"]) == 200
    assert second["predicted"].tolist() == first["predicted"].tolist()
    assert wrapped.classes_.tolist() == [0, 1]  # fitted attributes pass through


def test_positive_class_and_decision_function(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    client = Recorder()
    clf = MonitoredEstimator(LogisticRegression(), client, "m", positive_class=0).fit(X, y)
    proba = clf.predict_proba(X, ids=np.arange(200).astype(str))
    np.testing.assert_allclose(client.batches[0]["scores"], proba[:, 0])
    assert client.batches[0]["ids"][5] == "5"
    assert sorted(client.batches[0]["features"]) == ["age", "income"]
    decision = clf.decision_function(X)
    np.testing.assert_allclose(client.batches[1]["scores"], decision)


def test_regressor_logs_prediction_as_score(rng: np.random.Generator) -> None:
    X = rng.normal(size=(30, 3))
    client = Recorder()
    reg = MonitoredEstimator(LinearRegression(), client, "r").fit(X, X.sum(1))
    pred = reg.predict(X, tags={"shop": ["a"] * 30})
    np.testing.assert_allclose(client.batches[0]["scores"], pred)
    assert sorted(client.batches[0]["features"]) == ["x0", "x1", "x2"]
    assert client.batches[0]["tags"]["shop"][0] == "a"


def test_params_clone_and_failures(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    wrapped = MonitoredEstimator(LogisticRegression(C=1.0), Recorder(fail=True), "m")
    wrapped.set_params(estimator__C=0.5, version="v9")
    assert wrapped.estimator.C == 0.5 and wrapped.version == "v9"
    assert clone(wrapped).get_params()["estimator__C"] == 0.5
    with pytest.raises(ValueError, match="colour: not a parameter"):
        wrapped.set_params(colour="red")
    wrapped.fit(X, y)
    assert len(wrapped.predict(X)) == 200  # the client failed, the prediction did not
    assert wrapped.errors_ == 1


def test_bad_input_names_the_field(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    with pytest.raises(ValueError, match="model"):
        MonitoredEstimator(LogisticRegression(), Recorder(), "").fit(X, y)
    clf = MonitoredEstimator(LogisticRegression(), Recorder(), "m", positive_class=7).fit(X, y)
    clf.predict_proba(X)
    assert "positive_class" in str(clf.last_error_)
    clf2 = MonitoredEstimator(LogisticRegression(), Recorder(), "m").fit(X, y)
    clf2.predict(X, ids=["a"])
    assert "ids" in str(clf2.last_error_)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_numpy_input_uses_feature_names_in(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    client = Recorder()
    clf = MonitoredEstimator(LogisticRegression(), client, "m").fit(X.to_numpy(), y)
    clf.estimator.feature_names_in_ = np.array(["age", "income"], dtype=object)
    clf.predict_proba(X.to_numpy())
    assert sorted(client.batches[0]["features"]) == ["age", "income"]
