"""Compiled kernel of the inverted-file index: merge distance rows into running k smallest.

Imported lazily (it imports numba) by :class:`watchkeeper.outliers.IVFIndex`. ``nogil=True``
lets the index's worker threads run it side by side; ``cache=True`` compiles it once per
machine.
"""

from __future__ import annotations

from numba import njit


@njit(nogil=True, cache=True)
def merge_smallest(d2, cols, dest, best_d, best_i):  # type: ignore[no-untyped-def]
    """Merge row ``r`` of ``d2`` (columns named ``cols``) into row ``dest[r]`` of the running
    ``k`` smallest (``best_d`` ascending, ``best_i`` their column names), in place.

    One comparison with the current k-th value rejects almost every candidate, so the cost is
    one pass over ``d2``: cheaper than a partition of each row, and no candidate array is built.
    """
    k = best_d.shape[1]
    for r in range(d2.shape[0]):
        o = dest[r]
        worst = best_d[o, k - 1]
        for j in range(d2.shape[1]):
            v = d2[r, j]
            if v < worst:
                p = k - 1
                while p > 0 and best_d[o, p - 1] > v:
                    best_d[o, p] = best_d[o, p - 1]
                    best_i[o, p] = best_i[o, p - 1]
                    p -= 1
                best_d[o, p] = v
                best_i[o, p] = cols[j]
                worst = best_d[o, k - 1]

