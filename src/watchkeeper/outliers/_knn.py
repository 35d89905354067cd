"""k-nearest-neighbour distance in embedding space, exact or through an inverted-file index.

*Exact*: squared distances ``|q|^2 - 2 q.r + |r|^2`` by blocked matrix products in
``float32`` (memory bounded by ``block_bytes``), the k smallest per row by ``np.partition``.
*Approximate* (``index="ivf"``): the reference is clustered by k-means (Lloyd's algorithm in
numpy, on its leading principal axes) into ``n_lists`` lists; a query is compared, at full
dimension, with the rows of the lists of its ``n_probe`` nearest centroids only. (Distances in
the principal subspace alone would miss exactly the outliers that leave it.) Queries are
grouped by list, so every list costs one matrix product for all the queries that probe it: the
loop runs over lists, never over rows. The approximate score is calibrated the same way as the
exact one (the held-out reference is scored through the same index), so its p-values stay
valid; what the index changes is only which neighbours count (measured in the benchmark).
"""

from __future__ import annotations

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
        counts = np.bincount(assign, minlength=n_clusters).astype(np.float32)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, x)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids


def _nearest(x: np.ndarray, centroids: np.ndarray, block: int = 8192) -> np.ndarray:
    cn = _sq_norms(centroids)
    out = np.empty(x.shape[0], dtype=np.int64)
    for i in range(0, x.shape[0], block):
        d2 = cn[None, :] - 2.0 * (x[i : i + block] @ centroids.T)
        out[i : i + block] = d2.argmin(axis=1)
    return out


