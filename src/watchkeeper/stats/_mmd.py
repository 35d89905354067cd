"""Maximum mean discrepancy with a Gaussian kernel: quadratic, linear-time, random features.

* :class:`MMDDrift` — the unbiased quadratic-time estimate and a permutation p-value. The kernel
  matrix of the pooled sample is built once, in row blocks so memory stays bounded, and every
  permutation is a column of one indicator matrix: all permutations cost one matrix product
  with each block, never a second kernel evaluation.
* :class:`LinearMMDDrift` — Gretton's linear-time statistic with its normal approximation, for
  very large samples.
* :class:`RFFMMDDrift` — MMD on random Fourier features. A window is summarised by
  :class:`RFFSummary` (count, feature sum, feature outer-product sum): summaries of windows,
  shards or workers merge by addition, so drift of a day is the merge of its hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from watchkeeper.stats._clean import check_alpha
from watchkeeper.stats._result import DriftResult

_BLOCK_ELEMENTS = 1 << 24  # kernel entries per block (128 MB in float64)


def as_matrix(data: Any, name: str) -> tuple[np.ndarray, int]:
    """2-D float64 array of the finite rows of ``data`` and the number of rows dropped."""
    arr = np.asarray(data)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples × features), got shape {arr.shape}")
    if arr.dtype.kind not in "iufb":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    finite = np.isfinite(arr).all(axis=1)
    dropped = int(arr.shape[0] - finite.sum())
    return (arr[finite] if dropped else arr), dropped


def _sq_norms(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.einsum("ij,ij->i", z, z)
    return out


def median_bandwidth(z: np.ndarray, max_samples: int = 600, seed: int | None = 0) -> float:
    """Median heuristic: the median Euclidean distance between rows of (a subsample of) ``z``.

    The median is taken over the pairs across two halves of the subsample: as good an
    estimate as all pairs, without building and indexing the triangle.
    """
    if z.shape[0] > max_samples:
        z = z[np.random.default_rng(seed).choice(z.shape[0], max_samples, replace=False)]
    half = max(1, z.shape[0] // 2)
    a, b = z[:half], z[half:]
    if b.shape[0] == 0:
        return 1.0
    d2 = _sq_norms(a)[:, None] + _sq_norms(b)[None, :] - 2.0 * (a @ b.T)
    med = float(np.median(np.sqrt(np.maximum(d2, 0.0))))
    return med if med > 1e-150 else 1.0


def _check_positive_int(value: Any, name: str) -> int:
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_samples(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"current has {y.shape[1]} features, the reference has {x.shape[1]}"
        )


class MMDDrift:
    """Quadratic-time MMD test with a Gaussian kernel and a permutation p-value.

    Null hypothesis: reference and current are drawn from the same distribution. The kernel
    is ``exp(-|x - y|² / (2 σ²))`` with ``σ`` the median pairwise distance of the pooled
    sample (a permutation-invariant choice, so the permutation p-value stays exact), and the
    statistic is the unbiased estimate of MMD². The p-value is
    ``(1 + #{permuted ≥ observed}) / (1 + n_permutations)``.

    Parameters
    ----------
    bandwidth
        Kernel width ``σ``; ``None`` for the median heuristic.
    n_permutations
        Random relabellings of the pooled sample.
    alpha
        Level the p-value is compared with.
    block_rows
        Rows of the kernel matrix held at once; ``None`` sizes blocks to about 16 million
        entries, so 100,000 + 100,000 points need about 130 MB for the kernel.
    seed
        Seed of the permutations and of the bandwidth subsample.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(size=(300, 5))
    >>> MMDDrift(seed=0).fit(ref).test(rng.normal(size=(300, 5))).drift
    False
    >>> r = MMDDrift(seed=0).fit(ref).test(rng.normal(0.5, size=(300, 5)))
    >>> r.drift, r.p_value
    (True, 0.0099...)
    """

    def __init__(self, bandwidth: float | None = None, n_permutations: int = 100,
                 alpha: float = 0.05, block_rows: int | None = None,
                 seed: int | None = 0) -> None:
        self.bandwidth = bandwidth
        self.n_permutations = n_permutations
        self.alpha = alpha
        self.block_rows = block_rows
        self.seed = seed

    def fit(self, reference: Any) -> MMDDrift:
        """Store the reference sample (rows with NaN or inf are dropped)."""
        self.reference_, self.dropped_reference_ = as_matrix(reference, "reference")
        if self.reference_.shape[0] < 2:
            raise ValueError("reference needs at least 2 finite rows")
        return self

    def test(self, current: Any) -> DriftResult:
        """Test ``current`` against the fitted reference."""
        alpha = check_alpha(self.alpha)
        n_perm = _check_positive_int(self.n_permutations, "n_permutations")
        x = self.reference_
        y, dropped = as_matrix(current, "current")
        _check_samples(x, y)
        details: dict[str, Any] = {"n_reference": x.shape[0], "n_current": y.shape[0],
                                   "dropped_reference": self.dropped_reference_,
                                   "dropped_current": dropped, "n_permutations": n_perm}
        if y.shape[0] < 2:
            from watchkeeper.stats._clean import skipped

            return skipped("mmd", "current needs at least 2 finite rows", alpha, None, details)
        z = np.vstack([x, y])
        sigma = (float(self.bandwidth) if self.bandwidth is not None
                 else median_bandwidth(z, seed=self.seed))
        if not sigma > 0:
            raise ValueError(f"bandwidth must be > 0, got {self.bandwidth!r}")
        stats = mmd_permutation_stats(z, x.shape[0], sigma, n_perm, self.seed, self.block_rows)
        observed, permuted = float(stats[0]), stats[1:]
        p = float((1 + np.count_nonzero(permuted >= observed)) / (1 + n_perm))
        details["bandwidth"] = sigma
        return DriftResult("mmd", statistic=observed, p_value=p, drift=p < alpha, alpha=alpha,
                           details=details)


# How many bandwidths the centred data may reach for each arithmetic. The kernel needs the
# squared distance to about 1e-3 (in bandwidths²) where it is not ~0; the expansion
# |a|² + |b|² - 2ab errs by about eps·2·reach², so float32 (eps 6e-8) is good to a reach of
# ~100 and float64 (eps 2e-16) to ~1e6. Beyond that (a bandwidth tiny against the spread, as
# the median heuristic gives when most rows repeat) only exact differences keep equal rows at
# kernel 1 and the rest at their true, vanishing, values.
_FLOAT32_REACH = 100.0
_FLOAT64_REACH = 1e6


class _GaussianKernelRows:
    """Rows ``start:stop`` of the Gaussian kernel matrix of ``z`` with width ``sigma``, as
    float32, computed with the cheapest arithmetic that is accurate for the data's reach.

    >>> z = np.array([[0.0, 1e-150], [1.0, 1.0], [1e-150, 0.0]])
    >>> rows = _GaussianKernelRows(z, sigma=1e-150)
    >>> bool(rows.exact), np.round(rows(0, 3), 3).tolist()
    (True, [[1.0, 0.0, 0.368], [0.0, 1.0, 0.0], [0.368, 0.0, 1.0]])
    """

    def __init__(self, z: np.ndarray, sigma: float) -> None:
        centred = z - z.mean(axis=0)  # distances are unchanged; the expansion is more exact
        spread = float(np.abs(centred).max())
        with np.errstate(over="ignore"):
            reach = spread / sigma
        self.exact = not reach <= _FLOAT64_REACH
        if self.exact:
            # Not centred (centring would round away differences far below the mean's size),
            # scaled to |z| <= 1 so that squared differences cannot overflow; the width is
            # applied after, dividing twice (its square may be below the smallest float).
            size = float(np.abs(z).max())
            self._z = z / size if size > 0 else z
            self._width = sigma / size if size > 0 else sigma
        else:
            dtype = np.float32 if reach <= _FLOAT32_REACH else np.float64
            self._z = (centred / sigma).astype(dtype)
            self._sq = _sq_norms(self._z)

    def __call__(self, start: int, stop: int) -> np.ndarray:
        z = self._z
        if self.exact:
            diff = z[start:stop, None, :] - z[None, :, :]
            d2 = np.einsum("ijk,ijk->ij", diff, diff)
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                kernel = np.exp(-0.5 * ((d2 / self._width) / self._width))
            kernel[d2 == 0.0] = 1.0  # equal rows, whatever the width (0/0 above)
            out: np.ndarray = kernel.astype(np.float32)
            return out
        block = z[start:stop] @ z.T
        block *= -2.0
        block += self._sq[start:stop, None]
        block += self._sq[None, :]
        np.maximum(block, 0.0, out=block)
        block *= -0.5
        np.exp(block, out=block)
        out32: np.ndarray = block.astype(np.float32, copy=False)
        return out32


def mmd_permutation_stats(z: np.ndarray, n: int, sigma: float, n_permutations: int,
                          seed: int | None, block_rows: int | None = None) -> np.ndarray:
    """Unbiased MMD² for the observed split (first ``n`` rows) and for random relabellings.

    ``A[:, p]`` marks the rows of the first sample under labelling ``p`` (column 0 is the
    observed one). With ``K0`` the kernel matrix with a zero diagonal and ``r = K0 1``,
    ``a' K0 a``, ``a' r`` and ``1' r`` give the within- and between-sample sums of every
    labelling; ``K0 A`` is accumulated one block of rows at a time.
    """
    big_n = z.shape[0]
    m = big_n - n
    rng = np.random.default_rng(seed)
    # float32 for the kernel blocks and their products: twice the BLAS speed, and the sums
    # that form the statistic are taken in float64 from entries exact to ~1e-7.
    labels = np.zeros((big_n, n_permutations + 1), dtype=np.float32)
    labels[:n, 0] = 1.0
    perms = rng.permuted(np.tile(np.arange(big_n), (n_permutations, 1)), axis=1)[:, :n]
    labels[perms, np.arange(1, n_permutations + 1)[:, None]] = 1.0
    kernel_rows = _GaussianKernelRows(z, sigma)
    rows = block_rows or max(1, min(big_n, _BLOCK_ELEMENTS // big_n))
    if kernel_rows.exact:  # differences per pair: bound their (rows, N, d) array too
        rows = max(1, min(rows, _BLOCK_ELEMENTS // (big_n * z.shape[1])))
    ka = np.empty(labels.shape, dtype=np.float32)
    r = np.empty(big_n)
    for start in range(0, big_n, rows):
        stop = min(start + rows, big_n)
        block = kernel_rows(start, stop)
        idx = np.arange(start, stop)
        block[idx - start, idx] = 0.0  # the unbiased estimate leaves out k(x_i, x_i)
        ka[start:stop] = block @ labels
        r[start:stop] = block.sum(axis=1, dtype=np.float64)
    total = float(r.sum())
    s_xx = np.einsum("ip,ip->p", labels, ka, dtype=np.float64)
    s_xy = labels.T.astype(np.float64) @ r - s_xx
    s_yy = total - 2.0 * s_xy - s_xx
    out: np.ndarray = s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2.0 * s_xy / (n * m)
    return out


class LinearMMDDrift:
    """Linear-time MMD test (Gretton et al. 2012, §6) for very large samples.

    The samples are shuffled and cut into ``⌊min(n, m) / 2⌋`` disjoint quadruples
    ``(x, x', y, y')``; ``h = k(x, x') + k(y, y') - k(x, y') - k(x', y)`` has mean MMD² and the
    test is one-sided on its normal approximation. Cost and memory are linear in n; power is
    lower than :class:`MMDDrift` at equal n, so use it where n is too large for that.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = LinearMMDDrift(seed=0).fit(rng.normal(size=(20_000, 4)))
    >>> det.test(rng.normal(size=(20_000, 4))).drift
    False
    >>> det.test(rng.normal(0.2, size=(20_000, 4))).drift
    True
    """

    def __init__(self, bandwidth: float | None = None, alpha: float = 0.05,
                 seed: int | None = 0) -> None:
        self.bandwidth = bandwidth
        self.alpha = alpha
        self.seed = seed

    def fit(self, reference: Any) -> LinearMMDDrift:
        """Store the reference sample."""
        self.reference_, self.dropped_reference_ = as_matrix(reference, "reference")
        return self

    def test(self, current: Any) -> DriftResult:
        """Test ``current`` against the fitted reference."""
        from scipy.special import ndtr

        alpha = check_alpha(self.alpha)
        x = self.reference_
        y, dropped = as_matrix(current, "current")
        _check_samples(x, y)
        rng = np.random.default_rng(self.seed)
        half = min(x.shape[0], y.shape[0]) // 2
        details: dict[str, Any] = {"n_reference": x.shape[0], "n_current": y.shape[0],
                                   "dropped_current": dropped, "n_quadruples": half}
        if half < 2:
            from watchkeeper.stats._clean import skipped

            return skipped("linear_mmd", "too few rows", alpha, None, details)
        xs = x[rng.permutation(x.shape[0])[: 2 * half]]
        ys = y[rng.permutation(y.shape[0])[: 2 * half]]
        sigma = (float(self.bandwidth) if self.bandwidth is not None
                 else median_bandwidth(np.vstack([xs[:500], ys[:500]]), seed=self.seed))
        gamma = 1.0 / (2.0 * sigma * sigma)

        def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            d = a - b
            out: np.ndarray = np.exp(-gamma * np.einsum("ij,ij->i", d, d))
            return out

        x1, x2, y1, y2 = xs[0::2], xs[1::2], ys[0::2], ys[1::2]
        h = k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1)
        stat = float(h.mean())
        se = float(h.std(ddof=1)) / math.sqrt(half)
        p = 1.0 if se == 0 else float(1.0 - ndtr(stat / se))
        details["bandwidth"] = sigma
        return DriftResult("linear_mmd", statistic=stat, p_value=p, drift=p < alpha,
                           alpha=alpha, details=details)


@dataclass(frozen=True)
class RFFSummary:
    """Mergeable summary of a window in random-Fourier-feature space.

    ``count`` rows, ``total`` the sum of their feature vectors, ``outer`` the sum of their
    outer products. ``zero(d)`` is the identity of :meth:`merge`, and merge is addition, so it
    is associative and commutative: hours merge into a day, workers into a fleet.

    Examples
    --------
    >>> a = RFFSummary(1, np.array([1.0, 0.0]), np.eye(2))
    >>> b = RFFSummary.zero(2).merge(a).merge(a)
    >>> b.count, b.total.tolist()
    (2, [2.0, 0.0])
    """

    count: int
    total: np.ndarray
    outer: np.ndarray

    @classmethod
    def zero(cls, n_features: int) -> RFFSummary:
        """The empty summary."""
        return cls(0, np.zeros(n_features), np.zeros((n_features, n_features)))

    def merge(self, other: RFFSummary) -> RFFSummary:
        """The summary of both windows together."""
        if self.total.shape != other.total.shape:
            raise ValueError(
                f"cannot merge summaries of {self.total.size} and {other.total.size} features"
            )
        return RFFSummary(self.count + other.count, self.total + other.total,
                          self.outer + other.outer)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (the upper triangle of ``outer`` is enough: it is symmetric)."""
        iu = np.triu_indices(self.total.size)
        return {"count": int(self.count), "total": self.total.tolist(),
                "outer_upper": self.outer[iu].tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RFFSummary:
        """Inverse of :meth:`to_dict`."""
        total = np.asarray(data["total"], dtype=np.float64)
        d = total.size
        outer = np.zeros((d, d))
        iu = np.triu_indices(d)
        outer[iu] = np.asarray(data["outer_upper"], dtype=np.float64)
        outer = outer + np.triu(outer, 1).T
        return cls(int(data["count"]), total, outer)


class RFFMMDDrift:
    """MMD on random Fourier features, with mergeable per-window summaries.

    ``φ(x) = sqrt(2 / D) cos(W x + b)`` with ``W ~ N(0, 1/σ²)`` approximates the Gaussian
    kernel of width ``σ`` (Rahimi & Recht 2007); MMD² is then the squared distance between
    the mean feature vectors. The feature map is fixed at ``fit`` (``σ`` from the reference
    alone, by the median heuristic), so summaries of any windows are comparable and
    mergeable. Under the null, the mean difference is approximately normal with covariance
    ``(1/n + 1/m) Σ`` (``Σ`` the pooled feature covariance, which the summaries carry), and
    the squared distance is matched to a scaled chi-squared (Welch–Satterthwaite) for the
    p-value. ``statistic`` is the bias-corrected MMD² estimate.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = RFFMMDDrift(seed=0).fit(rng.normal(size=(2000, 8)))
    >>> det.test(rng.normal(size=(1000, 8))).drift
    False
    >>> hours = [det.summarize(rng.normal(0.3, size=(250, 8))) for _ in range(4)]
    >>> day = RFFSummary.zero(det.n_features)
    >>> for h in hours:
    ...     day = day.merge(h)
    >>> det.test_summary(day).drift
    True
    """

    def __init__(self, n_features: int = 256, bandwidth: float | None = None,
                 alpha: float = 0.05, seed: int | None = 0) -> None:
        self.n_features = n_features
        self.bandwidth = bandwidth
        self.alpha = alpha
        self.seed = seed

    def fit(self, reference: Any) -> RFFMMDDrift:
        """Fix the feature map from the reference and summarise the reference."""
        d_out = _check_positive_int(self.n_features, "n_features")
        x, _ = as_matrix(reference, "reference")
        if x.shape[0] < 2:
            raise ValueError("reference needs at least 2 finite rows")
        sigma = (float(self.bandwidth) if self.bandwidth is not None
                 else median_bandwidth(x, seed=self.seed))
        rng = np.random.default_rng(self.seed)
        self.bandwidth_ = sigma
        self.weights_ = rng.normal(scale=1.0 / sigma, size=(x.shape[1], d_out))
        self.offsets_ = rng.uniform(0.0, 2.0 * math.pi, size=d_out)
        self.reference_summary_ = self.summarize(x)
        return self

    def features(self, data: Any) -> np.ndarray:
        """Random Fourier features of the finite rows of ``data``."""
        x, _ = as_matrix(data, "data")
        if x.shape[1] != self.weights_.shape[0]:
            raise ValueError(
                f"data has {x.shape[1]} features, the reference has {self.weights_.shape[0]}"
            )
        phi = x @ self.weights_
        phi += self.offsets_
        np.cos(phi, out=phi)
        phi *= math.sqrt(2.0 / self.weights_.shape[1])
        return phi

    def summarize(self, data: Any) -> RFFSummary:
        """The mergeable summary of one window (or shard) of data."""
        phi = self.features(data)
        # An explicit transposed copy: numpy would route ``phi.T @ phi`` to BLAS syrk, which
        # OpenBLAS runs several times slower than a plain product at these shapes.
        return RFFSummary(phi.shape[0], phi.sum(axis=0), np.ascontiguousarray(phi.T) @ phi)

    def test(self, current: Any) -> DriftResult:
        """Test a window of raw data against the reference."""
        return self.test_summary(self.summarize(current))

    def test_summary(self, current: RFFSummary,
                     reference: RFFSummary | None = None) -> DriftResult:
        """Test a (merged) summary against the reference summary (or another summary)."""
        from scipy.special import chdtrc

        alpha = check_alpha(self.alpha)
        ref = reference if reference is not None else self.reference_summary_
        n, m = ref.count, current.count
        details: dict[str, Any] = {"n_reference": n, "n_current": m,
                                   "n_features": int(ref.total.size)}
        if n < 2 or m < 2:
            from watchkeeper.stats._clean import skipped

            return skipped("rff_mmd", "fewer than 2 rows on one side", alpha, None, details)
        diff = ref.total / n - current.total / m
        dist2 = float(diff @ diff)
        pooled = ref.merge(current)
        mean = pooled.total / pooled.count
        cov = (pooled.outer - pooled.count * np.outer(mean, mean)) / (pooled.count - 1)
        c = 1.0 / n + 1.0 / m
        tr1 = float(np.trace(cov))
        tr2 = float(np.einsum("ij,ji->", cov, cov))
        if tr1 <= 0 or tr2 <= 0:
            p = 1.0 if dist2 == 0 else 0.0
        else:
            scale, dof = c * tr2 / tr1, tr1 * tr1 / tr2
            p = float(chdtrc(dof, dist2 / scale))
        details.update(bandwidth=getattr(self, "bandwidth_", None), distance_squared=dist2)
        stat = dist2 - c * tr1
        return DriftResult("rff_mmd", statistic=stat, p_value=p, drift=p < alpha, alpha=alpha,
                           details=details)
