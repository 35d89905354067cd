"""Per-column drift of a whole table, with a default test per column and a dataset verdict.

The default per column (see docs/drift.md for the reasoning):

============ ============================== ======================================
column       fewer than ``large_n`` values   at least ``large_n`` values on each side
============ ============================== ======================================
numeric      ``ks`` (p-value, corrected)     ``wasserstein`` / sd > 0.1
categorical  ``chi2`` (``fisher`` for 2      ``jensen_shannon`` > 0.1
             categories with small counts)
============ ============================== ======================================

A p-value answers "is there *any* difference?", and with enough data the answer is always
yes: at a million rows KS flags a 0.005σ shift. Above ``large_n`` the question becomes "is
the difference larger than what matters?", which an effect size with a threshold answers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from watchkeeper.stats._categorical import (
    _table_test,
    category_counts,
    category_details,
    merge_counts,
)
from watchkeeper.stats._clean import (
    MISSING,
    check_alpha,
    check_threshold,
    is_categorical,
    numeric_sample,
    skipped,
)
from watchkeeper.stats._multiple import CORRECTIONS, adjust_p_values
from watchkeeper.stats._numeric import (
    _ad_sorted,
    _cvm_sorted,
    _energy_sorted,
    _ks_sorted,
    _sizes,
    _wasserstein_sorted,
    binned_counts,
    binned_distance,
    quantile_edges,
)
from watchkeeper.stats._result import DriftResult

NUMERIC_METHODS = ("ks", "anderson_darling", "cramer_von_mises", "wasserstein", "energy",
                   "psi", "jensen_shannon", "hellinger", "kl_divergence")
CATEGORICAL_METHODS = ("chi2", "g_test", "fisher", "psi", "jensen_shannon", "hellinger",
                       "kl_divergence", "linf")
P_VALUE_METHODS = ("ks", "anderson_darling", "cramer_von_mises", "chi2", "g_test", "fisher")
BINNED = ("psi", "jensen_shannon", "hellinger", "kl_divergence", "linf")
DEFAULT_THRESHOLDS: Mapping[str, float] = MappingProxyType({
    "wasserstein": 0.1, "energy": 0.1, "psi": 0.1, "jensen_shannon": 0.1, "hellinger": 0.1,
    "kl_divergence": 0.1, "linf": 0.1,
})
DATASET_RULES = ("any", "share")


@dataclass(frozen=True, slots=True)
class DatasetDrift:
    """Per-column results and the verdict on the whole table.

    Attributes
    ----------
    drift
        The dataset verdict.
    method
        The dataset rule: ``"any"`` (any column drifted after the multiple-testing correction)
        or ``"share"`` (at least ``drift_share`` of the columns drifted).
    columns
        Column name to its :class:`DriftResult`; p-values are already adjusted for the
        multiple testing (``details["p_value_raw"]`` keeps the raw one).
    details
        ``correction``, ``alpha``, ``n_columns``, ``n_drifted``, ``share_drifted``, ...
    """

    drift: bool
    method: str
    columns: Mapping[str, DriftResult]
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", MappingProxyType(dict(self.columns)))
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    @property
    def drifted(self) -> list[str]:
        """Names of the columns that drifted."""
        return [name for name, r in self.columns.items() if r.drift]

    def to_dict(self) -> dict[str, Any]:
        """``{"drift", "method", "columns": {name: DriftResult.to_dict()}, ...details}``."""
        from watchkeeper.stats._result import _plain

        return {
            "drift": bool(self.drift),
            "method": self.method,
            "columns": {name: r.to_dict() for name, r in self.columns.items()},
            **_plain(dict(self.details)),
        }


@dataclass
class _Reference:
    kind: str  # "numeric" or "categorical"
    values: Any  # finite values (numeric), the raw column or its Categories (categorical)
    info: dict[str, Any]
    is_sorted: bool = False
    # The categories and their counts, encoded once at fit for every test after it.
    counts: tuple[list[str], np.ndarray] | None = None


class ColumnDrift:
    """Compare every column of a current table with a reference table.

    Parameters
    ----------
    methods
        Column name to method name, overriding the default for that column. Numeric methods:
        ``ks``, ``anderson_darling``, ``cramer_von_mises``, ``wasserstein``, ``energy``,
        ``psi``, ``jensen_shannon``, ``hellinger``, ``kl_divergence``; categorical: ``chi2``,
        ``g_test``, ``fisher``, ``psi``, ``jensen_shannon``, ``hellinger``,
        ``kl_divergence``, ``linf``.
    alpha
        Family-wise level (or false discovery rate with ``"bh"``) for the p-value tests.
    correction
        ``"holm"``, ``"bonferroni"``, ``"bh"`` or ``"none"``, across the p-value tests.
    dataset_rule
        ``"any"``: the dataset drifted if any column did (with a family-wise correction this
        is a level-``alpha`` test of "nothing changed"); ``"share"``: if at least
        ``drift_share`` of the columns did.
    drift_share
        Share of drifted columns for ``dataset_rule="share"``.
    large_n
        From this many values on *both* sides, defaults switch from p-value tests to effect
        sizes with a threshold.
    thresholds
        Method name to the bound on its statistic (defaults: 0.1 for every distance).
    bins
        Quantile bins for binned distances of numeric columns.
    columns
        Compare only these columns (default: all; both sides must then have the same ones).
    n_jobs
        Threads across columns (numpy releases the GIL while sorting); default: CPU count.
    cache_reference
        Keep every numeric reference column sorted from ``fit`` on, so repeated tests skip
        that sort (memory for speed); :func:`detect_drift`, which tests once, turns it off
        and sorts each reference column only while testing it.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = {"a": rng.normal(size=1000), "b": rng.choice(["x", "y"], size=1000)}
    >>> cur = {"a": rng.normal(0.5, size=1000), "b": rng.choice(["x", "y"], size=1000)}
    >>> report = ColumnDrift().fit(ref).test(cur)
    >>> report.drift, report.drifted, report.columns["a"].method
    (True, ['a'], 'ks')
    """

    def __init__(
        self,
        methods: Mapping[str, str] | None = None,
        alpha: float = 0.05,
        correction: str = "holm",
        dataset_rule: str = "any",
        drift_share: float = 0.5,
        large_n: int = 2000,
        thresholds: Mapping[str, float] | None = None,
        bins: int = 10,
        columns: list[str] | None = None,
        n_jobs: int | None = None,
        cache_reference: bool = True,
    ) -> None:
        self.methods = methods
        self.alpha = alpha
        self.correction = correction
        self.dataset_rule = dataset_rule
        self.drift_share = drift_share
        self.large_n = large_n
        self.thresholds = thresholds
        self.bins = bins
        self.columns = columns
        self.n_jobs = n_jobs
        self.cache_reference = cache_reference

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        check_alpha(self.alpha)
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {CORRECTIONS}, got {self.correction!r}")
        if self.dataset_rule not in DATASET_RULES:
            raise ValueError(
                f"dataset_rule must be one of {DATASET_RULES}, got {self.dataset_rule!r}"
            )
        if not 0.0 < self.drift_share <= 1.0:
            raise ValueError(f"drift_share must lie in (0, 1], got {self.drift_share!r}")
        if int(self.large_n) != self.large_n or self.large_n < 1:
            raise ValueError(f"large_n must be a positive integer, got {self.large_n!r}")
        if int(self.bins) != self.bins or self.bins < 2:
            raise ValueError(f"bins must be an integer >= 2, got {self.bins!r}")
        for method, bound in (self.thresholds or {}).items():
            if method not in DEFAULT_THRESHOLDS:
                raise ValueError(f"thresholds: {method!r} is not a distance with a threshold")
            check_threshold(bound)
        for column, method in (self.methods or {}).items():
            if method not in NUMERIC_METHODS and method not in CATEGORICAL_METHODS:
                raise ValueError(
                    f"methods[{column!r}]: unknown method {method!r}; choose from "
                    f"{sorted(set(NUMERIC_METHODS) | set(CATEGORICAL_METHODS))}"
                )

    def _threshold(self, method: str) -> float:
        return float({**DEFAULT_THRESHOLDS, **(self.thresholds or {})}[method])

    # ------------------------------------------------------------------ fit / test
    @staticmethod
    def _rows(cols: dict[str, Any], side: str) -> None:
        """No rows is no data: an error, never a verdict."""
        sizes = {int(getattr(c, "size", None) or len(c)) for c in cols.values()}
        if sizes == {0}:
            raise ValueError(
                f"{side}: no rows (a file with only a header, or an empty table): there is "
                "nothing to compare"
            )

    def fit(self, reference: Any) -> ColumnDrift:
        """Store the reference: each numeric column sorted once, for every later test."""
        from watchkeeper.frames import to_columns

        self._validate()
        cols = to_columns(reference, encode_categories=True)
        if self.columns is not None:
            missing = [c for c in self.columns if c not in cols]
            if missing:
                raise ValueError(f"column(s) missing from reference: {', '.join(missing)}")
            cols = {c: cols[c] for c in self.columns}
        if not cols:
            raise ValueError("reference has no columns")
        self._rows(cols, "reference")
        if self.methods:
            unknown = [c for c in self.methods if c not in cols]
            if unknown:
                raise ValueError(f"methods name column(s) not in reference: {unknown}")
        self.reference_: dict[str, _Reference] = {}
        for name, col in cols.items():
            self.reference_[name] = self._prepare(name, col)
        return self

    def _prepare(self, name: str, col: Any) -> _Reference:
        from watchkeeper.frames import Categories

        method = (self.methods or {}).get(name)
        coded = isinstance(col, Categories)
        if not coded and not is_categorical(col) and (method is None or method in NUMERIC_METHODS):
            x, info = numeric_sample(col, "reference")
            if self.cache_reference:
                return _Reference("numeric", np.sort(x), info, is_sorted=True)
            return _Reference("numeric", x, info)
        return _Reference("categorical", col, {}, counts=category_counts(col, "reference"))

    def test(self, current: Any) -> DatasetDrift:
        """Compare ``current`` with the fitted reference, column by column."""
        from watchkeeper.frames import to_columns

        if not hasattr(self, "reference_"):
            raise RuntimeError("call fit(reference) before test(current)")
        self._validate()
        cols = to_columns(current, encode_categories=True)
        missing = [c for c in self.reference_ if c not in cols]
        if missing:
            raise ValueError(f"column(s) missing from current: {', '.join(missing)}")
        if self.columns is None:
            extra = [c for c in cols if c not in self.reference_]
            if extra:
                raise ValueError(f"column(s) missing from reference: {', '.join(extra)}")
        self._rows({n: cols[n] for n in self.reference_}, "current")
        names = list(self.reference_)
        # Sorted copies go into buffers reused from column to column (one pair per thread, freed
        # when this call returns): a fresh array per column costs a page fault per 4 kB.
        scratch: dict[int, dict[str, np.ndarray]] = {}
        jobs = self.n_jobs or min(4, os.cpu_count() or 1)
        if jobs > 1 and len(names) > 1:
            with ThreadPoolExecutor(jobs) as pool:
                raw = list(pool.map(lambda n: self._column(n, cols[n], scratch), names))
        else:
            raw = [self._column(n, cols[n], scratch) for n in names]
        empty = [n for n, r in zip(names, raw, strict=True) if r.details.get("no_values")]
        if len(empty) == len(names):
            sides = sorted({str(raw[names.index(n)].details["no_values"]) for n in empty})
            raise ValueError(
                f"{' and '.join(sides)}: every value of every column is missing "
                f"({', '.join(empty)}): there is nothing to compare"
            )
        return self._verdict(dict(zip(names, raw, strict=True)))

    # ------------------------------------------------------------------ one column
    def _default_method(self, kind: str, n_ref: int, n_cur: int, n_categories: int,
                        min_expected: float) -> str:
        large = min(n_ref, n_cur) >= self.large_n
        if kind == "numeric":
            return "wasserstein" if large else "ks"
        if large:
            return "jensen_shannon"
        return "fisher" if n_categories == 2 and min_expected < 5 else "chi2"

    def _column(self, name: str, col: Any,
                scratch: dict[int, dict[str, np.ndarray]] | None = None) -> DriftResult:
        from watchkeeper.frames import Categories

        ref = self.reference_[name]
        method = (self.methods or {}).get(name)
        alpha = float(self.alpha)
        try:
            coded = isinstance(col, Categories)
            if ref.kind == "numeric" and not coded and not is_categorical(col):
                y, info_cur = numeric_sample(col, "current")
                buffers = {} if scratch is None else scratch.setdefault(threading.get_ident(), {})
                ys = _sorted_into(buffers, "current", y)
                info: dict[str, Any] = {**ref.info, **info_cur, "kind": "numeric"}
                xs = (ref.values if ref.is_sorted
                      else _sorted_into(buffers, "reference", ref.values))
                if xs.size == 0 or ys.size == 0:
                    return _no_values(method or "ks", "reference" if xs.size == 0 else "current",
                                      info)
                if method is None:
                    method = self._default_method("numeric", xs.size, ys.size, 0, 0.0)
                return self._numeric(method, xs, ys, info, alpha)
            return self._categorical(name, method, ref, col, alpha)
        except ValueError as exc:
            # A column that cannot be compared must not sink the others: say why instead.
            details: dict[str, Any] = {"kind": ref.kind}
            return skipped(method or "unknown", str(exc), None, None, details)

    def _numeric(self, method: str, xs: np.ndarray, ys: np.ndarray, info: dict[str, Any],
                 alpha: float) -> DriftResult:
        if method == "ks":
            return _ks_sorted(xs, ys, info, alpha)
        if method == "anderson_darling":
            return _ad_sorted(xs, ys, info, alpha)
        if method == "cramer_von_mises":
            return _cvm_sorted(xs, ys, info, alpha)
        if method == "wasserstein":
            return _wasserstein_sorted(xs, ys, info, self._threshold(method))
        if method == "energy":
            return _energy_sorted(xs, ys, info, self._threshold(method))
        if method in BINNED and method != "linf":
            threshold = self._threshold(method)
            details = _sizes(xs, ys, info)
            if xs.size == 0 or ys.size == 0:
                return skipped(method, "no finite values on one side", None, threshold, details)
            edges = quantile_edges(xs, int(self.bins))
            stat = binned_distance(method, binned_counts(xs, edges), binned_counts(ys, edges))
            details["edges"] = edges
            return DriftResult(method, statistic=stat, p_value=None, drift=stat > threshold,
                               threshold=threshold, details=details)
        raise ValueError(f"{method!r} is not a method for numeric columns")

    def _categorical(self, name: str, method: str | None, ref: _Reference, col: Any,
                     alpha: float) -> DriftResult:
        ref_values = ref.values
        ref_counts = ref.counts
        if ref.kind == "numeric" or ref_counts is None:
            # The reference looked numeric, the current does not: compare as categories.
            ref_values = np.asarray(ref.values).astype(object)
            ref_counts = category_counts(ref_values, "reference")
        labels, cref, ccur = merge_counts(ref_counts, category_counts(col, "current"))
        details = category_details(labels, cref, ccur)
        details["kind"] = "categorical"
        present = np.asarray([label != MISSING for label in labels], dtype=bool)
        for side, counts in (("reference", cref), ("current", ccur)):
            if not counts[present].sum():
                return _no_values(method or "chi2", side, {"kind": ref.kind})
        if ref.kind == "numeric":
            details["type_mismatch"] = True
        if method is None:
            n_ref, n_cur = int(cref.sum()), int(ccur.sum())
            total = n_ref + n_cur
            present = (cref + ccur)[(cref + ccur) > 0]
            min_expected = (
                float(min(n_ref, n_cur) * present.min() / total) if total and present.size
                else 0.0
            )
            method = self._default_method("categorical", n_ref, n_cur, int(present.size),
                                          min_expected)
        if method in ("chi2", "g_test"):
            return _table_test(method, cref, ccur, details, alpha, method == "chi2")
        if method == "fisher":
            from watchkeeper.frames import Categories
            from watchkeeper.stats._categorical import fisher

            decode = [v.decode() if isinstance(v, Categories) else v for v in (ref_values, col)]
            return fisher(decode[0], decode[1], alpha=alpha)
        if method in BINNED:
            threshold = self._threshold(method)
            if cref.sum() == 0 or ccur.sum() == 0:
                return skipped(method, "no values on one side", None, threshold, details)
            stat = binned_distance(method, cref, ccur)
            return DriftResult(method, statistic=stat, p_value=None, drift=stat > threshold,
                               threshold=threshold, details=details)
        raise ValueError(f"{method!r} is not a method for categorical column {name!r}")

    # ------------------------------------------------------------------ verdict
    def _verdict(self, raw: dict[str, DriftResult]) -> DatasetDrift:
        alpha = float(self.alpha)
        tested = [n for n, r in raw.items() if r.p_value is not None]
        adjusted = adjust_p_values([raw[n].p_value for n in tested], self.correction)
        results = dict(raw)
        for name, p_adj in zip(tested, adjusted, strict=True):
            r = raw[name]
            results[name] = DriftResult(
                r.method, statistic=r.statistic, p_value=float(p_adj),
                drift=bool(p_adj < alpha), alpha=alpha, threshold=r.threshold,
                details={**r.details, "p_value_raw": r.p_value, "correction": self.correction},
            )
        n_drifted = sum(r.drift for r in results.values())
        share = n_drifted / len(results)
        drift = n_drifted > 0 if self.dataset_rule == "any" else share >= self.drift_share
        return DatasetDrift(
            drift=drift,
            method=self.dataset_rule,
            columns=results,
            details={
                "alpha": alpha,
                "correction": self.correction,
                "n_columns": len(results),
                "n_drifted": n_drifted,
                "share_drifted": share,
                "drift_share": self.drift_share if self.dataset_rule == "share" else None,
            },
        )


def _sorted_into(buffers: dict[str, np.ndarray], slot: str, values: np.ndarray) -> np.ndarray:
    """``values`` sorted, in the buffer ``slot`` (grown when too small, else reused)."""
    buf = buffers.get(slot)
    if buf is None or buf.size < values.size:
        buf = buffers[slot] = np.empty(values.size, dtype=np.float64)
    out = buf[: values.size]
    np.copyto(out, values)
    out.sort()
    return out


def _no_values(method: str, side: str, details: dict[str, Any]) -> DriftResult:
    """A column with no value on one side: a data-quality problem to report, not drift."""
    reason = f"no values in {side} (all missing): a data-quality problem, not drift"
    return skipped(method, reason, None, None, {**details, "no_values": side})


def detect_drift(reference: Any, current: Any, **options: Any) -> DatasetDrift:
    """Fit a :class:`ColumnDrift` on ``reference`` and test ``current`` in one call.

    Keyword options are those of :class:`ColumnDrift`.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> ref = {"x": rng.normal(size=50_000)}
    >>> detect_drift(ref, {"x": rng.normal(0.01, size=50_000)}).drift  # 0.01σ: irrelevant
    False
    >>> detect_drift(ref, {"x": rng.normal(0.3, size=50_000)}).columns["x"].method
    'wasserstein'
    """
    options.setdefault("cache_reference", False)
    return ColumnDrift(**options).fit(reference).test(current)
