"""Explanations of a drift or performance finding: which features and which segments account
for it.

**Features.** A domain classifier (scikit-learn's histogram gradient boosting) learns to tell
reference rows from window rows on one half of each; on the other half, each feature's
*permutation importance* is the drop of the classifier's AUC when that feature's column is
shuffled. The null threshold comes from the same held-out half with its reference/window
labels shuffled (the trained classifier and the shuffled columns kept): if nothing changed the
labels are exchangeable with the rows, so the largest importance of any feature exceeds the
``1 - alpha`` quantile of those shuffled maxima with probability at most ``alpha`` (a max-T
permutation test, Westfall & Young 1993). A feature above the threshold changed, whatever the
others did.

**Segments.** For each tag (``region``, ``source``...), each value's share of the drift: the
subject's histogram difference ``d = p_window - p_reference`` is the sum over segments of each
segment's part ``d_s = n_window_s / n_window * p_window_s - n_reference_s / n_reference *
p_reference_s``, so ``share_s = <d_s, sign d> / <d, sign d>`` adds up to 1 over a tag's values.
A segment whose traffic grew (``mix_share``) and a segment whose values moved (the rest) are told
apart. For a performance finding the error rate's change is split the same way: ``Δ = Σ_s
(π_s e_s - ρ_s r_s)``, window and reference shares ``π, ρ`` and error rates ``e, r``. Each segment
also gets a p-value for its own change (chi-square of its histogram, or two proportions),
adjusted over the segments (Benjamini–Hochberg).

Examples
--------
>>> import numpy as np
>>> from watchkeeper.window import Window
>>> rng = np.random.default_rng(0)
>>> def batch(n, shift):
...     region = rng.choice(["eu", "us", "apac"], n)
...     x = rng.normal(size=n) + shift * (region == "eu")
...     return Window.from_columns(
...         features={"x": x, "y": rng.normal(size=n)}, tags={"region": region})
>>> e = explain_shift(batch(3000, 0.0), batch(3000, 1.5), subject="x", seed=1)
>>> e.features[0]["name"], e.features[0]["above_null"], e.features[1]["above_null"]
('x', True, False)
>>> e.segments[0]["tag"], e.segments[0]["value"]
('region', 'eu')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from watchkeeper.profiles import binary_labels
from watchkeeper.window import Window

MAX_FEATURES = 50
"""Most features the domain classifier reads (the first by name past it)."""
MAX_TAGS = 10
"""Most tags whose values are taken as segments."""
MAX_VALUES = 20
"""Most values of one tag kept as segments (the most frequent; the rest pooled as ``(other)``)."""
MAX_SEGMENT_ROWS = 20
"""Most segments an explanation lists (largest shares first)."""
MAX_CATEGORIES = 250
"""Most categories of a text feature the classifier tells apart (the rest pooled)."""
HIDDEN_TAGS = frozenset({"payload_ref", "text"})
OTHER = "(other)"
MISSING = "(missing)"


@dataclass(frozen=True)
class Explanation:
    """Which features and segments account for a finding; plain data in :meth:`to_dict`.

    ``features``: ``{"name", "importance", "p_value", "above_null"}`` largest first;
    ``segments``: ``{"tag", "value", "share", "mix_share", "n_reference", "n_window",
    "p_value", ...}`` largest share first (at most :data:`MAX_SEGMENT_ROWS`).
    """

    kind: str
    subject: str | None
    auc: float | None
    auc_p_value: float | None
    threshold: float | None
    alpha: float
    features: tuple[dict[str, Any], ...] = ()
    segments: tuple[dict[str, Any], ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; NaN becomes None."""

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [clean(x) for x in v]
            if isinstance(v, np.generic):
                return clean(v.item())
            return v

        out: dict[str, Any] = clean(
            {
                "kind": self.kind,
                "subject": self.subject,
                "auc": self.auc,
                "auc_p_value": self.auc_p_value,
                "threshold": self.threshold,
                "alpha": self.alpha,
                "features": list(self.features),
                "segments": list(self.segments),
                "details": dict(self.details),
            }
        )
        return out


# -- the domain classifier and its permutation importance ------------------------------------


