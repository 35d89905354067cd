"""Two-sample tests, distances, multiple-testing corrections and kernels (numpy, scipy).

Every method returns a :class:`DriftResult`. Univariate functions take two 1-D samples
(reference first); :class:`ColumnDrift` and :func:`detect_drift` compare whole tables;
:class:`MMDDrift`, :class:`LinearMMDDrift`, :class:`RFFMMDDrift`, :class:`ClassifierDrift`,
:class:`ProjectionDrift` and :func:`bbsd` compare multivariate samples (embeddings, many
features, model outputs). scipy and scikit-learn load only when a method needs them.
"""

from __future__ import annotations

from watchkeeper.stats._categorical import chi2, fisher, g_test, linf
from watchkeeper.stats._classifier import ClassifierDrift, ProjectionDrift, bbsd
from watchkeeper.stats._columns import ColumnDrift, DatasetDrift, detect_drift
from watchkeeper.stats._mmd import LinearMMDDrift, MMDDrift, RFFMMDDrift, RFFSummary
from watchkeeper.stats._multiple import adjust_p_values, combine_p_values
from watchkeeper.stats._numeric import (
    anderson_darling,
    cramer_von_mises,
    energy,
    hellinger,
    jensen_shannon,
    kl_divergence,
    ks,
    psi,
    wasserstein,
)
from watchkeeper.stats._result import DriftResult

__all__ = [
    "ClassifierDrift",
    "ColumnDrift",
    "DatasetDrift",
    "DriftResult",
    "LinearMMDDrift",
    "MMDDrift",
    "ProjectionDrift",
    "RFFMMDDrift",
    "RFFSummary",
    "adjust_p_values",
    "anderson_darling",
    "bbsd",
    "chi2",
    "combine_p_values",
    "cramer_von_mises",
    "detect_drift",
    "energy",
    "fisher",
    "g_test",
    "hellinger",
    "jensen_shannon",
    "kl_divergence",
    "ks",
    "linf",
    "psi",
    "wasserstein",
]
