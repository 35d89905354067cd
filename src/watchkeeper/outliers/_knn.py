"""k-nearest-neighbour distance in embedding space, exact or through an inverted-file index.

Both searches are the same two steps: squared distances ``|q|^2 - 2 q.r + |r|^2`` by ``float32``
matrix products (queries augmented with a 1, rows stored as ``[-2 r, |r|^2]``, so one product
gives the distance up to the query's own norm), and a compiled kernel that merges each product
into the queries' running k smallest (one comparison with the current k-th value rejects almost
every candidate, far cheaper than a partition of each row). Products are cut into tiles of about
:data:`TILE_BYTES`, so a tile and the running k smallest of its queries stay in a core's cache.
Worker threads (one per core, single-threaded BLAS each) take shares of the queries.

*Exact*: every query against every reference row, tile by tile.
*Approximate* (``index="ivf"``): the reference is clustered by k-means (Lloyd's algorithm in
numpy, on its leading principal axes) into ``n_lists`` lists; a query is compared, at full
dimension, with the rows of the lists of its ``n_probe`` nearest centroids only. (Distances in
the principal subspace alone would miss exactly the outliers that leave it.) The (query,
probe) pairs are grouped by list, so every list costs one matrix product for all the queries
that probe it: the loop runs over lists, never over rows. The queries are first put in the
order of their nearest list, so the queries of one list lie close together in memory; within a
list the rows nearest its centroid come first, so the running k-th value falls early. The
distances to the rows that are searched are exact, so the approximate score is never below the
exact one. It is calibrated the same way as the exact one (the held-out reference is scored
through the same index), so its p-values stay valid; what the index changes is only which
neighbours count (recall measured in the benchmark).

Why no product quantisation: compressed distances pay a table look-up per code and subspace,
which in numpy or numba costs more per candidate than the float32 matrix product over the few
hundred rows of the probed lists, and they would lose the guarantee above.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from watchkeeper.outliers._conformal import ConformalScorer

EXACT_LIMIT = 100_000
"""Reference rows up to which ``index="auto"`` searches exactly."""

TILE_BYTES = 1 << 21
"""Size of one distance tile (queries x rows, float32): about a core's L2 cache."""

MAX_JOBS = 64
"""Most worker threads one search starts, whatever ``n_jobs`` asks."""


