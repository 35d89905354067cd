"""Per-event outlier scores with conformal p-values, and per-source adversary tests.

Scorers follow ``fit(reference)`` then ``score(x)`` and return one :class:`OutlierResult`:
:class:`KNNScorer` (k-th neighbour distance in embedding space, exact or through an inverted-file
index), :class:`MahalanobisScorer` (Ledoit–Wolf shrunk covariance) and
:class:`IsolationForestScorer` (scikit-learn). Every score becomes a split-conformal p-value, so
``p <= alpha`` means the same false-positive rate whatever the scorer.

Per-source tests for coordinated adversaries (:func:`embedding_tests` for query clustering and
PRADA, :func:`boundary_probing`, :func:`near_duplicates`, :func:`volume_bursts`) return one
:class:`SourceResult` each, with p-values adjusted across the sources of a window.
"""

from __future__ import annotations

from watchkeeper.outliers._conformal import (
    ConformalScorer,
    OutlierResult,
    conformal_p_values,
)
from watchkeeper.outliers._knn import IVFIndex, KNNScorer, exact_kth_distance, kmeans
from watchkeeper.outliers._sources import (
    SourceResult,
    boundary_probing,
    embedding_tests,
    near_duplicates,
    simhash,
    volume_bursts,
)
from watchkeeper.outliers._tabular import IsolationForestScorer, MahalanobisScorer, ledoit_wolf

__all__ = [
    "ConformalScorer",
    "IVFIndex",
    "IsolationForestScorer",
    "KNNScorer",
    "MahalanobisScorer",
    "OutlierResult",
    "SourceResult",
    "boundary_probing",
    "conformal_p_values",
    "embedding_tests",
    "exact_kth_distance",
    "kmeans",
    "ledoit_wolf",
    "near_duplicates",
    "simhash",
    "volume_bursts",
]
