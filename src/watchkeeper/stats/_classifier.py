"""Multivariate drift through models: a domain classifier, and univariate tests on projections.

* :class:`ClassifierDrift` — can a classifier tell current rows from reference rows? The
  cross-validated AUC is the effect size; each fold's held-out AUC gives a Mann–Whitney
  p-value that is exact under the null (the held-out labels are exchangeable given the model),
  and the folds are combined by Bonferroni, valid whatever their dependence.
* :class:`ProjectionDrift` — principal components of the reference, then a KS test per
  component with a multiple-testing correction; :func:`bbsd` does the same on the model's own
  output probabilities (black-box shift detection, Lipton et al. 2018; Rabanser et al. 2019
  found it hard to beat for deep models).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from watchkeeper.stats._clean import check_alpha
from watchkeeper.stats._mmd import _check_positive_int, _check_samples, as_matrix
from watchkeeper.stats._multiple import CORRECTIONS, adjust_p_values
from watchkeeper.stats._numeric import _ks_sorted
from watchkeeper.stats._result import DriftResult


def _matrix_and_names(data: Any, name: str) -> tuple[np.ndarray, list[str], int]:
    if isinstance(data, np.ndarray | list | tuple):
        x, dropped = as_matrix(data, name)
        return x, [f"x{j}" for j in range(x.shape[1])], dropped
    from watchkeeper.frames import to_columns

    cols = to_columns(data)
    for col, values in cols.items():
        if values.dtype.kind not in "fb":
            raise TypeError(f"column {col!r} of {name} is not numeric: encode it first")
    x, dropped = as_matrix(np.column_stack(list(cols.values())), name)
    return x, list(cols), dropped


class ClassifierDrift:
    """Classifier two-sample test: cross-validated AUC of a reference-vs-current classifier.

    Null hypothesis: reference and current rows come from the same distribution, so no
    classifier does better than chance (AUC 0.5). The p-value combines the folds' one-sided
    Mann–Whitney p-values by Bonferroni (``min(1, k · min p)``), valid under any dependence.

    Parameters
    ----------
    estimator
        A scikit-learn classifier with ``predict_proba``; ``None`` for a standardised logistic
        regression (fast, and its coefficients say which features separate the samples).
    n_folds
        Cross-validation folds.
    alpha
        Level the p-value is compared with.
    top_features
        How many of the most separating features to report in ``details["top_features"]``.
    seed
        Seed of the fold split.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(size=(600, 5))
    >>> cur = rng.normal(size=(600, 5))
    >>> cur[:, 3] += 0.5
    >>> r = ClassifierDrift().fit(ref).test(cur)
    >>> r.drift, r.details["top_features"][0]["feature"]
    (True, 'x3')
    """

    def __init__(self, estimator: Any = None, n_folds: int = 5, alpha: float = 0.05,
                 top_features: int = 10, seed: int | None = 0) -> None:
        self.estimator = estimator
        self.n_folds = n_folds
        self.alpha = alpha
        self.top_features = top_features
        self.seed = seed

    def fit(self, reference: Any) -> ClassifierDrift:
        """Store the reference rows (2-D array or a frame of numeric columns)."""
        self.reference_, self.feature_names_, self.dropped_reference_ = _matrix_and_names(
            reference, "reference")
        return self

    def _estimator(self) -> Any:
        from sklearn.base import clone

        if self.estimator is not None:
            return clone(self.estimator)
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))

    def test(self, current: Any) -> DriftResult:
        """Train and evaluate the domain classifier on reference vs ``current``."""
        from scipy.stats import mannwhitneyu
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold

        alpha = check_alpha(self.alpha)
        k = _check_positive_int(self.n_folds, "n_folds")
        if k < 2:
            raise ValueError(f"n_folds must be at least 2, got {self.n_folds!r}")
        x = self.reference_
        y, _, dropped = _matrix_and_names(current, "current")
        _check_samples(x, y)
        if min(x.shape[0], y.shape[0]) < k:
            raise ValueError(f"each sample needs at least n_folds={k} rows")
        data = np.vstack([x, y])
        target = np.r_[np.zeros(x.shape[0]), np.ones(y.shape[0])]
        scores = np.empty(target.size)
        fold_p, fold_auc, weights = [], [], []
        folds = StratifiedKFold(k, shuffle=True, random_state=self.seed)
        for train, held in folds.split(data, target):
            model = self._estimator().fit(data[train], target[train])
            s = model.predict_proba(data[held])[:, 1]
            scores[held] = s
            t = target[held]
            fold_auc.append(float(roc_auc_score(t, s)))
            fold_p.append(float(mannwhitneyu(s[t == 1], s[t == 0],
                                             alternative="greater").pvalue))
            weights.append(_importances(model, data.shape[1]))
        auc = float(roc_auc_score(target, scores))
        p = min(1.0, k * min(fold_p))
        importance = np.mean(weights, axis=0)
        order = np.argsort(-importance)[: int(self.top_features)]
        details: dict[str, Any] = {
            "n_reference": x.shape[0], "n_current": y.shape[0], "dropped_current": dropped,
            "fold_auc": fold_auc, "fold_p_values": fold_p,
            "top_features": [{"feature": self.feature_names_[i],
                              "importance": float(importance[i])} for i in order],
        }
        return DriftResult("classifier", statistic=auc, p_value=p, drift=p < alpha,
                           alpha=alpha, details=details)


def _importances(model: Any, n_features: int) -> np.ndarray:
    """How much each feature drives the separation: |standardised coefficient| or the
    model's own importances; zeros if the model exposes neither."""
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    if hasattr(final, "coef_"):
        return np.abs(np.asarray(final.coef_, dtype=np.float64)).reshape(-1)[:n_features]
    if hasattr(final, "feature_importances_"):
        return np.asarray(final.feature_importances_, dtype=np.float64)
    return np.zeros(n_features)


