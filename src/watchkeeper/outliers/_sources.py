"""Per-source tests for coordinated adversaries: clustering, PRADA, probing, floods, bursts.

A *source* is whatever the SDK tags a request with (client, API key, IP). Each test compares
every source of a window with what the rest of the traffic does, in one pass over all sources:
events are grouped by sorted source codes and sources of one size are stacked into one array.

* :func:`embedding_tests` — (a) *query clustering* (Chen, Carlini & Wagner, 2019): the mean log
  distance of a source's queries to their nearest other query of the same source; attack
  queries crowd together. (b) *PRADA* (Juuti et al., 2019): the Shapiro–Wilk statistic of the
  distances from each query to the nearest earlier query of the same source; extraction
  queries make that distribution far from normal.
  Both are calibrated against random subsets of the pooled traffic of the same size (the null:
  the source sends queries like everyone else's), through a normal approximation of the
  statistic (``log(1 - W)`` for PRADA) fitted on ``n_null`` draws per size.
* :func:`boundary_probing` — (c) the share of a source's scores within ``margin`` of the
  decision threshold against the other sources' share (exact binomial test).
* :func:`near_duplicates` — (d) repeats of a SimHash of the embeddings within a source, against
  the repeats of random same-size subsets of the pooled traffic (Monte-Carlo p-value).
* :func:`volume_bursts` — (e) a source's count in the window against ``ratio`` times its own
  past rate (an exponentially weighted mean kept in a state), or against the median source for
  a source never seen (one-sided Poisson test).

Every test returns a :class:`SourceResult`: raw p-values, p-values adjusted across the sources
of the window (Holm by default), and the flagged sources. A benign source is flagged in a
window with probability at most ``alpha``, which the tests verify by simulation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from watchkeeper.outliers._conformal import _readonly, check_alpha_level
from watchkeeper.stats._multiple import CORRECTIONS, adjust_p_values
from watchkeeper.stats._result import _plain

SIZE_GRID = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
"""Sizes a source's recent queries are cut to, so that sources share one null per size."""


