"""k-nearest-neighbour distance in embedding space, exact or through an inverted-file index.

*Exact*: squared distances ``|q|^2 - 2 q.r + |r|^2`` by blocked matrix products in
``float32`` (memory bounded by ``block_bytes``), the k smallest per row by ``np.partition``.
*Approximate* (``index="ivf"``): the reference is clustered by k-means (Lloyd's algorithm in
numpy, on its leading principal axes) into ``n_lists`` lists; a query is compared, at full
dimension, with the rows of the lists of its ``n_probe`` nearest centroids only. (Distances in
the principal subspace alone would miss exactly the outliers that leave it.) Queries are
grouped by list, so every list costs one matrix product for all the queries that probe it, and
a compiled kernel merges each product into the queries' running k smallest: the loop runs over
lists, never over rows. Worker threads (one per core, single-threaded BLAS each) take shares of
the queries. The distances to the rows that are searched are exact, so the approximate score
is never below the exact one. It is calibrated the same way as the exact one (the held-out
reference is scored through the same index), so its p-values stay valid; what the index
changes is only which neighbours count (recall measured in the benchmark).

Why no product quantisation: compressed distances pay a table look-up per code and subspace,
which in numpy or numba costs more per candidate than the float32 matrix product over the few
hundred rows of the probed lists, and they would lose the guarantee above.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from watchkeeper.outliers._conformal import ConformalScorer

EXACT_LIMIT = 100_000
"""Reference rows up to which ``index="auto"`` searches exactly."""


def _sq_norms(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.einsum("ij,ij->i", z, z)
    return out


def _kth_smallest(d2: np.ndarray, k: int) -> np.ndarray:
    """The k-th smallest value of each row (inf when a row is shorter than k)."""
    if d2.shape[1] < k:
        return np.full(d2.shape[0], np.inf, dtype=d2.dtype)
    if k == 1:
        out: np.ndarray = d2.min(axis=1)
        return out
    return np.partition(d2, k - 1, axis=1)[:, k - 1]


def exact_kth_distance(
    queries: np.ndarray,
    reference: np.ndarray,
    k: int,
    *,
    block_bytes: int = 1 << 27,
    ref_norms: np.ndarray | None = None,
) -> np.ndarray:
    """Distance from each query to its k-th nearest reference row, in blocks of queries.

    Examples
    --------
    >>> ref = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]], dtype=np.float32)
    >>> exact_kth_distance(np.array([[0.0, 0.0]], dtype=np.float32), ref, 2).round(3).tolist()
    [1.0]
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    r = np.ascontiguousarray(reference, dtype=np.float32)
    rn = _sq_norms(r) if ref_norms is None else ref_norms
    rows = max(1, block_bytes // max(1, 4 * r.shape[0]))
    out = np.empty(q.shape[0], dtype=np.float64)
    for i in range(0, q.shape[0], rows):
        block = q[i : i + rows]
        d2 = block @ r.T
        d2 *= -2.0
        d2 += rn[None, :]
        d2 += _sq_norms(block)[:, None]
        out[i : i + rows] = _kth_smallest(d2, k)
    return np.sqrt(np.maximum(out, 0.0))


def kmeans(
    x: np.ndarray, n_clusters: int, *, iterations: int = 10, seed: int | None = 0
) -> np.ndarray:
    """Centroids of Lloyd's k-means started from random rows (empty clusters keep theirs).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.r_[rng.normal(0, 0.1, (50, 2)), rng.normal(5, 0.1, (50, 2))].astype(np.float32)
    >>> np.sort(kmeans(x, 2)[:, 0]).round(0).tolist()
    [0.0, 5.0]
    """
    rng = np.random.default_rng(seed)
    centroids = x[rng.choice(x.shape[0], n_clusters, replace=False)].copy()
    for _ in range(iterations):
        assign = _nearest(x, centroids)
        order = np.argsort(assign, kind="stable")
        counts = np.bincount(assign, minlength=n_clusters)
        filled = np.flatnonzero(counts)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[filled]
        # Sums per cluster by one reduceat over the rows sorted by cluster (np.add.at is slow).
        sums = np.add.reduceat(x[order], starts, axis=0)
        centroids[filled] = sums / counts[filled, None].astype(x.dtype)
    return centroids


def _nearest(x: np.ndarray, centroids: np.ndarray, block: int = 8192) -> np.ndarray:
    cn = _sq_norms(centroids)
    out = np.empty(x.shape[0], dtype=np.int64)
    for i in range(0, x.shape[0], block):
        d2 = cn[None, :] - 2.0 * (x[i : i + block] @ centroids.T)
        out[i : i + block] = d2.argmin(axis=1)
    return out


def _n_jobs(n_jobs: int | None) -> int:
    if n_jobs is not None:
        return max(1, int(n_jobs))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class IVFIndex:
    """Inverted-file index for approximate k-nearest-neighbour distances.

    Coarse lists are chosen on the leading principal axes (k-means), distances to the rows of
    the probed lists are exact at full dimension, so an approximate neighbour distance is never
    smaller than the exact one: the index only misses neighbours, it never invents closer ones.

    Parameters
    ----------
    n_lists
        Number of k-means lists (default: about ``sqrt(8 n)``).
    n_probe
        Lists searched per query.
    n_components
        Principal axes the lists are chosen on (``None``: all); distances use every axis.
    seed
        Seed of k-means.
    n_jobs
        Worker threads for a search (default: the cores this process may run on). Each runs
        single-threaded BLAS on its own share of the queries.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(size=(5000, 16)).astype(np.float32)
    >>> index = IVFIndex(n_probe=4, seed=0).fit(ref)
    >>> q = rng.normal(size=(200, 16)).astype(np.float32)
    >>> approx, exact = index.kth_distance(q, 5), exact_kth_distance(q, ref, 5)
    >>> bool(np.all(approx >= exact - 1e-4))
    True
    >>> dist, ids = index.search(q[:1], 3)
    >>> bool(np.allclose(dist[0], np.linalg.norm(ref[ids[0]] - q[0], axis=1), atol=1e-4))
    True
    """

    CHUNK = 65_536
    """Most queries one worker handles at a time (bounds the memory of a search)."""

    def __init__(
        self,
        n_lists: int | None = None,
        n_probe: int = 4,
        n_components: int | None = 32,
        seed: int | None = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.n_lists = n_lists
        self.n_probe = n_probe
        self.n_components = n_components
        self.seed = seed
        self.n_jobs = n_jobs

    def fit(self, reference: np.ndarray) -> IVFIndex:
        """Project, cluster and bucket the reference rows."""
        from threadpoolctl import threadpool_limits

        # Small products: on a busy machine, waking BLAS threads costs more than they save.
        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit(reference)

    def _fit(self, reference: np.ndarray) -> IVFIndex:
        x = np.ascontiguousarray(reference, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] < 1:
            raise ValueError(f"reference: expected a non-empty 2-D array, got shape {x.shape}")
        n, d = x.shape
        self.mean_ = x.mean(axis=0)
        xc = x - self.mean_
        r = d if self.n_components is None else min(d, int(self.n_components))
        if r < d:
            sample = xc[np.random.default_rng(self.seed).permutation(n)[: min(n, 20_000)]]
            sample = sample.astype(np.float64)
            # Principal axes from the d x d covariance: far cheaper than an SVD of the sample.
            _, vecs = np.linalg.eigh(sample.T @ sample)
            self.components_: np.ndarray | None = np.ascontiguousarray(
                vecs[:, ::-1][:, :r], dtype=np.float32
            )
            z = xc @ self.components_
        else:
            self.components_ = None
            z = xc
        lists = int(self.n_lists) if self.n_lists else max(1, round(float(np.sqrt(8 * n))))
        lists = min(lists, n)
        train = z[np.random.default_rng(self.seed).permutation(n)[: min(n, 64 * lists)]]
        self.centroids_ = np.ascontiguousarray(kmeans(train, lists, seed=self.seed))
        # Coarse distances up to a per-query constant: [z, 1] @ [-2 c, |c|^2]^T in one product.
        self._coarse = np.ascontiguousarray(
            np.c_[-2.0 * self.centroids_, _sq_norms(self.centroids_)].T, dtype=np.float32
        )
        assign = _nearest(z, self.centroids_)
        order = np.argsort(assign, kind="stable")
        self.ids_ = order.astype(np.int64)
        self.rows_ = np.ascontiguousarray(x[order])
        self.norms_ = _sq_norms(self.rows_)
        # Fine distances the same way: [q, 1] @ [-2 r, |r|^2]^T, |q|^2 added once at the end.
        self._fine = np.ascontiguousarray(np.c_[-2.0 * self.rows_, self.norms_], dtype=np.float32)
        self.offsets_ = np.searchsorted(assign[order], np.arange(lists + 1))
        return self

    def _augment(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``[q, 1]`` for the fine stage and ``[P(q - mean), 1]`` for the coarse one."""
        n, d = q.shape
        full = np.empty((n, d + 1), dtype=np.float32)
        full[:, :d] = q
        full[:, d] = 1.0
        z = q - self.mean_
        if self.components_ is not None:
            z = z @ self.components_
        coarse = np.empty((n, z.shape[1] + 1), dtype=np.float32)
        coarse[:, :-1] = z
        coarse[:, -1] = 1.0
        return full, coarse

    def _search_chunk(
        self, q: np.ndarray, k: int, best_d: np.ndarray, best_i: np.ndarray
    ) -> None:
        from watchkeeper.outliers._knn_kernels import merge_smallest

        n = q.shape[0]
        full, coarse = self._augment(q)
        lists = self.centroids_.shape[0]
        probe = min(int(self.n_probe), lists)
        probe_d = np.full((n, probe), np.inf, dtype=np.float32)
        probes = np.full((n, probe), -1, dtype=np.int64)
        all_lists = np.arange(lists, dtype=np.int64)
        for i in range(0, n, 4096):  # the coarse product in blocks: memory stays bounded
            rows = np.arange(i, min(n, i + 4096), dtype=np.int64)
            merge_smallest(coarse[i : i + 4096] @ self._coarse, all_lists, rows, probe_d, probes)
        # Every (query, probe) pair, grouped by list: one product per list for all its queries.
        flat = probes.ravel()
        by_list = np.argsort(flat, kind="stable")
        bounds = np.searchsorted(flat[by_list], np.arange(lists + 1))
        for lst in np.flatnonzero(np.diff(bounds)):
            lo, hi = self.offsets_[lst], self.offsets_[lst + 1]
            if hi == lo:
                continue
            qi = by_list[bounds[lst] : bounds[lst + 1]] // probe
            merge_smallest(full[qi] @ self._fine[lo:hi].T, self.ids_[lo:hi], qi, best_d, best_i)
        best_d += _sq_norms(q)[:, None]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest reference rows found for each query: distances (ascending,
        ``inf`` when the probed lists hold fewer than ``k`` rows) and row numbers of the fitted
        reference (``-1`` there)."""
        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import threadpool_limits

        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k: must be a positive integer, got {k!r}")
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.rows_.shape[1]:
            raise ValueError(
                f"queries: expected shape (n, {self.rows_.shape[1]}), got {q.shape}"
            )
        n = q.shape[0]
        best_d = np.full((n, k), np.inf, dtype=np.float32)
        best_i = np.full((n, k), -1, dtype=np.int64)
        jobs = _n_jobs(self.n_jobs)
        rounds = max(1, -(-n // (jobs * self.CHUNK)))
        size = max(1, -(-n // (jobs * rounds)))
        chunks = [slice(i, min(n, i + size)) for i in range(0, n, size)]

        def run(s: slice) -> None:
            # Each chunk writes only its own rows of best_d and best_i.
            self._search_chunk(q[s], k, best_d[s], best_i[s])

        # Many small products: one BLAS thread per worker, the workers use the cores.
        with threadpool_limits(limits=1, user_api="blas"):
            if jobs == 1 or len(chunks) == 1:
                for s in chunks:
                    run(s)
            else:
                with ThreadPoolExecutor(max_workers=jobs) as pool:
                    list(pool.map(run, chunks))
        dist: np.ndarray = np.sqrt(np.maximum(best_d, 0.0)).astype(np.float64)
        return dist, best_i

    def kth_distance(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Approximate distance from each query to its k-th nearest reference row."""
        out: np.ndarray = self.search(queries, k)[0][:, k - 1]
        return out


class KNNScorer(ConformalScorer):
    """Distance to the k-th nearest reference embedding, with conformal p-values.

    Parameters
    ----------
    k
        Which neighbour's distance is the score.
    index
        ``"exact"``, ``"ivf"`` (approximate) or ``"auto"`` (exact up to
        :data:`EXACT_LIMIT` fitted rows).
    n_probe, n_lists, n_components, n_jobs
        Options of the :class:`IVFIndex`.
    calibration_share, seed
        As in :class:`~watchkeeper.outliers.ConformalScorer`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> scorer = KNNScorer(k=5).fit(rng.normal(size=(2000, 8)))
    >>> x = np.r_[rng.normal(size=(3, 8)), np.full((1, 8), 6.0)]
    >>> result = scorer.score(x, alpha=0.01)
    >>> result.outlier.tolist()
    [False, False, False, True]
    """

    method = "knn"
    dtype = np.float32  # the searches run in float32: no float64 copy of a window

    def __init__(
        self,
        k: int = 10,
        *,
        index: str = "auto",
        n_probe: int = 4,
        n_lists: int | None = None,
        n_components: int | None = 32,
        n_jobs: int | None = None,
        calibration_share: float = 0.25,
        seed: int | None = 0,
    ) -> None:
        super().__init__(calibration_share=calibration_share, seed=seed)
        self.k = k
        self.index = index
        self.n_probe = n_probe
        self.n_lists = n_lists
        self.n_components = n_components
        self.n_jobs = n_jobs

    def _fit(self, x: np.ndarray) -> None:
        if self.index not in ("auto", "exact", "ivf"):
            raise ValueError(f"index: must be 'auto', 'exact' or 'ivf', got {self.index!r}")
        if not isinstance(self.k, int) or isinstance(self.k, bool) or self.k < 1:
            raise ValueError(f"k: must be a positive integer, got {self.k!r}")
        if self.k > x.shape[0]:
            raise ValueError(f"k: {self.k} neighbours, but only {x.shape[0]} rows to fit on")
        if not isinstance(self.n_probe, int) or self.n_probe < 1:
            raise ValueError(f"n_probe: must be a positive integer, got {self.n_probe!r}")
        for name in ("n_lists", "n_jobs"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}: must be a positive integer or None, got {value!r}")
        approximate = self.index == "ivf" or (self.index == "auto" and x.shape[0] > EXACT_LIMIT)
        self.index_: IVFIndex | None = None
        if approximate:
            self.index_ = IVFIndex(
                self.n_lists, self.n_probe, self.n_components, self.seed, self.n_jobs
            )
            self.index_.fit(x)
        else:
            self.reference_ = np.ascontiguousarray(x, dtype=np.float32)
            self.norms_ = _sq_norms(self.reference_)

    def _score(self, x: np.ndarray) -> np.ndarray:
        if self.index_ is not None:
            return self.index_.kth_distance(x, self.k)
        return exact_kth_distance(x, self.reference_, self.k, ref_norms=self.norms_)

    def _details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"k": self.k, "index": "exact" if self.index_ is None else "ivf"}
        if self.index_ is not None:
            out["n_lists"] = int(self.index_.centroids_.shape[0])
            out["n_probe"] = int(self.n_probe)
        return out