def _text(column: np.ndarray) -> np.ndarray:
    """Values as text (``(missing)`` for None and NaN), vectorised."""
    arr = np.asarray(column)
    missing: np.ndarray | None = None
    if arr.dtype == object:
        missing = np.asarray(arr == None, dtype=np.bool_)  # noqa: E711 (elementwise)
    elif arr.dtype.kind == "f":
        missing = np.isnan(arr)
    out = arr.astype(str).astype(object)
    if missing is not None and missing.any():
        out[missing] = MISSING
    return out


def _numeric(column: np.ndarray) -> np.ndarray | None:
    arr = np.asarray(column)
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64)
    return None


def _design(
    reference: Mapping[str, np.ndarray], current: Mapping[str, np.ndarray]
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(names, reference matrix, window matrix, categorical mask); text columns as codes of
    the reference's most frequent categories (NaN for missing)."""
    names = sorted(set(reference) & set(current))[:MAX_FEATURES]
    ref_cols, cur_cols, categorical = [], [], []
    for name in names:
        a, b = _numeric(reference[name]), _numeric(current[name])
        if a is not None and b is not None:
            ref_cols.append(a)
            cur_cols.append(b)
            categorical.append(False)
            continue
        ta, tb = _text(reference[name]), _text(current[name])
        values, counts = np.unique(np.concatenate([ta, tb]), return_counts=True)
        keep = values[np.argsort(-counts, kind="stable")][:MAX_CATEGORIES]
        keep = keep[keep != MISSING]
        lookup = np.sort(keep)

        def codes(t: np.ndarray, lookup: np.ndarray = lookup) -> np.ndarray:
            pos = np.clip(np.searchsorted(lookup, t), 0, max(len(lookup) - 1, 0))
            known = (lookup[pos] == t) if len(lookup) else np.zeros(len(t), dtype=bool)
            out = np.where(known, pos, len(lookup)).astype(np.float64)  # pooled: one code
            out[t == MISSING] = np.nan
            return out

        ref_cols.append(codes(ta))
        cur_cols.append(codes(tb))
        categorical.append(True)
    n_a = len(next(iter(reference.values()))) if reference else 0
    n_b = len(next(iter(current.values()))) if current else 0
    ref_x = np.column_stack(ref_cols) if ref_cols else np.empty((n_a, 0))
    cur_x = np.column_stack(cur_cols) if cur_cols else np.empty((n_b, 0))
    return names, ref_x, cur_x, np.asarray(categorical, dtype=bool)


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) along the last axis."""
    from scipy.stats import rankdata

    return np.asarray(rankdata(scores, axis=-1), dtype=np.float64)


def feature_importance(
    reference: Mapping[str, np.ndarray],
    current: Mapping[str, np.ndarray],
    *,
    alpha: float = 0.05,
    n_permutations: int = 200,
    n_repeats: int = 3,
    max_samples: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """Permutation importance of each feature in telling ``current`` rows from ``reference``
    rows, with the max-T null threshold at level ``alpha`` (see the module's docstring).

    Returns ``{"auc", "auc_p_value", "threshold", "features", "n_reference", "n_window"}``.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha!r}")
    for name, value, lo, hi in (
        ("n_permutations", n_permutations, 20, 10_000),
        ("n_repeats", n_repeats, 1, 20),
        ("max_samples", max_samples, 50, 100_000),
    ):
        if not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"{name}: an integer in [{lo}, {hi}], got {value!r}")
    names, ref_x, cur_x, categorical = _design(reference, current)
    rng = np.random.default_rng(seed)
    n = min(len(ref_x), len(cur_x), max_samples)
    empty: dict[str, Any] = {"auc": None, "auc_p_value": None, "threshold": None, "features": []}
    if not names or n < 40:
        return {**empty, "n_reference": len(ref_x), "n_window": len(cur_x)}
    ref_x = ref_x[rng.choice(len(ref_x), n, replace=False)]
    cur_x = cur_x[rng.choice(len(cur_x), n, replace=False)]
    half = n // 2
    train = np.vstack([ref_x[:half], cur_x[:half]])
    y_train = np.r_[np.zeros(half), np.ones(half)]
    held = np.vstack([ref_x[half:], cur_x[half:]])
    y_held = np.r_[np.zeros(n - half), np.ones(n - half)].astype(bool)

    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    clf = HistGradientBoostingClassifier(
        max_iter=40,
        max_leaf_nodes=15,
        learning_rate=0.15,
        early_stopping=False,
        categorical_features=categorical if categorical.any() else None,
        random_state=seed,
    )
    # one thread: the server runs several requests at once, and OpenMP threads fighting over
    # a few busy cores are slower than one
    with threadpool_limits(1):
        clf.fit(train, y_train)

    # every score vector the test needs: the intact one, then each feature x each repeat
    p = len(names)
    stacked = [held]
    for j in range(p):
        for _ in range(n_repeats):
            shuffled = held.copy()
            shuffled[:, j] = held[rng.permutation(len(held)), j]
            stacked.append(shuffled)
    with threadpool_limits(1):
        proba = clf.predict_proba(np.vstack(stacked))[:, 1]
    proba = proba.reshape(1 + p * n_repeats, len(held))
    ranks = _ranks(proba)  # (1 + p*r, m)

    n1 = int(y_held.sum())
    n0 = len(y_held) - n1

    def aucs(labels: np.ndarray) -> np.ndarray:
        """AUC of every score vector under each row of ``labels`` (k, m) -> (k, 1 + p*r)."""
        sums = labels.astype(np.float64) @ ranks.T
        out: np.ndarray = (sums - n1 * (n1 + 1) / 2.0) / (n1 * n0)
        return out

    def importance(auc: np.ndarray) -> np.ndarray:
        permuted = auc[:, 1:].reshape(len(auc), p, n_repeats).mean(axis=2)
        out: np.ndarray = auc[:, :1] - permuted  # (k, p)
        return out

    observed = aucs(y_held[None, :])
    imp = importance(observed)[0]
    nulls = np.stack([rng.permutation(y_held) for _ in range(n_permutations)])
    null_auc = aucs(nulls)
    null_max = importance(null_auc).max(axis=1)
    threshold = float(np.quantile(null_max, 1.0 - alpha, method="higher"))
    auc = float(observed[0, 0])
    auc_p = float((1 + np.sum(null_auc[:, 0] >= auc - 1e-12)) / (n_permutations + 1))
    p_values = (1 + (null_max[None, :] >= imp[:, None] - 1e-12).sum(axis=1)) / (n_permutations + 1)
    order = np.argsort(-imp, kind="stable")
    features = [
        {
            "name": names[j],
            "importance": float(imp[j]),
            "p_value": float(p_values[j]),
            "above_null": bool(imp[j] > threshold),
        }
        for j in order.tolist()
    ]
    return {
        "auc": auc,
        "auc_p_value": auc_p,
        "threshold": threshold,
        "features": features,
        "n_reference": n,
        "n_window": n,
    }