def _univariate_family(ref: np.ndarray, cur: np.ndarray, names: list[str], method: str,
                       alpha: float, correction: str,
                       extra: dict[str, Any]) -> DriftResult:
    """KS per column, adjusted; the family drifts if any adjusted p-value is below alpha."""
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    results = [
        _ks_sorted(np.sort(ref[:, j]), np.sort(cur[:, j]), {}, alpha, "auto")
        for j in range(ref.shape[1])
    ]
    raw = np.array([r.p_value if r.p_value is not None else 1.0 for r in results])
    adjusted = adjust_p_values(raw, correction)
    best = int(np.argmin(adjusted))
    p = float(adjusted[best])
    details: dict[str, Any] = {
        **extra, "n_reference": ref.shape[0], "n_current": cur.shape[0],
        "correction": correction,
        "components": [{"name": n, "statistic": r.statistic, "p_value": float(a)}
                       for n, r, a in zip(names, results, adjusted, strict=True)],
    }
    return DriftResult(method, statistic=float(max(r.statistic for r in results)),
                       p_value=p, drift=p < alpha, alpha=alpha, details=details)


class ProjectionDrift:
    """KS tests on the reference's principal components, corrected for multiple testing.

    Null hypothesis: each projection has the same distribution in both samples. The
    projection (centering and ``n_components`` principal axes) is fitted on a random
    ``fit_fraction`` of the reference and the tests use the rest: axes chosen to maximise the
    variance of a sample overstate that sample's variance along them (by about
    ``(1 + sqrt(d / n))²`` on the first axis), and testing the same rows would then flag
    drift where there is none. ``statistic`` is the largest KS distance over components;
    ``p_value`` the smallest adjusted p-value.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = ProjectionDrift(n_components=4).fit(rng.normal(size=(1000, 16)))
    >>> det.test(rng.normal(size=(1000, 16))).drift
    False
    >>> det.test(rng.normal(size=(1000, 16)) * 1.5).drift
    True
    """

    def __init__(self, n_components: int = 10, alpha: float = 0.05,
                 correction: str = "bonferroni", fit_fraction: float = 0.5,
                 seed: int | None = 0) -> None:
        self.n_components = n_components
        self.alpha = alpha
        self.correction = correction
        self.fit_fraction = fit_fraction
        self.seed = seed

    def fit(self, reference: Any) -> ProjectionDrift:
        """Fit the principal axes on the reference."""
        k = _check_positive_int(self.n_components, "n_components")
        x, _ = as_matrix(reference, "reference")
        if not 0.0 < self.fit_fraction < 1.0:
            raise ValueError(f"fit_fraction must lie in (0, 1), got {self.fit_fraction!r}")
        order = np.random.default_rng(self.seed).permutation(x.shape[0])
        cut = round(self.fit_fraction * x.shape[0])
        if cut < 2 or x.shape[0] - cut < 2:
            raise ValueError("reference is too small to split for fitting and testing")
        fit_rows, x = x[order[:cut]], x[order[cut:]]
        self.mean_ = fit_rows.mean(axis=0)
        _, singular, vt = np.linalg.svd(fit_rows - self.mean_, full_matrices=False)
        self.components_ = vt[: min(k, vt.shape[0])]
        var = singular**2
        self.explained_variance_ratio_ = var[: self.components_.shape[0]] / var.sum()
        self.reference_ = (x - self.mean_) @ self.components_.T
        return self

    def test(self, current: Any) -> DriftResult:
        """Project ``current`` and test each component."""
        alpha = check_alpha(self.alpha)
        y, _ = as_matrix(current, "current")
        if y.shape[1] != self.mean_.size:
            raise ValueError(
                f"current has {y.shape[1]} features, the reference has {self.mean_.size}"
            )
        cur = (y - self.mean_) @ self.components_.T
        names = [f"pc{j}" for j in range(cur.shape[1])]
        return _univariate_family(
            self.reference_, cur, names, "pca_ks", alpha, self.correction,
            {"explained_variance_ratio": self.explained_variance_ratio_.tolist()},
        )


def bbsd(reference_probs: Any, current_probs: Any, *, alpha: float = 0.05,
         correction: str = "bonferroni") -> DriftResult:
    """Black-box shift detection: KS per class probability of the model, corrected.

    Parameters
    ----------
    reference_probs, current_probs
        The model's outputs, shape ``(n, k)`` (or ``(n,)`` for a binary score).

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> ref = rng.dirichlet([2, 2, 2], size=2000)
    >>> bbsd(ref, rng.dirichlet([2, 2, 2], size=2000)).drift
    False
    >>> bbsd(ref, rng.dirichlet([3, 2, 2], size=2000)).drift
    True
    """
    alpha = check_alpha(alpha)
    x, _ = as_matrix(reference_probs, "reference_probs")
    y, _ = as_matrix(current_probs, "current_probs")
    _check_samples(x, y)
    names = [f"class{j}" for j in range(x.shape[1])]
    return _univariate_family(x, y, names, "bbsd_ks", alpha, correction, {})