class IVFIndex:
    """Inverted-file index for approximate k-th-neighbour distances (coarse lists chosen on
    principal axes, distances at full dimension).

    Parameters
    ----------
    n_lists
        Number of k-means lists (default: about ``sqrt(4 n)``).
    n_probe
        Lists searched per query.
    n_components
        Principal axes the lists are chosen on (``None``: all); distances use every axis.
    seed
        Seed of k-means.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(size=(5000, 16)).astype(np.float32)
    >>> index = IVFIndex(n_probe=4, seed=0).fit(ref)
    >>> q = rng.normal(size=(200, 16)).astype(np.float32)
    >>> approx, exact = index.kth_distance(q, 5), exact_kth_distance(q, ref, 5)
    >>> bool(np.all(approx >= exact - 1e-4))
    True
    """

    def __init__(
        self,
        n_lists: int | None = None,
        n_probe: int = 4,
        n_components: int | None = 32,
        seed: int | None = 0,
    ) -> None:
        self.n_lists = n_lists
        self.n_probe = n_probe
        self.n_components = n_components
        self.seed = seed

    def fit(self, reference: np.ndarray) -> IVFIndex:
        """Project, cluster and bucket the reference rows."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit(reference)

    def _fit(self, reference: np.ndarray) -> IVFIndex:
        x = np.ascontiguousarray(reference, dtype=np.float32)
        n, d = x.shape
        self.mean_ = x.mean(axis=0)
        xc = x - self.mean_
        r = d if self.n_components is None else min(d, int(self.n_components))
        if r < d:
            sample = xc[np.random.default_rng(self.seed).permutation(n)[: min(n, 20_000)]]
            _, _, vt = np.linalg.svd(sample.astype(np.float64), full_matrices=False)
            self.components_: np.ndarray | None = np.ascontiguousarray(vt[:r].T, dtype=np.float32)
            z = xc @ self.components_
        else:
            self.components_ = None
            z = xc
        lists = int(self.n_lists) if self.n_lists else max(1, round(float(np.sqrt(4 * n))))
        lists = min(lists, n)
        train = z[np.random.default_rng(self.seed).permutation(n)[: min(n, 64 * lists)]]
        self.centroids_ = kmeans(train, lists, seed=self.seed)
        assign = _nearest(z, self.centroids_)
        order = np.argsort(assign, kind="stable")
        self.rows_ = np.ascontiguousarray(x[order])
        self.norms_ = _sq_norms(self.rows_)
        self.offsets_ = np.searchsorted(assign[order], np.arange(lists + 1))
        return self

    def _project(self, q: np.ndarray) -> np.ndarray:
        z = np.ascontiguousarray(q, dtype=np.float32) - self.mean_
        out: np.ndarray = z if self.components_ is None else z @ self.components_
        return out

    def kth_distance(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Approximate distance from each query to its k-th nearest reference row."""
        from threadpoolctl import threadpool_limits

        # Hundreds of small products: BLAS threads cost more to wake than they save.
        with threadpool_limits(limits=1, user_api="blas"):
            return self._kth_distance(queries, k)

    def _kth_distance(self, queries: np.ndarray, k: int) -> np.ndarray:
        full = np.ascontiguousarray(queries, dtype=np.float32)
        z = self._project(full)
        n = z.shape[0]
        lists = self.centroids_.shape[0]
        probe = min(int(self.n_probe), lists)
        cn = _sq_norms(self.centroids_)
        probes = np.empty((n, probe), dtype=np.int64)
        for i in range(0, n, 16_384):
            d2 = cn[None, :] - 2.0 * (z[i : i + 16_384] @ self.centroids_.T)
            for j in range(probe):  # repeated argmin: cheaper than a partition for few probes
                best = d2.argmin(axis=1)
                probes[i : i + 16_384, j] = best
                d2[np.arange(best.size), best] = np.inf
        # Every (query, probe) pair becomes k candidate squared distances.
        flat_list = probes.ravel()
        by_list = np.argsort(flat_list, kind="stable")
        bounds = np.searchsorted(flat_list[by_list], np.arange(lists + 1))
        cand = np.full((n * probe, k), np.inf, dtype=np.float32)
        zn = _sq_norms(full)
        for lst in np.flatnonzero(np.diff(bounds)):
            pairs = by_list[bounds[lst] : bounds[lst + 1]]
            lo, hi = self.offsets_[lst], self.offsets_[lst + 1]
            if hi == lo:
                continue
            qi = pairs // probe
            block = full[qi]
            d2 = block @ self.rows_[lo:hi].T
            d2 *= -2.0
            d2 += self.norms_[None, lo:hi]
            d2 += zn[qi, None]
            m = min(k, hi - lo)
            if hi - lo > m:
                d2 = np.partition(d2, m - 1, axis=1)[:, :m]
            cand[pairs, :m] = d2
        kth = _kth_smallest(cand.reshape(n, probe * k), k)
        out: np.ndarray = np.sqrt(np.maximum(kth, 0.0)).astype(np.float64)
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
    n_probe, n_lists, n_components
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

    def __init__(
        self,
        k: int = 10,
        *,
        index: str = "auto",
        n_probe: int = 4,
        n_lists: int | None = None,
        n_components: int | None = 32,
        calibration_share: float = 0.25,
        seed: int | None = 0,
    ) -> None:
        super().__init__(calibration_share=calibration_share, seed=seed)
        self.k = k
        self.index = index
        self.n_probe = n_probe
        self.n_lists = n_lists
        self.n_components = n_components

    def _fit(self, x: np.ndarray) -> None:
        if self.index not in ("auto", "exact", "ivf"):
            raise ValueError(f"index: must be 'auto', 'exact' or 'ivf', got {self.index!r}")
        if not isinstance(self.k, int) or isinstance(self.k, bool) or self.k < 1:
            raise ValueError(f"k: must be a positive integer, got {self.k!r}")
        if self.k > x.shape[0]:
            raise ValueError(f"k: {self.k} neighbours, but only {x.shape[0]} rows to fit on")
        if not isinstance(self.n_probe, int) or self.n_probe < 1:
            raise ValueError(f"n_probe: must be a positive integer, got {self.n_probe!r}")
        approximate = self.index == "ivf" or (self.index == "auto" and x.shape[0] > EXACT_LIMIT)
        self.index_: IVFIndex | None = None
        if approximate:
            self.index_ = IVFIndex(self.n_lists, self.n_probe, self.n_components, self.seed)
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
