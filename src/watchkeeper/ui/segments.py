"""Segments of a window: per-tag tables and the automatic search for weak segments.

:func:`weak_segments` is a SliceLine-like search (Sagadeeva & Boehm, SIGMOD 2021) over tags and
features binned at their quartiles: single slices, then pairs of the strongest, each with at
least ``min_support`` events. Each slice's rate (of errors where enough events are labelled,
else of flags) is compared with the rest of the window by a two-proportion z-test; the p-values
of every slice tested are adjusted together (Benjamini–Hochberg), and the slices whose adjusted
p-value is below ``alpha`` and whose rate is higher are ranked by effect × √support. Counting is
one matrix product over all slices, no loop per event.

Examples
--------
>>> import numpy as np
>>> from watchkeeper.window import Window
>>> rng = np.random.default_rng(0)
>>> source = rng.choice(["scanner-a", "scanner-b"], 2000)
>>> scores = np.where(source == "scanner-b", rng.random(2000) * 0.3 + 0.6, rng.random(2000) * 0.7)
>>> w = Window.from_columns(scores=scores, tags={"source": source})
>>> r = weak_segments(w, {"": 0.5})
>>> r["segments"][0]["label"]
'source = scanner-b'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import numpy as np

MAX_VALUES = 20
MAX_LEVEL1 = 80
PAIR_TOP = 15
_HIDDEN_TAGS = {"payload_ref", "text"}


def _flags(window: Any, thresholds: Mapping[str, float]) -> np.ndarray | None:
    if window.scores is None:
        return None
    default = thresholds.get("", 0.5)
    versions = window.versions if window.versions is not None else [None] * len(window)
    limit = np.array(
        [
            thresholds.get(v, default) if v is not None else default
            for v in np.asarray(versions, dtype=object).tolist()
        ],
        dtype=float,
    )
    scores = np.asarray(window.scores, dtype=float)
    return np.where(np.isfinite(scores), (scores >= limit).astype(float), np.nan)


def _errors(window: Any, flags: np.ndarray | None) -> np.ndarray | None:
    """1 where a labelled prediction is wrong, 0 where right, NaN where not labelled."""
    labels = window.labels
    if labels is None:
        return None
    has = np.array([v is not None for v in labels.tolist()], dtype=bool)
    if not has.any():
        return None
    words = {"1", "1.0", "true", "yes", "positive"}
    positive = np.array([str(v).strip().lower() in words for v in labels.tolist()], dtype=bool)
    if window.predicted is not None:
        wrong = np.array(
            [
                str(p) != str(y)
                for p, y in zip(window.predicted.tolist(), labels.tolist(), strict=True)
            ]
        )
    elif flags is not None:
        wrong = (flags == 1.0) != positive
    else:
        return None
    return np.where(has, wrong.astype(float), np.nan)


def _candidates(window: Any) -> list[tuple[str, dict[str, str], np.ndarray]]:
    """Level-1 slices: each frequent tag value, each quartile bin of each numeric feature."""
    out: list[tuple[str, dict[str, str], np.ndarray]] = []
    for name, column in sorted(window.tags.items()):
        if name in _HIDDEN_TAGS:
            continue
        text = np.asarray([None if v is None else str(v) for v in column.tolist()], dtype=object)
        values, counts = np.unique(text[text != None], return_counts=True)  # noqa: E711
        for value in values[np.argsort(-counts)][:MAX_VALUES].tolist():
            out.append((f"{name} = {value}", {"tag": f"{name}={value}"}, text == value))
    for name, column in sorted(window.features.items()):
        values = np.asarray(column)
        if values.dtype.kind not in "fiu":
            continue
        values = values.astype(float)
        finite = np.isfinite(values)
        if finite.sum() < 8:
            continue
        edges = np.unique(np.quantile(values[finite], [0.0, 0.25, 0.5, 0.75, 1.0]))
        for lo, hi in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
            mask = finite & (values >= lo) & (values <= hi)
            out.append(
                (f"{name} in [{lo:.4g}, {hi:.4g}]", {"feature": f"{name}:{lo!r}:{hi!r}"}, mask)
            )
    return out[:MAX_LEVEL1]


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values."""
    m = len(p)
    if not m:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def _test(masks: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Support, slice rate, rest rate and two-sided p of a two-proportion z-test per slice."""
    from scipy.special import ndtr

    m = masks.astype(np.float64)
    n = m.sum(axis=0)
    k = y @ m
    total_n, total_k = float(len(y)), float(y.sum())
    rest_n = total_n - n
    rest_k = total_k - k
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = k / n
        rest = rest_k / rest_n
        pooled = total_k / total_n
        se = np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / rest_n))
        z = (rate - rest) / se
    p = np.where(np.isfinite(z), 2 * ndtr(-np.abs(z)), 1.0)
    return n, rate, rest, p


def weak_segments(
    window: Any,
    thresholds: Mapping[str, float],
    *,
    min_support: int = 30,
    alpha: float = 0.05,
    top: int = 20,
) -> dict[str, Any]:
    """Slices of ``window`` whose error (or flag) rate is higher than the rest's.

    Parameters
    ----------
    window
        A :class:`~watchkeeper.window.Window` with scores and tags or features.
    thresholds
        Flag threshold per version (``""`` for the default).
    min_support
        Fewest events a slice (and the rest of the window) must hold.
    alpha
        False discovery rate over every slice tested.
    top
        Most slices returned.

    Returns
    -------
    dict
        ``{"outcome": "error" | "flag" | None, "tested", "min_support", "segments": [...]}``;
        each segment has ``label``, ``support``, ``rate``, ``rest``, ``effect``, ``p_value``,
        ``p_adjusted``, ``score`` and ``query`` (the explorer's parameters).
    """
    if isinstance(min_support, bool) or not isinstance(min_support, int) or min_support < 2:
        raise ValueError(f"min_support: expected an integer >= 2, got {min_support!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha: expected a level in (0, 1), got {alpha!r}")
    empty: dict[str, Any] = {
        "outcome": None,
        "tested": 0,
        "min_support": min_support,
        "segments": [],
    }
    flags = _flags(window, thresholds)
    errors = _errors(window, flags)
    if errors is not None and np.isfinite(errors).sum() >= 4 * min_support:
        outcome, y = "error", errors
    elif flags is not None:
        outcome, y = "flag", flags
    else:
        return empty
    keep = np.isfinite(y)
    if keep.sum() < 2 * min_support:
        return {**empty, "outcome": outcome}
    y = y[keep]
    level1 = [(label, q, mask[keep]) for label, q, mask in _candidates(window)]
    if not level1:
        return {**empty, "outcome": outcome}
    masks = np.column_stack([m for _, _, m in level1])
    support = masks.sum(axis=0)
    ok = (support >= min_support) & (len(y) - support >= min_support)
    labels = [level1[i][0] for i in np.flatnonzero(ok)]
    queries = [[level1[i][1]] for i in np.flatnonzero(ok)]
    masks = masks[:, ok]
    if not masks.shape[1]:
        return {**empty, "outcome": outcome}
    n, rate, rest, p = _test(masks, y)
    # Level 2: pairs of the strongest single slices (of different columns), as SliceLine
    # grows its lattice from the slices that pass the support and score bounds.
    strongest = np.argsort(-(rate - rest) * np.sqrt(n))[:PAIR_TOP]
    pair_labels, pair_queries, pair_masks = [], [], []
    for a_i, a in enumerate(strongest.tolist()):
        for b in strongest[a_i + 1 :].tolist():
            if labels[a].split(" ")[0] == labels[b].split(" ")[0]:
                continue
            mask = masks[:, a] & masks[:, b]
            s = int(mask.sum())
            if s >= min_support and len(y) - s >= min_support:
                pair_labels.append(f"{labels[a]} and {labels[b]}")
                pair_queries.append(queries[a] + queries[b])
                pair_masks.append(mask)
    if pair_masks:
        n2, rate2, rest2, p2 = _test(np.column_stack(pair_masks), y)
        labels += pair_labels
        queries += pair_queries
        n, rate, rest, p = (
            np.concatenate(x) for x in ((n, n2), (rate, rate2), (rest, rest2), (p, p2))
        )
    adjusted = _bh(p)
    effect = rate - rest
    score = effect * np.sqrt(n)
    found = np.flatnonzero((adjusted < alpha) & (effect > 0))
    found = found[np.argsort(-score[found])][:top]
    segments = []
    for i in found.tolist():
        params: list[tuple[str, str]] = []
        for q in queries[i]:
            params.extend(q.items())
        if outcome == "error":
            params.append(("correct", "no"))
        else:
            params.append(("flagged", "yes"))
        segments.append(
            {
                "label": labels[i],
                "support": int(n[i]),
                "rate": float(rate[i]),
                "rest": float(rest[i]),
                "effect": float(effect[i]),
                "p_value": float(p[i]),
                "p_adjusted": float(adjusted[i]),
                "score": float(score[i]),
                "query": urlencode(params),
            }
        )
    return {"outcome": outcome, "tested": len(p), "min_support": min_support, "segments": segments}


def segment_tables(
    window: Any, thresholds: Mapping[str, float], expected_rate: float | None = None
) -> list[dict[str, Any]]:
    """One table per tag: events, flag rate against its band, accuracy where labelled.

    The band is ``expected_rate`` (the operating point's TPR·π + FPR·(1−π); default the
    window's overall flag rate) ± 2.576 binomial standard errors of the segment's size (99%);
    a segment outside it is marked.
    """
    flags = _flags(window, thresholds)
    errors = _errors(window, flags)
    overall = float(np.nanmean(flags)) if flags is not None and np.isfinite(flags).any() else None
    if expected_rate is not None:
        if not 0.0 <= expected_rate <= 1.0:
            raise ValueError(f"expected_rate: expected a share in [0, 1], got {expected_rate!r}")
        overall = float(expected_rate)
    tables = []
    for name, column in sorted(window.tags.items()):
        if name in _HIDDEN_TAGS:
            continue
        text = np.asarray([None if v is None else str(v) for v in column.tolist()], dtype=object)
        present = text != None  # noqa: E711
        values, inverse, counts = np.unique(
            text[present].astype(str), return_inverse=True, return_counts=True
        )
        rows = []
        for j in np.argsort(-counts)[:50].tolist():
            mask = np.zeros(len(text), dtype=bool)
            mask[np.flatnonzero(present)[inverse == j]] = True
            row: dict[str, Any] = {
                "value": values[j],
                "n": int(counts[j]),
                "flag_rate": None,
                "band": None,
                "outside": False,
                "accuracy": None,
                "labelled": 0,
            }
            if flags is not None and overall is not None:
                f = flags[mask]
                f = f[np.isfinite(f)]
                if f.size:
                    row["flag_rate"] = float(f.mean())
                    half = 2.576 * math.sqrt(overall * (1 - overall) / f.size)
                    row["band"] = (max(0.0, overall - half), min(1.0, overall + half))
                    row["outside"] = not row["band"][0] <= row["flag_rate"] <= row["band"][1]
            if errors is not None:
                e = errors[mask]
                e = e[np.isfinite(e)]
                row["labelled"] = int(e.size)
                if e.size:
                    row["accuracy"] = float(1 - e.mean())
            rows.append(row)
        tables.append({"name": name, "rows": rows})
    return tables


def weak_segment_findings(
    window: Any, thresholds: Mapping[str, float], **options: Any
) -> list[dict[str, Any]]:
    """The weak segments of ``window`` as findings (check ``"weak_segment"``), ready for
    :meth:`~watchkeeper.store.Store.add_findings`: subject the slice, statistic its effect,
    p-value the adjusted one, ``details.query`` the explorer's filter of its samples.

    Examples
    --------
    >>> import numpy as np
    >>> from watchkeeper.window import Window
    >>> rng = np.random.default_rng(1)
    >>> src = rng.choice(["a", "b"], 1000)
    >>> w = Window.from_columns(ts=np.arange(1000.0), tags={"src": src},
    ...                         scores=np.where(src == "b", 0.9, rng.random(1000) * 0.6))
    >>> [(f["check"], f["subject"]) for f in weak_segment_findings(w, {"": 0.5})]
    [('weak_segment', 'src = b')]
    """
    alpha = float(options.get("alpha", 0.05))
    found = weak_segments(window, thresholds, **options)
    start = (
        window.start if window.start is not None else (float(window.ts[0]) if len(window) else None)
    )
    end = window.end if window.end is not None else (float(window.ts[-1]) if len(window) else None)
    return [
        {
            "check": "weak_segment",
            "subject": s["label"][:256],
            "method": f"sliceline_{found['outcome']}_rate",
            "statistic": s["effect"],
            "p_value": s["p_adjusted"],
            "alpha": alpha,
            "drift": True,
            "severity": "warning",
            "window_start": start,
            "window_end": end,
            "details": {
                "support": s["support"],
                "rate": s["rate"],
                "rest": s["rest"],
                "p_value_raw": s["p_value"],
                "correction": "benjamini-hochberg",
                "tested": found["tested"],
                "query": s["query"],
            },
        }
        for s in found["segments"]
    ]
