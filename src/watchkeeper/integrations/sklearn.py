"""Monitor a scikit-learn estimator or pipeline: a wrapper that logs what it predicts.

:class:`MonitoredEstimator` behaves like the estimator it wraps (``fit``, ``predict``,
``predict_proba``, ``decision_function``, ``score``, and every fitted attribute) and, on each
prediction call, logs one batch: the inputs as features, the scores or probabilities, the
predicted labels and the call's latency. Results are returned untouched; a failure to log is
counted in ``errors_`` and never raised into the caller.

Examples
--------
>>> import numpy as np
>>> from sklearn.linear_model import LogisticRegression
>>> class Recorder:
...     def __init__(self):
...         self.batches = []
...     def log_batch(self, model, **columns):
...         self.batches.append(columns)
>>> rng = np.random.default_rng(0)
>>> X, y = rng.normal(size=(50, 2)), np.repeat([0, 1], 25)
>>> client = Recorder()
>>> clf = MonitoredEstimator(LogisticRegression(), client, "credit").fit(X, y)
>>> pred = clf.predict(X[:3], ids=["a", "b", "c"])
>>> sorted(client.batches[0])
['features', 'ids', 'latency_ms', 'predicted', 'scores']
>>> sorted(client.batches[0]["features"]), client.batches[0]["ids"].tolist()
(['x0', 'x1'], ['a', 'b', 'c'])
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from watchkeeper.integrations._logger import BatchLogger, IdMaker

__all__ = ["MonitoredEstimator"]

_log = logging.getLogger(__name__)


class MonitoredEstimator:
    """Wrap ``estimator`` so each prediction call logs a batch of events through ``client``.

    Parameters
    ----------
    estimator
        Any scikit-learn estimator or pipeline (fitted or not).
    client
        A :class:`watchkeeper.Client`, ``LocalClient`` or anything with ``log_batch``.
    model
        Name of the monitored model.
    version
        Model version stamped on every event.
    log_inputs
        Log the input columns as features (dense inputs only; sparse matrices are skipped).
    log_scores
        On ``predict``, also compute ``predict_proba`` (or ``decision_function``) to log a
        score; this extra call is not counted in the logged latency. Off: ``predict`` logs only
        the predicted labels.
    positive_class
        The class whose probability is the score of a binary classifier; by default the
        second of ``classes_``.
    """

    def __init__(
        self,
        estimator: Any,
        client: BatchLogger,
        model: str,
        *,
        version: str | None = None,
        log_inputs: bool = True,
        log_scores: bool = True,
        positive_class: Any = None,
    ) -> None:
        self.estimator = estimator
        self.client = client
        self.model = model
        self.version = version
        self.log_inputs = log_inputs
        self.log_scores = log_scores
        self.positive_class = positive_class

    # scikit-learn's parameter protocol, so the wrapper can be cloned and grid-searched.
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of the wrapper (and, with ``deep``, of the estimator as ``estimator__*``)."""
        params = {
            "estimator": self.estimator, "client": self.client, "model": self.model,
            "version": self.version, "log_inputs": self.log_inputs,
            "log_scores": self.log_scores, "positive_class": self.positive_class,
        }
        if deep and hasattr(self.estimator, "get_params"):
            for key, value in self.estimator.get_params(deep=True).items():
                params[f"estimator__{key}"] = value
        return params

    def set_params(self, **params: Any) -> MonitoredEstimator:
        """Set wrapper parameters, or the estimator's as ``estimator__name``."""
        inner = {k.split("__", 1)[1]: v for k, v in params.items() if k.startswith("estimator__")}
        for key, value in params.items():
            if not key.startswith("estimator__"):
                if key not in self.get_params(deep=False):
                    raise ValueError(f"{key}: not a parameter of MonitoredEstimator")
                setattr(self, key, value)
        if inner:
            self.estimator.set_params(**inner)
        return self

    def __getattr__(self, name: str) -> Any:
        # Fitted attributes (classes_, coef_, feature_names_in_, ...) come from the estimator.
        if name.startswith("__") or name == "estimator":
            raise AttributeError(name)
        return getattr(self.estimator, name)

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> MonitoredEstimator:
        """Fit the wrapped estimator; training data is not logged."""
        if not self.model:
            raise ValueError("model: a non-empty name is required")
        self.estimator.fit(X, y, **fit_params)
        return self

    def score(self, X: Any, y: Any, **kwargs: Any) -> float:
        """The wrapped estimator's ``score`` (not logged: it is evaluation, not traffic)."""
        return float(self.estimator.score(X, y, **kwargs))

    def predict(self, X: Any, *, ids: Any = None, tags: Mapping[str, Any] | None = None) -> Any:
        """Predict with the estimator and log the batch."""
        start = time.perf_counter()
        predicted = self.estimator.predict(X)
        latency = (time.perf_counter() - start) * 1000.0
        self._log(X, predicted=predicted, latency_ms=latency, ids=ids, tags=tags)
        return predicted

    def predict_proba(
        self, X: Any, *, ids: Any = None, tags: Mapping[str, Any] | None = None
    ) -> Any:
        """Class probabilities from the estimator; logs them with the predicted class."""
        start = time.perf_counter()
        proba = self.estimator.predict_proba(X)
        latency = (time.perf_counter() - start) * 1000.0
        self._log(X, proba=proba, latency_ms=latency, ids=ids, tags=tags)
        return proba

    def decision_function(
        self, X: Any, *, ids: Any = None, tags: Mapping[str, Any] | None = None
    ) -> Any:
        """Decision scores from the estimator; logged as scores."""
        start = time.perf_counter()
        decision = self.estimator.decision_function(X)
        latency = (time.perf_counter() - start) * 1000.0
        self._log(X, decision=decision, latency_ms=latency, ids=ids, tags=tags)
        return decision

    # --- logging -----------------------------------------------------------------------------

    def _log(self, X: Any, *, latency_ms: float, ids: Any, tags: Mapping[str, Any] | None,
             predicted: Any = None, proba: Any = None, decision: Any = None) -> None:
        try:
            columns = self._columns(X, latency_ms, ids, tags, predicted, proba, decision)
            self.client.log_batch(self.model, **columns)
        except Exception as exc:  # a monitoring failure must not fail the prediction
            self.errors_ = getattr(self, "errors_", 0) + 1
            self.last_error_ = exc
            _log.warning("watchkeeper: could not log a batch of %r: %s", self.model, exc)

    def _columns(self, X: Any, latency_ms: float, ids: Any, tags: Mapping[str, Any] | None,
                 predicted: Any, proba: Any, decision: Any) -> dict[str, Any]:
        n = _n_rows(X)
        columns: dict[str, Any] = {}
        if ids is None:
            if "_ids" not in self.__dict__:
                self.__dict__["_ids"] = IdMaker()
            ids = self.__dict__["_ids"](n)
        columns["ids"] = np.asarray(ids, dtype=object)
        if len(columns["ids"]) != n:
            raise ValueError(f"ids: {len(columns['ids'])} given for {n} rows")
        if self.log_inputs:
            features = _feature_columns(X, getattr(self.estimator, "feature_names_in_", None))
            if features:
                columns["features"] = features
        if predicted is not None and self.log_scores and proba is None and decision is None:
            if hasattr(self.estimator, "predict_proba") and hasattr(self.estimator, "classes_"):
                proba = self.estimator.predict_proba(X)
            elif hasattr(self.estimator, "decision_function"):
                decision = self.estimator.decision_function(X)
        classes = getattr(self.estimator, "classes_", None)
        if proba is not None:
            p = np.asarray(proba, dtype=np.float64)
            if p.ndim == 2 and p.shape[1] == 2:
                columns["scores"] = p[:, self._positive_index(classes)]
            else:
                columns["probs"] = p
            if predicted is None and classes is not None:
                predicted = np.asarray(classes)[p.argmax(axis=1)]
        if decision is not None:
            d = np.asarray(decision, dtype=np.float64)
            if d.ndim == 1:
                columns["scores"] = d
            else:
                columns["probs"] = d
        if predicted is not None:
            pred = np.asarray(predicted)
            if classes is None and pred.dtype.kind in "fiu" and "scores" not in columns:
                columns["scores"] = pred.astype(np.float64)  # a regressor's prediction
            else:
                columns["predicted"] = pred.astype(str).astype(object)
        columns["latency_ms"] = np.full(n, latency_ms)
        if tags:
            columns["tags"] = dict(tags)
        if self.version is not None:
            columns["version"] = self.version
        return columns

    def _positive_index(self, classes: Any) -> int:
        if self.positive_class is None or classes is None:
            return 1
        matches = np.flatnonzero(np.asarray(classes) == self.positive_class)
        if len(matches) != 1:
            raise ValueError(f"positive_class: {self.positive_class!r} is not in classes_")
        return int(matches[0])


def _n_rows(X: Any) -> int:
    shape = getattr(X, "shape", None)
    if shape is not None:
        return int(shape[0])
    return len(X)


def _feature_columns(X: Any, names: Any) -> dict[str, np.ndarray]:
    """Input columns by name: DataFrames keep theirs; arrays are named x0, x1, ..."""
    if hasattr(X, "columns") and hasattr(X, "__getitem__") and not hasattr(X, "toarray"):
        return {str(c): np.asarray(X[c]) for c in X.columns}
    if hasattr(X, "toarray"):  # sparse: thousands of columns are not monitored features
        return {}
    array = np.asarray(X)
    if array.ndim != 2:
        return {}
    labels = list(names) if names is not None and len(names) == array.shape[1] else [
        f"x{i}" for i in range(array.shape[1])
    ]
    return {str(name): array[:, i] for i, name in enumerate(labels)}