# -- segments --------------------------------------------------------------------------------


def _bh(p_values: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values over the finite ones; a NaN (no test) stays NaN.

    >>> _bh(np.array([0.01, np.nan, 0.04, 0.03])).round(3).tolist()
    [0.03, nan, 0.04, 0.04]
    """
    out = np.full(len(p_values), np.nan)
    finite = np.flatnonzero(np.isfinite(p_values))
    m = len(finite)
    if m == 0:
        return out
    p = p_values[finite]
    order = np.argsort(p)
    adjusted = np.minimum.accumulate((p[order] * m / np.arange(1, m + 1))[::-1])[::-1]
    out[finite[order]] = np.minimum(adjusted, 1.0)
    return out


def _segment_labels(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Codes of each row's segment (the most frequent values, the rest pooled)."""
    ta, tb = _text(ref), _text(cur)
    values, inverse, counts = np.unique(
        np.concatenate([ta, tb]), return_inverse=True, return_counts=True
    )
    order = np.argsort(-counts, kind="stable")
    keep = list(values[order][:MAX_VALUES].tolist())
    names = [*keep, OTHER] if len(values) > MAX_VALUES else keep
    code_of = np.full(len(values), len(keep), dtype=np.int64)  # past the kept: pooled
    code_of[order[:MAX_VALUES]] = np.arange(len(keep))
    codes = code_of[inverse.reshape(-1)]
    return codes[: len(ta)], codes[len(ta) :], names


def _bins(ref: np.ndarray, cur: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Bin codes of both samples: reference deciles for numbers, categories for text; missing
    values get a bin of their own."""
    a, b = _numeric(ref), _numeric(cur)
    if a is not None and b is not None:
        finite = a[np.isfinite(a)]
        if finite.size == 0:
            edges = np.empty(0)
        else:
            edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
        k = len(edges) + 1

        def code(x: np.ndarray) -> np.ndarray:
            out = np.searchsorted(edges, x, side="right")
            return np.where(np.isfinite(x), out, k)

        return code(a), code(b), k + 1
    ca, cb, names = _segment_labels(ref, cur)
    return ca, cb, len(names) + 1


def _chi2_p(ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """Chi-square p-value of each row's (reference vs window) histogram, vectorised."""
    from scipy.stats import chi2

    total = ref_counts + cur_counts
    n_ref = ref_counts.sum(axis=1, keepdims=True)
    n_cur = cur_counts.sum(axis=1, keepdims=True)
    n = np.maximum(n_ref + n_cur, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        e_ref = total * n_ref / n
        e_cur = total * n_cur / n
        stat = np.where(e_ref > 0, (ref_counts - e_ref) ** 2 / e_ref, 0.0) + np.where(
            e_cur > 0, (cur_counts - e_cur) ** 2 / e_cur, 0.0
        )
    dof = np.maximum((total > 0).sum(axis=1) - 1, 1)
    p = chi2.sf(stat.sum(axis=1), dof)
    small = (n_ref[:, 0] < 5) | (n_cur[:, 0] < 5)
    return np.where(small, np.nan, p)


def segment_shares(
    reference_values: np.ndarray,
    window_values: np.ndarray,
    reference_segments: Mapping[str, np.ndarray],
    window_segments: Mapping[str, np.ndarray],
    *,
    bins: int = 10,
) -> list[dict[str, Any]]:
    """Each segment's share of the change of a variable's distribution (see the module's
    docstring): one row per (tag, value), shares summing to 1 over each tag's values.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> seg_r, seg_w = rng.choice(["a", "b"], 4000), rng.choice(["a", "b"], 4000)
    >>> x_r, x_w = rng.normal(size=4000), rng.normal(size=4000) + 2.0 * (seg_w == "b")
    >>> rows = segment_shares(x_r, x_w, {"s": seg_r}, {"s": seg_w})
    >>> [(r["value"], round(r["share"], 1)) for r in rows]
    [('b', 1.0), ('a', -0.0)]
    """
    if not isinstance(bins, int) or not 2 <= bins <= 100:
        raise ValueError(f"bins: an integer in [2, 100], got {bins!r}")
    ca, cb, k = _bins(np.asarray(reference_values), np.asarray(window_values), bins)
    n_ref, n_cur = max(len(ca), 1), max(len(cb), 1)
    overall = np.bincount(cb, minlength=k) / n_cur - np.bincount(ca, minlength=k) / n_ref
    sign = np.sign(overall)
    total = float(np.abs(overall).sum())
    rows: list[dict[str, Any]] = []
    for tag in sorted(set(reference_segments) & set(window_segments))[:MAX_TAGS]:
        sa, sb, names = _segment_labels(reference_segments[tag], window_segments[tag])
        m = len(names)
        ref_counts = np.bincount(sa * k + ca, minlength=m * k).reshape(m, k).astype(np.float64)
        cur_counts = np.bincount(sb * k + cb, minlength=m * k).reshape(m, k).astype(np.float64)
        parts = cur_counts / n_cur - ref_counts / n_ref  # (m, k), sums to `overall`
        rho = ref_counts.sum(axis=1) / n_ref
        pi = cur_counts.sum(axis=1) / n_cur
        with np.errstate(divide="ignore", invalid="ignore"):
            q = ref_counts / ref_counts.sum(axis=1, keepdims=True)
            p = cur_counts / cur_counts.sum(axis=1, keepdims=True)
            mix = np.where(rho > 0, (pi - rho) * (q @ sign), parts @ sign)
            own = 0.5 * np.abs(np.nan_to_num(p) - np.nan_to_num(q)).sum(axis=1)
        shares = (parts @ sign) / total if total > 0 else np.zeros(m)
        mixes = mix / total if total > 0 else np.zeros(m)
        p_values = _chi2_p(ref_counts, cur_counts)
        adjusted = _bh(p_values)
        for i, name in enumerate(names):
            rows.append(
                {
                    "tag": tag,
                    "value": name,
                    "share": float(shares[i]),
                    "mix_share": float(mixes[i]),
                    "n_reference": int(ref_counts[i].sum()),
                    "n_window": int(cur_counts[i].sum()),
                    "distance": float(own[i]) if rho[i] > 0 and pi[i] > 0 else None,
                    "p_value": float(adjusted[i]),
                }
            )
    rows.sort(key=lambda r: -r["share"])
    return rows


def error_shares(
    reference_errors: np.ndarray,
    window_errors: np.ndarray,
    reference_segments: Mapping[str, np.ndarray],
    window_segments: Mapping[str, np.ndarray],
) -> list[dict[str, Any]]:
    """Each segment's share of the change of the error rate (1 wrong, 0 right, NaN not
    labelled): ``share = (π_s e_s - ρ_s r_s) / Δ``, over labelled rows.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> seg = rng.choice(["a", "b"], 4000)
    >>> ref = (rng.random(4000) < 0.1).astype(float)
    >>> win = (rng.random(4000) < np.where(seg == "b", 0.4, 0.1)).astype(float)
    >>> rows = error_shares(ref, win, {"s": seg}, {"s": seg})
    >>> rows[0]["value"], rows[0]["share"] > 0.9
    ('b', True)
    """
    ra = np.asarray(reference_errors, dtype=np.float64)
    wa = np.asarray(window_errors, dtype=np.float64)
    la, lb = np.isfinite(ra), np.isfinite(wa)
    n_ref, n_cur = max(int(la.sum()), 1), max(int(lb.sum()), 1)
    delta = float(np.nansum(wa) / n_cur - np.nansum(ra) / n_ref)
    rows: list[dict[str, Any]] = []
    for tag in sorted(set(reference_segments) & set(window_segments))[:MAX_TAGS]:
        sa, sb, names = _segment_labels(reference_segments[tag], window_segments[tag])
        m = len(names)
        ref_n = np.bincount(sa[la], minlength=m).astype(np.float64)
        cur_n = np.bincount(sb[lb], minlength=m).astype(np.float64)
        ref_e = np.bincount(sa[la], weights=ra[la], minlength=m)
        cur_e = np.bincount(sb[lb], weights=wa[lb], minlength=m)
        terms = cur_e / n_cur - ref_e / n_ref
        with np.errstate(divide="ignore", invalid="ignore"):
            r_rate = ref_e / ref_n
            e_rate = cur_e / cur_n
            mix = np.where(ref_n > 0, (cur_n / n_cur - ref_n / n_ref) * r_rate, terms)
            pooled = (ref_e + cur_e) / (ref_n + cur_n)
            se = np.sqrt(pooled * (1 - pooled) * (1 / ref_n + 1 / cur_n))
            z = (e_rate - r_rate) / se
        from scipy.stats import norm

        p_values = np.where((ref_n >= 5) & (cur_n >= 5) & (se > 0), 2 * norm.sf(np.abs(z)), np.nan)
        adjusted = _bh(p_values)
        for i, name in enumerate(names):
            rows.append(
                {
                    "tag": tag,
                    "value": name,
                    "share": float(terms[i] / delta) if delta != 0 else 0.0,
                    "mix_share": float(mix[i] / delta) if delta != 0 else 0.0,
                    "n_reference": int(ref_n[i]),
                    "n_window": int(cur_n[i]),
                    "error_reference": float(r_rate[i]) if ref_n[i] else None,
                    "error_window": float(e_rate[i]) if cur_n[i] else None,
                    "p_value": float(adjusted[i]),
                }
            )
    rows.sort(key=lambda r: -r["share"])
    return rows


# -- one call for a finding ------------------------------------------------------------------


def _errors(window: Window, threshold: float, positive_label: Any) -> np.ndarray | None:
    """1 where a labelled prediction is wrong, 0 where right, NaN where unlabelled."""
    if window.labels is None or window.scores is None:
        return None
    y = binary_labels(window.labels, positive_label)
    scores = np.asarray(window.scores, dtype=np.float64)
    ok = np.isfinite(y) & np.isfinite(scores)
    wrong = ((scores >= threshold) != (y == 1.0)).astype(np.float64)
    return np.where(ok, wrong, np.nan)


def _tags(window: Window, tags: Sequence[str] | None) -> dict[str, np.ndarray]:
    names = [t for t in sorted(window.tags) if t not in HIDDEN_TAGS] if tags is None else tags
    return {t: np.asarray(window.tags[t]) for t in names if t in window.tags}


def explain_shift(
    reference: Window,
    window: Window,
    *,
    subject: str | None = None,
    performance: bool = False,
    threshold: float = 0.5,
    positive_label: Any = None,
    tags: Sequence[str] | None = None,
    alpha: float = 0.05,
    n_permutations: int = 200,
    max_samples: int = 5000,
    seed: int = 0,
) -> Explanation:
    """Explain a change between ``reference`` and ``window``.

    Parameters
    ----------
    subject
        The finding's subject: a feature (its segments are measured on that feature), or
        ``"score"``; anything else (``"*"``, ``"embedding"``) is measured on the domain
        classifier's held-out view, i.e. on whatever changed.
    performance
        Split the change of the error rate (labels against ``scores >= threshold``) by
        segment instead of the subject's distribution; without labels on both sides the
        segments are those of the distribution and ``details["performance"]`` says why.
    tags
        Which tags make segments (default: every tag but payload references and text).
    alpha
        Level of the features' null threshold (family-wise over the features).
    """
    if not isinstance(reference, Window) or not isinstance(window, Window):
        raise TypeError("reference and window must be Window objects")
    fi = feature_importance(
        reference.features,
        window.features,
        alpha=alpha,
        n_permutations=n_permutations,
        max_samples=max_samples,
        seed=seed,
    )
    ref_tags, win_tags = _tags(reference, tags), _tags(window, tags)
    details: dict[str, Any] = {
        "n_reference": len(reference),
        "n_window": len(window),
        "classifier_rows": fi["n_reference"],
        "tags": sorted(set(ref_tags) & set(win_tags)),
    }
    kind = "drift"
    segments: list[dict[str, Any]] = []
    if performance:
        ref_err = _errors(reference, threshold, positive_label)
        win_err = _errors(window, threshold, positive_label)
        if (
            ref_err is None
            or win_err is None
            or not (np.isfinite(ref_err).any() and np.isfinite(win_err).any())
        ):
            details["performance"] = "no labelled scores on both sides: distribution shown"
        else:
            kind = "performance"
            details["error_reference"] = float(np.nanmean(ref_err))
            details["error_window"] = float(np.nanmean(win_err))
            segments = error_shares(ref_err, win_err, ref_tags, win_tags)
    if kind == "drift":
        top = fi["features"][0]["name"] if fi["features"] else None
        measured, ref_values, win_values = _measured(reference, window, subject, top)
        details["measured"] = measured
        if ref_values is not None and win_values is not None:
            segments = segment_shares(ref_values, win_values, ref_tags, win_tags)
    return Explanation(
        kind=kind,
        subject=subject,
        auc=fi["auc"],
        auc_p_value=fi["auc_p_value"],
        threshold=fi["threshold"],
        alpha=alpha,
        features=tuple(fi["features"][:MAX_FEATURES]),
        segments=tuple(segments[:MAX_SEGMENT_ROWS]),
        details=details,
    )


def _measured(
    reference: Window, window: Window, subject: str | None, top: str | None
) -> tuple[str, np.ndarray | None, np.ndarray | None]:
    """Which variable the segments split: the subject feature, the score, or (for a
    model-level finding) the feature the domain classifier ranks first."""
    if subject is not None and subject in reference.features and subject in window.features:
        return (
            subject,
            np.asarray(reference.features[subject]),
            np.asarray(window.features[subject]),
        )
    if subject == "score" and reference.scores is not None and window.scores is not None:
        return "score", np.asarray(reference.scores), np.asarray(window.scores)
    if top is None:
        return "none", None, None
    return top, np.asarray(reference.features[top]), np.asarray(window.features[top])
