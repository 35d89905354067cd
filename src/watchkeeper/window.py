"""The columnar shape every check reads: a window of production events, or a reference set.

A :class:`Window` holds plain numpy arrays, one per field of docs/design.md's event, all of the same
length. Storage returns one, the SDK's in-process path builds one, and every check, estimator and
profile takes one: no per-row Python object crosses a layer boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np


def _frozen(columns: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
    return MappingProxyType(dict(columns))


@dataclass(frozen=True)
class Window:
    """Events in a time range or the last N events, as columns.

    Parameters
    ----------
    ids
        Request ids, ``str`` (object array), shape ``(n,)``.
    ts
        Event times as seconds since the Unix epoch, ``float64``, shape ``(n,)``.
    features
        Named feature columns: ``float64`` for numeric features (NaN for missing), ``object``
        (``str`` or ``None``) for categorical ones.
    scores
        Positive-class score (binary models), ``float64``, NaN where absent.
    probs
        Class probabilities, ``float64``, shape ``(n, k)``.
    predicted
        Predicted label (``object``), ``None`` where absent.
    labels
        Ground truth joined by (model, id): ``object``, ``None`` where not (yet) known.
    embeddings
        ``float32``, shape ``(n, d)``; rows of NaN where an event had none.
    latency_ms
        Model latency, ``float64``, NaN where absent.
    tags
        Segment dimensions (``object`` arrays), e.g. ``source`` or ``country``.
    versions
        Model version of each event (``object``).
    start, end
        The range the window covers (seconds since the epoch), when it is a time window.

    Examples
    --------
    >>> w = Window.from_columns(features={"x": [1.0, 2.0]}, scores=[0.1, 0.9])
    >>> len(w), w.features["x"].dtype.name, w.ids.tolist()
    (2, 'float64', ['0', '1'])
    >>> w.take(np.array([1])).scores.tolist()
    [0.9]
    """

    ids: np.ndarray
    ts: np.ndarray
    features: Mapping[str, np.ndarray] = field(default_factory=dict)
    scores: np.ndarray | None = None
    probs: np.ndarray | None = None
    predicted: np.ndarray | None = None
    labels: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    latency_ms: np.ndarray | None = None
    tags: Mapping[str, np.ndarray] = field(default_factory=dict)
    versions: np.ndarray | None = None
    start: float | None = None
    end: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", _frozen(self.features))
        object.__setattr__(self, "tags", _frozen(self.tags))
        n = len(self.ids)
        for name, column in self._columns():
            if column is not None and len(column) != n:
                raise ValueError(f"{name}: {len(column)} rows, but the window has {n} ids")

    def __len__(self) -> int:
        return len(self.ids)

    def _columns(self) -> list[tuple[str, np.ndarray | None]]:
        fixed = ["ts", "scores", "probs", "predicted", "labels", "embeddings", "latency_ms"]
        out: list[tuple[str, np.ndarray | None]] = [(f, getattr(self, f)) for f in fixed]
        out += [("versions", self.versions)]
        out += [(f"features.{k}", v) for k, v in self.features.items()]
        out += [(f"tags.{k}", v) for k, v in self.tags.items()]
        return out

    def take(self, index: np.ndarray) -> Window:
        """Rows selected by an integer index or a boolean mask, as a new window."""

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[index]

        return Window(
            ids=self.ids[index],
            ts=self.ts[index],
            features={k: v[index] for k, v in self.features.items()},
            scores=pick(self.scores),
            probs=pick(self.probs),
            predicted=pick(self.predicted),
            labels=pick(self.labels),
            embeddings=pick(self.embeddings),
            latency_ms=pick(self.latency_ms),
            tags={k: v[index] for k, v in self.tags.items()},
            versions=pick(self.versions),
            start=self.start,
            end=self.end,
        )

    @classmethod
    def from_columns(
        cls,
        *,
        ids: object = None,
        ts: object = None,
        features: Mapping[str, object] | None = None,
        scores: object = None,
        probs: object = None,
        predicted: object = None,
        labels: object = None,
        embeddings: object = None,
        latency_ms: object = None,
        tags: Mapping[str, object] | None = None,
        versions: object = None,
        start: float | None = None,
        end: float | None = None,
    ) -> Window:
        """Build a window from array-likes, coercing each column to its documented dtype.

        Numeric-looking feature columns become ``float64``; anything else becomes ``object``.
        Missing ``ids`` are numbered from 0 and missing ``ts`` are zeros.
        """
        feats = {k: _feature_column(v) for k, v in (features or {}).items()}
        lengths = [len(v) for v in feats.values()]
        for col in (scores, probs, embeddings, labels, predicted, latency_ms):
            if col is not None:
                lengths.append(len(np.asarray(col)))
        n = len(np.asarray(ids)) if ids is not None else (lengths[0] if lengths else 0)
        return cls(
            ids=np.asarray(ids if ids is not None else [str(i) for i in range(n)], dtype=object)
            .astype(str)
            .astype(object),
            ts=np.zeros(n) if ts is None else np.asarray(ts, dtype=np.float64),
            features=feats,
            scores=None if scores is None else _numbers(scores, "scores"),
            probs=None if probs is None else np.asarray(probs, dtype=np.float64),
            predicted=None if predicted is None else np.asarray(predicted, dtype=object),
            labels=None if labels is None else np.asarray(labels, dtype=object),
            embeddings=None if embeddings is None else np.asarray(embeddings, dtype=np.float32),
            latency_ms=None if latency_ms is None else np.asarray(latency_ms, dtype=np.float64),
            tags={k: np.asarray(v, dtype=object) for k, v in (tags or {}).items()},
            versions=None if versions is None else np.asarray(versions, dtype=object),
            start=start,
            end=end,
        )


def _feature_column(values: object) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "biuf":
        return array.astype(np.float64)
    if array.dtype.kind == "O":
        try:
            return array.astype(np.float64)
        except (TypeError, ValueError):
            return array
    return array.astype(object)


def _numbers(values: object, field: str) -> np.ndarray:
    """``values`` as float64, refusing booleans: a score of ``True`` is a mistake, not 1.0."""
    array = np.asarray(values)
    if array.dtype == np.bool_ or (
        array.dtype == object and any(isinstance(v, bool | np.bool_) for v in array.ravel())
    ):
        raise ValueError(f"{field}: expected numbers, got booleans")
    return np.asarray(array, dtype=np.float64)