def _sq_norms(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.einsum("ij,ij->i", z, z)
    return out


def _with_ones(q: np.ndarray) -> np.ndarray:
    """``[q, 1]`` in float32: times ``[-2 r, |r|^2]`` it gives ``|q - r|^2 - |q|^2``."""
    out = np.empty((q.shape[0], q.shape[1] + 1), dtype=np.float32)
    out[:, :-1] = q
    out[:, -1] = 1.0
    return out


def _as_rows(r: np.ndarray, norms: np.ndarray | None = None) -> np.ndarray:
    """``[-2 r, |r|^2]`` in float32, the stored form of the rows searched."""
    out = np.empty((r.shape[0], r.shape[1] + 1), dtype=np.float32)
    np.multiply(r, -2.0, out=out[:, :-1])
    out[:, -1] = _sq_norms(r) if norms is None else norms
    return out


def _id_dtype(n: int) -> type[np.signedinteger[Any]]:
    """Row numbers in 32 bits when they fit: half the memory the merge kernel walks."""
    return np.int32 if n < 2**31 else np.int64


def _check_positive(name: str, value: Any) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: must be a positive integer, got {value!r}")
    return int(value)


def _n_jobs(n_jobs: int | None) -> int:
    if n_jobs is not None:
        return max(1, min(int(n_jobs), MAX_JOBS))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _merge_tiles(
    queries: np.ndarray,
    dest: np.ndarray,
    rows: np.ndarray,
    ids: np.ndarray,
    best_d: np.ndarray,
    best_i: np.ndarray,
    tile_bytes: int,
) -> None:
    """Merge the distances (up to ``|q|^2``) of ``queries`` (augmented, one per entry of
    ``dest``, their row in ``best_d``) to ``rows`` (stored form, named ``ids``) into the
    running k smallest, one tile of the product at a time."""
    from watchkeeper.outliers._knn_kernels import merge_smallest

    n, m = queries.shape[0], rows.shape[0]
    if n == 0 or m == 0:  # an empty list (k-means keeps the centroid of an emptied cluster)
        return
    cols = min(m, max(1, tile_bytes // (4 * 256)))
    step = max(1, tile_bytes // (4 * cols))
    # Queries outer: a block of queries and its running k smallest stay in cache while the
    # rows stream past.
    for i in range(0, n, step):
        block = queries[i : i + step]
        to = dest[i : i + step]
        for j in range(0, m, cols):
            merge_smallest(block @ rows[j : j + cols].T, ids[j : j + cols], to, best_d, best_i)


def _in_parallel(n: int, n_jobs: int | None, chunk: int, run: Callable[[slice], None]) -> None:
    """``run`` over slices of ``range(n)`` (at most ``chunk`` long), in worker threads.

    Each worker runs single-threaded BLAS: the products are many and small, and the workers
    already use the cores.
    """
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    jobs = _n_jobs(n_jobs)
    rounds = max(1, -(-n // (jobs * chunk)))
    size = max(1, -(-n // (jobs * rounds)))
    chunks = [slice(i, min(n, i + size)) for i in range(0, n, size)]
    with threadpool_limits(limits=1, user_api="blas"):
        if jobs == 1 or len(chunks) <= 1:
            for s in chunks:
                run(s)
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                list(pool.map(run, chunks))


def _check_k(k: Any) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k: must be a positive integer, got {k!r}")
    return k


def _exact_search(
    q: np.ndarray, rows: np.ndarray, k: int, n_jobs: int | None, tile_bytes: int, chunk: int
) -> np.ndarray:
    """Squared distance from each query (float32, ``(n, d)``) to its k-th nearest row."""
    n = q.shape[0]
    out = np.empty(n, dtype=np.float64)
    ids = np.arange(rows.shape[0], dtype=_id_dtype(rows.shape[0]))

    def run(s: slice) -> None:
        block = q[s]
        best_d = np.full((block.shape[0], k), np.inf, dtype=np.float32)
        best_i = np.full((block.shape[0], k), -1, dtype=ids.dtype)
        positions = np.arange(block.shape[0], dtype=np.int64)
        _merge_tiles(_with_ones(block), positions, rows, ids, best_d, best_i, tile_bytes)
        out[s] = best_d[:, k - 1] + _sq_norms(block)  # each worker writes only its own rows

    _in_parallel(n, n_jobs, chunk, run)
    return out


def exact_kth_distance(
    queries: np.ndarray,
    reference: np.ndarray,
    k: int,
    *,
    block_bytes: int = TILE_BYTES,
    ref_norms: np.ndarray | None = None,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Distance from each query to its k-th nearest reference row (``inf`` when the reference
    has fewer than ``k`` rows).

    Parameters
    ----------
    block_bytes
        Size of one tile of the distance product (queries x reference rows, float32): the
        product is computed and merged one tile at a time, so it is never held whole.
    ref_norms
        Squared norms of the reference rows, if already known.
    n_jobs
        Worker threads (default: the cores this process may run on).

    Examples
    --------
    >>> ref = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]], dtype=np.float32)
    >>> exact_kth_distance(np.array([[0.0, 0.0]], dtype=np.float32), ref, 2).round(3).tolist()
    [1.0]
    """
    _check_k(k)
    _check_positive("block_bytes", block_bytes)
    if n_jobs is not None:
        _check_positive("n_jobs", n_jobs)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    r = np.ascontiguousarray(reference, dtype=np.float32)
    if r.ndim != 2:
        raise ValueError(f"reference: expected a 2-D array, got shape {r.shape}")
    if q.ndim != 2 or q.shape[1] != r.shape[1]:
        raise ValueError(f"queries: expected shape (n, {r.shape[1]}), got {q.shape}")
    d2 = _exact_search(q, _as_rows(r, ref_norms), k, n_jobs, int(block_bytes), IVFIndex.CHUNK)
    out: np.ndarray = np.sqrt(np.maximum(d2, 0.0))
    return out


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
        Lists searched per query: the trade-off between recall and speed (6 keeps about half
        of the exact 10 nearest neighbours of 128-d sentence-like embeddings at over 100,000
        events per CPU-second).
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

    CHUNK = 32_768
    """Most queries one worker handles at a time: bounds the memory of a search, and gives the
    workers several shares each to balance (smaller shares cost more per query)."""

    def __init__(
        self,
        n_lists: int | None = None,
        n_probe: int = 6,
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
        # Within a list, the rows nearest its centroid first: they tend to be the nearest to a
        # query too, so the running k-th value falls early and later rows insert less.
        spread = _sq_norms(z - self.centroids_[assign])
        order = np.lexsort((spread, assign))
        self.ids_ = order.astype(_id_dtype(n))
        # The rows in list order, stored as [-2 r, |r|^2]: [q, 1] times them is the squared
        # distance up to |q|^2, which is added once at the end.
        self.rows_ = _as_rows(x[order])
        self.offsets_ = np.searchsorted(assign[order], np.arange(lists + 1))
        return self

    def _probes(self, q: np.ndarray, probe: int) -> np.ndarray:
        """The ``probe`` lists nearest each query (nearest first), on the principal axes."""
        from watchkeeper.outliers._knn_kernels import merge_smallest

        n = q.shape[0]
        lists = self.centroids_.shape[0]
        probe_d = np.full((n, probe), np.inf, dtype=np.float32)
        probes = np.full((n, probe), -1, dtype=np.int64)
        all_lists = np.arange(lists, dtype=np.int64)
        z = q - self.mean_
        if self.components_ is not None:
            z = z @ self.components_
        z = _with_ones(z)
        # The coarse product in blocks whose distances stay in cache for the merge.
        step = max(1, TILE_BYTES // (4 * lists))
        for i in range(0, n, step):
            rows = np.arange(i, min(n, i + step), dtype=np.int64)
            merge_smallest(z[i : i + step] @ self._coarse, all_lists, rows, probe_d, probes)
        return probes

    def _search_chunk(
        self, q: np.ndarray, k: int, best_d: np.ndarray, best_i: np.ndarray
    ) -> None:
        n = q.shape[0]
        lists = self.centroids_.shape[0]
        probe = min(int(self.n_probe), lists)
        probes = self._probes(q, probe)
        # Radix sort (numpy's stable sort of 16-bit keys) when the list numbers fit.
        key = np.uint16 if lists <= 1 << 16 else np.int64
        # Queries in the order of their nearest list: the queries that probe one list are then
        # close together in memory (their rows, their running k smallest).
        order = np.argsort(probes[:, 0].astype(key), kind="stable")
        full = _with_ones(q[order])
        # The running k smallest of the queries in that order: squared distances (up to |q|^2)
        # and the reference rows they are to.
        sq = np.full((n, k), np.inf, dtype=np.float32)
        nbr = np.full((n, k), -1, dtype=self.ids_.dtype)
        # Every (query, probe) pair grouped by list: one product per list for all its queries.
        flat = probes[order].ravel()
        by_list = np.argsort(flat.astype(key), kind="stable")
        bounds = np.searchsorted(flat[by_list], np.arange(lists + 1))
        for lst in np.flatnonzero(np.diff(bounds)):
            lo, hi = self.offsets_[lst], self.offsets_[lst + 1]
            qi = by_list[bounds[lst] : bounds[lst + 1]] // probe
            rows, ids = self.rows_[lo:hi], self.ids_[lo:hi]
            _merge_tiles(full[qi], qi, rows, ids, sq, nbr, TILE_BYTES)
        sq += _sq_norms(full[:, :-1])[:, None]
        best_d[order] = sq
        best_i[order] = nbr

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest reference rows found for each query: distances (ascending,
        ``inf`` when the probed lists hold fewer than ``k`` rows) and row numbers of the fitted
        reference (``-1`` there)."""
        _check_k(k)
        _check_positive("n_probe", self.n_probe)
        d = self.rows_.shape[1] - 1
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != d:
            raise ValueError(f"queries: expected shape (n, {d}), got {q.shape}")
        n = q.shape[0]
        best_d = np.full((n, k), np.inf, dtype=np.float32)
        best_i = np.full((n, k), -1, dtype=np.int64)

        def run(s: slice) -> None:
            # Each chunk writes only its own rows of best_d and best_i.
            self._search_chunk(q[s], k, best_d[s], best_i[s])

        _in_parallel(n, self.n_jobs, self.CHUNK, run)
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
    n_probe, n_lists, n_components
        Options of the :class:`IVFIndex`.
    n_jobs
        Worker threads of either search (default: the cores this process may run on).
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
        n_probe: int = 6,
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
        _check_k(self.k)
        if self.k > x.shape[0]:
            raise ValueError(f"k: {self.k} neighbours, but only {x.shape[0]} rows to fit on")
        _check_positive("n_probe", self.n_probe)
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
            self.rows_ = _as_rows(np.ascontiguousarray(x, dtype=np.float32))

    def _score(self, x: np.ndarray) -> np.ndarray:
        if self.index_ is not None:
            return self.index_.kth_distance(x, self.k)
        q = np.ascontiguousarray(x, dtype=np.float32)
        d2 = _exact_search(q, self.rows_, self.k, self.n_jobs, TILE_BYTES, IVFIndex.CHUNK)
        out: np.ndarray = np.sqrt(np.maximum(d2, 0.0))
        return out

    def _details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"k": self.k, "index": "exact" if self.index_ is None else "ivf"}
        if self.index_ is not None:
            out["n_lists"] = int(self.index_.centroids_.shape[0])
            out["n_probe"] = int(self.n_probe)
        return out