@dataclass(frozen=True, slots=True)
class SourceResult:
    """One per-source test on one window.

    Parameters
    ----------
    test
        ``"clustering"``, ``"prada"``, ``"boundary"``, ``"duplicates"`` or ``"volume"``.
    sources
        The sources tested (``str``), in sorted order.
    n
        Events of each source the test used.
    statistic
        The test statistic of each source.
    p_values
        Raw p-values (the null: this source behaves like the rest of the traffic).
    adjusted
        P-values adjusted across the sources by ``correction``.
    flagged
        ``adjusted <= alpha``.
    alpha, correction
        The level and the multiple-testing correction.
    details
        Test-specific extras (null sizes, base rates).

    Examples
    --------
    >>> r = SourceResult("volume", np.array(["a", "b"], dtype=object), np.array([3, 90]),
    ...                  np.array([3.0, 90.0]), np.array([0.9, 1e-9]), np.array([0.9, 2e-9]),
    ...                  np.array([False, True]), 0.01, "holm")
    >>> r.flagged_sources
    ['b']
    """

    test: str
    sources: np.ndarray
    n: np.ndarray
    statistic: np.ndarray
    p_values: np.ndarray
    adjusted: np.ndarray
    flagged: np.ndarray
    alpha: float
    correction: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("sources", "n", "statistic", "p_values", "adjusted", "flagged"):
            object.__setattr__(self, name, _readonly(getattr(self, name)))
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    @property
    def flagged_sources(self) -> list[str]:
        """Names of the flagged sources."""
        return [str(s) for s in self.sources[self.flagged]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: one entry per source tested."""
        return {
            "test": self.test,
            "alpha": self.alpha,
            "correction": self.correction,
            "sources": [
                {
                    "source": str(s),
                    "n": int(n),
                    "statistic": _plain(float(t)),
                    "p_value": _plain(float(p)),
                    "adjusted_p_value": _plain(float(q)),
                    "flagged": bool(f),
                }
                for s, n, t, p, q, f in zip(
                    self.sources,
                    self.n,
                    self.statistic,
                    self.p_values,
                    self.adjusted,
                    self.flagged,
                    strict=True,
                )
            ],
            "details": _plain(dict(self.details)),
        }


def _result(
    test: str,
    names: np.ndarray,
    n: np.ndarray,
    stat: np.ndarray,
    p: np.ndarray,
    alpha: float,
    correction: str,
    details: Mapping[str, Any] | None = None,
) -> SourceResult:
    p = np.clip(np.nan_to_num(np.asarray(p, dtype=np.float64), nan=1.0), 0.0, 1.0)
    adj = adjust_p_values(p, correction)
    return SourceResult(
        test,
        np.asarray(names, dtype=object),
        np.asarray(n, dtype=np.int64),
        np.asarray(stat, dtype=np.float64),
        p,
        adj,
        adj <= alpha,
        alpha,
        correction,
        details or {},
    )


def _check_common(alpha: float, correction: str) -> float:
    a = check_alpha_level(alpha)
    if correction not in CORRECTIONS:
        raise ValueError(f"correction: must be one of {CORRECTIONS}, got {correction!r}")
    return a


def _sources_array(sources: Any, n: int) -> np.ndarray:
    s = np.asarray(sources, dtype=object)
    if s.ndim != 1 or s.shape[0] != n:
        raise ValueError(f"sources: expected {n} values (one per event), got shape {s.shape}")
    missing = np.array([v is None for v in s], dtype=bool) if s.size else np.zeros(0, bool)
    return np.where(missing, "", s).astype(str)


def _group(sources: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct names and each event's code; the empty name (no tag) is code -1."""
    names, codes = np.unique(sources, return_inverse=True)
    codes = codes.astype(np.int64)
    if names.size and names[0] == "":
        codes -= 1
        names = names[1:]
    return names, codes


def _recent(codes: np.ndarray, ts: np.ndarray, n_names: int, cap: int) -> list[np.ndarray]:
    """Per source, the indices of its newest ``cap`` events, in time order."""
    order = np.lexsort((-ts, codes))
    sorted_codes = codes[order]
    starts = np.searchsorted(sorted_codes, np.arange(n_names))
    ends = np.searchsorted(sorted_codes, np.arange(n_names), side="right")
    out = []
    for c in range(n_names):  # one slice per source (not per event)
        idx = order[starts[c] : min(ends[c], starts[c] + cap)]
        out.append(idx[np.argsort(ts[idx], kind="stable")])
    return out


def _grid_size(n: int, max_events: int) -> int:
    fits = [g for g in SIZE_GRID if g <= min(n, max_events)]
    return fits[-1] if fits else 0


def _project(x: np.ndarray, dim: int, seed: int | None) -> np.ndarray:
    """Centred rows in at most ``dim`` random directions (distances kept, Johnson–Lindenstrauss)."""
    x = np.asarray(x, dtype=np.float32)
    x = x - np.nanmean(x, axis=0)
    if x.shape[1] <= dim:
        return np.ascontiguousarray(x)
    rng = np.random.default_rng(seed)
    planes = rng.standard_normal((x.shape[1], dim)).astype(np.float32) / np.float32(math.sqrt(dim))
    return np.ascontiguousarray(x @ planes)


def _pairwise(sets: np.ndarray) -> np.ndarray:
    """Squared distances within each set: ``(m, g, d) -> (m, g, g)``, diagonal = inf."""
    norms = np.einsum("mgd,mgd->mg", sets, sets)
    d2: np.ndarray = norms[:, :, None] + norms[:, None, :] - 2.0 * (sets @ sets.transpose(0, 2, 1))
    np.maximum(d2, 0.0, out=d2)
    idx = np.arange(sets.shape[1])
    d2[:, idx, idx] = np.inf
    return d2


def _embedding_stats(sets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(clustering statistic, PRADA log(1 - W)) of each set of ``(m, g, d)`` time-ordered rows."""
    from scipy import stats

    d2 = _pairwise(sets)
    floor = np.float32(1e-12)
    nn = np.sqrt(np.maximum(d2.min(axis=2), floor))
    clustering = np.log(nn).mean(axis=1)
    g = sets.shape[1]
    earlier = np.tril(np.ones((g, g), dtype=bool), k=-1)  # j < i
    dmin = np.sqrt(np.where(earlier[None], d2, np.inf).min(axis=2)[:, 1:])
    spread = dmin.std(axis=1)
    w = np.ones(dmin.shape[0])
    ok = spread > 0
    if ok.any():
        w[ok] = stats.shapiro(dmin[ok].astype(np.float64), axis=1).statistic
    prada = np.log(np.maximum(1.0 - w, 1e-12))
    return clustering.astype(np.float64), prada


def embedding_tests(
    embeddings: Any,
    sources: Any,
    ts: Any = None,
    *,
    pool: Any = None,
    alpha: float = 0.01,
    correction: str = "holm",
    min_events: int = 32,
    max_events: int = 256,
    n_null: int = 200,
    dim: int = 32,
    seed: int | None = 0,
) -> tuple[SourceResult, SourceResult]:
    """Query clustering (a) and PRADA (b) for every source with at least ``min_events`` events.

    Parameters
    ----------
    embeddings
        ``(n, d)`` embeddings of the window's events (rows with a NaN are ignored).
    sources
        Source of each event (``None`` or ``""``: untagged, not tested).
    ts
        Event times: a source's newest ``max_events`` queries are tested, in time order.
    pool
        Rows the null subsets are drawn from (default: every embedded event of the window).
    alpha, correction
        Level and multiple-testing correction across sources.
    min_events, max_events
        A source is tested on its newest ``g`` events, ``g`` the largest of :data:`SIZE_GRID`
        between the two.
    n_null
        Random subsets per size for the null distribution.
    dim
        Embeddings are projected on at most ``dim`` random directions first.
    seed
        Seed of the projection and the null draws.

    Returns
    -------
    (SourceResult, SourceResult)
        The clustering test (small statistic = tight) and the PRADA test (large = non-normal).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> emb = rng.normal(size=(3000, 16))
    >>> src = rng.choice([f"client{i}" for i in range(20)], 3000).astype(object)
    >>> emb[:64] = rng.normal(size=16) + 0.01 * rng.normal(size=(64, 16))  # one tight client
    >>> src[:64] = "probe"
    >>> clustering, prada = embedding_tests(emb, src, np.arange(3000.0))
    >>> clustering.flagged_sources
    ['probe']
    """
    a = _check_common(alpha, correction)
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings: expected a 2-D array, got shape {x.shape}")
    n = x.shape[0]
    t = np.arange(n, dtype=np.float64) if ts is None else np.asarray(ts, dtype=np.float64)
    if t.shape != (n,):
        raise ValueError(f"ts: expected {n} values, got shape {t.shape}")
    if not isinstance(min_events, int) or min_events < SIZE_GRID[0]:
        raise ValueError(f"min_events: an integer >= {SIZE_GRID[0]}, got {min_events!r}")
    if not isinstance(n_null, int) or not 20 <= n_null <= 10_000:
        raise ValueError(f"n_null: an integer in [20, 10000], got {n_null!r}")
    src = _sources_array(sources, n)
    ok: np.ndarray = np.asarray(np.isfinite(x).all(axis=1))
    src = np.where(ok, src, "")
    names, codes = _group(src)
    rng = np.random.default_rng(seed)
    z = _project(np.where(ok[:, None], x, 0.0), dim, seed)
    pool_z = z[ok] if pool is None else _project(np.asarray(pool, dtype=np.float64), dim, seed)
    groups = _recent(codes, t, names.size, max_events)
    sizes = np.array([_grid_size(len(idx), max_events) for idx in groups], dtype=np.int64)
    tested = np.flatnonzero(sizes >= min_events)
    stat_c = np.full(tested.size, np.nan)
    stat_p = np.full(tested.size, np.nan)
    p_c = np.ones(tested.size)
    p_p = np.ones(tested.size)
    nulls: dict[int, dict[str, float]] = {}
    for g in np.unique(sizes[tested]).tolist():
        members = np.flatnonzero(sizes[tested] == g)
        if pool_z.shape[0] < 2 * g:
            continue
        sets = np.stack([z[groups[tested[i]][-g:]] for i in members])
        c_obs, w_obs = _embedding_stats(sets)
        draws = np.stack(
            [pool_z[rng.choice(pool_z.shape[0], g, replace=False)] for _ in range(n_null)]
        )
        c_null, w_null = _embedding_stats(draws)
        mc, sc = float(c_null.mean()), float(c_null.std(ddof=1)) or 1e-12
        mw, sw = float(w_null.mean()), float(w_null.std(ddof=1)) or 1e-12
        nulls[g] = {"clustering_mean": mc, "clustering_sd": sc, "prada_mean": mw, "prada_sd": sw}
        from scipy import stats

        stat_c[members], stat_p[members] = c_obs, w_obs
        p_c[members] = stats.norm.cdf((c_obs - mc) / sc)  # tight: smaller than the null
        p_p[members] = stats.norm.sf((w_obs - mw) / sw)  # non-normal: larger log(1 - W)
    used = sizes[tested]
    details = {"n_null": n_null, "null": {str(k): v for k, v in nulls.items()}}
    return (
        _result("clustering", names[tested], used, stat_c, p_c, a, correction, details),
        _result("prada", names[tested], used, stat_p, p_p, a, correction, details),
    )


def boundary_probing(
    scores: Any,
    sources: Any,
    threshold: float,
    *,
    margin: float = 0.05,
    alpha: float = 0.01,
    correction: str = "holm",
    min_events: int = 20,
) -> SourceResult:
    """(c) Share of each source's scores within ``margin`` of ``threshold``, against the others'.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = rng.uniform(size=5000)
    >>> src = rng.choice(["a", "b", "c", "d"], 5000).astype(object)
    >>> s[:100], src[:100] = 0.5 + rng.uniform(-0.02, 0.02, 100), "prober"
    >>> boundary_probing(s, src, 0.5).flagged_sources
    ['prober']
    """
    from scipy import stats

    a = _check_common(alpha, correction)
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"scores: expected one score per event, got shape {s.shape}")
    if not math.isfinite(float(threshold)):
        raise ValueError(f"threshold: must be a finite number, got {threshold!r}")
    if not (float(margin) > 0 and math.isfinite(float(margin))):
        raise ValueError(f"margin: must be a positive number, got {margin!r}")
    src = _sources_array(sources, s.size)
    ok = np.isfinite(s)
    src = np.where(ok, src, "")
    names, codes = _group(src)
    near = ok & (np.abs(s - float(threshold)) <= float(margin))
    tagged = codes >= 0
    n = np.bincount(codes[tagged], minlength=names.size)
    k = np.bincount(codes[tagged], weights=near[tagged], minlength=names.size)
    total_n, total_k = int(ok.sum()), float(near.sum())
    rest_n = total_n - n
    rest_rate = np.where(rest_n > 0, (total_k - k) / np.maximum(rest_n, 1), 0.0)
    # A base rate of zero would make any one near score infinitely unlikely: add one pseudo-event.
    base = np.maximum(rest_rate, 1.0 / np.maximum(rest_n + 1, 2))
    tested = n >= min_events
    p = stats.binom.sf(k[tested] - 1, n[tested], base[tested])
    share = k[tested] / np.maximum(n[tested], 1)
    return _result(
        "boundary",
        names[tested],
        n[tested],
        share,
        p,
        a,
        correction,
        {"threshold": float(threshold), "margin": float(margin), "base_rates": base[tested]},
    )


def simhash(x: Any, bits: int = 24, seed: int | None = 0) -> np.ndarray:
    """``bits``-bit SimHash codes (signs of random projections of the centred rows).

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(3, 8))
    >>> codes = simhash(np.r_[x, x[:1] + 1e-6])
    >>> bool(codes[0] == codes[3]), bool(codes[0] == codes[1])
    (True, False)
    """
    if not 1 <= bits <= 62:
        raise ValueError(f"bits: an integer in [1, 62], got {bits!r}")
    z = np.asarray(x, dtype=np.float64)
    planes = np.random.default_rng(seed).standard_normal((z.shape[1], bits))
    signs = (z - np.nanmean(z, axis=0)) @ planes > 0
    out: np.ndarray = (signs.astype(np.int64) << np.arange(bits, dtype=np.int64)).sum(axis=1)
    return out


def _repeats(codes: np.ndarray) -> np.ndarray:
    """Rows of ``(m, g)`` codes: ``g`` minus the number of distinct codes of each row."""
    s = np.sort(codes, axis=1)
    out: np.ndarray = (s[:, 1:] == s[:, :-1]).sum(axis=1)
    return out


def near_duplicates(
    embeddings: Any,
    sources: Any,
    ts: Any = None,
    *,
    bits: int = 24,
    alpha: float = 0.01,
    correction: str = "holm",
    min_events: int = 16,
    max_events: int = 512,
    n_null: int | None = None,
    seed: int | None = 0,
) -> SourceResult:
    """(d) SimHash repeats within each source against random same-size subsets of all traffic.

    The p-value is Monte-Carlo: ``(1 + #{null repeats >= observed}) / (n_null + 1)``, with
    ``n_null`` large enough (by default) that the smallest p-value survives the correction.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> emb = rng.normal(size=(2000, 16))
    >>> src = rng.choice([f"c{i}" for i in range(10)], 2000).astype(object)
    >>> emb[:80] = emb[0] + 1e-4 * rng.normal(size=(80, 16))
    >>> src[:80] = "flood"
    >>> near_duplicates(emb, src).flagged_sources
    ['flood']
    """
    a = _check_common(alpha, correction)
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings: expected a 2-D array, got shape {x.shape}")
    n = x.shape[0]
    t = np.arange(n, dtype=np.float64) if ts is None else np.asarray(ts, dtype=np.float64)
    src = _sources_array(sources, n)
    ok = np.isfinite(x).all(axis=1)
    src = np.where(ok, src, "")
    names, codes = _group(src)
    hashes = np.zeros(n, dtype=np.int64)
    if ok.any():
        hashes[ok] = simhash(x[ok], bits, seed)
    pool = hashes[ok]
    groups = _recent(codes, t, names.size, max_events)
    size = np.array([_grid_size(len(g), max_events) for g in groups], dtype=np.int64)
    tested = np.flatnonzero(size >= min_events)
    m = max(1, tested.size)
    draws = int(n_null) if n_null else int(min(50_000, max(2_000, math.ceil(4 * m / a))))
    rng = np.random.default_rng(seed)
    obs = np.array(
        [_repeats(hashes[groups[i][-size[i] :]][None, :])[0] for i in tested], dtype=np.int64
    )
    p = np.ones(tested.size)
    for g in np.unique(size[tested]).tolist():
        members = np.flatnonzero(size[tested] == g)
        per = pool.size // g
        if per < 2:
            continue
        # One permutation of the pool cut into pool // g disjoint subsets: each is a uniform
        # draw without replacement, at a cost of pool.size per pool // g draws.
        perms = math.ceil(draws / per)
        keys = rng.random((perms, pool.size)).argsort(axis=1)[:, : per * g]
        null = _repeats(pool[keys].reshape(perms * per, g))[:draws]
        null.sort()
        at_least = null.size - np.searchsorted(null, obs[members], side="left")
        p[members] = (1.0 + at_least) / (null.size + 1.0)
    return _result(
        "duplicates",
        names[tested],
        size[tested],
        obs.astype(np.float64),
        p,
        a,
        correction,
        {"bits": bits, "n_null": draws},
    )


def volume_bursts(
    sources: Any,
    state: Mapping[str, Any] | None = None,
    *,
    ratio: float = 3.0,
    alpha: float = 0.01,
    correction: str = "holm",
    decay: float = 0.3,
    max_sources: int = 100_000,
) -> tuple[SourceResult, dict[str, Any]]:
    """(e) Each source's event count against ``ratio`` times its usual count per window.

    The usual count is an exponentially weighted mean over past windows (weight ``decay`` on the
    newest), kept in ``state``; a source without history is compared with the median source
    of the window. One-sided Poisson test of ``H0: rate <= ratio * usual``.

    Returns
    -------
    (SourceResult, dict)
        The test and the new state (JSON-ready; pass it to the next window).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> src = np.repeat([f"c{i}" for i in range(10)], rng.poisson(50, 10)).astype(object)
    >>> first, state = volume_bursts(src)
    >>> burst = np.r_[src, np.repeat("c3", 400)].astype(object)
    >>> second, state = volume_bursts(burst, state)
    >>> first.flagged_sources, second.flagged_sources
    ([], ['c3'])
    """
    from scipy import stats

    a = _check_common(alpha, correction)
    if not float(ratio) >= 1.0:
        raise ValueError(f"ratio: must be >= 1, got {ratio!r}")
    if not 0.0 < float(decay) <= 1.0:
        raise ValueError(f"decay: must be in (0, 1], got {decay!r}")
    src = np.asarray(sources, dtype=object)
    names, codes = _group(_sources_array(src, src.shape[0]))
    counts = np.bincount(codes[codes >= 0], minlength=names.size).astype(np.float64)
    prev_names = np.asarray((state or {}).get("sources", []), dtype=str)
    prev_rate = np.asarray((state or {}).get("rate", []), dtype=np.float64)
    if prev_names.shape != prev_rate.shape:
        raise ValueError("state: 'sources' and 'rate' must have the same length")
    pos = np.searchsorted(prev_names, names) if prev_names.size else np.zeros(names.size, int)
    pos = np.minimum(pos, max(prev_names.size - 1, 0))
    known = prev_names.size > 0
    seen = (prev_names[pos] == names) if known else np.zeros(names.size, dtype=bool)
    typical = float(np.median(counts)) if counts.size else 0.0
    usual = np.where(seen, prev_rate[pos] if known else 0.0, typical)
    mu = np.maximum(float(ratio) * usual, 1.0)
    p = stats.poisson.sf(counts - 1, mu)
    result = _result(
        "volume",
        names,
        counts.astype(np.int64),
        counts,
        p,
        a,
        correction,
        {"ratio": float(ratio), "usual": usual, "median_source": typical},
    )
    # New state: decay every known source towards its count in this window (0 if silent).
    all_names = np.union1d(prev_names, names)
    rate = np.zeros(all_names.size)
    if prev_names.size:
        rate[np.searchsorted(all_names, prev_names)] = prev_rate
    now = np.zeros(all_names.size)
    if names.size:
        now[np.searchsorted(all_names, names)] = counts
    was_known = np.isin(all_names, prev_names)
    rate = np.where(was_known, (1 - decay) * rate + decay * now, now)
    keep = np.argsort(-rate, kind="stable")[:max_sources]
    keep = keep[rate[keep] > 0.01]
    keep.sort()
    return result, {"sources": all_names[keep].tolist(), "rate": rate[keep].tolist()}
