"""Which compiled kernels the sequential detectors run: ahead-of-time C, or numba.

The C extension (``_ckernels``, built by ``pip install`` when a C compiler is available) loads
in a millisecond, so the first ``update_many`` of a process costs what later ones do. Without
it the numba kernels of ``_kernels`` are used; their first call in a process loads numba and
its cached machine code, which costs about a second. Both give the same detections (tested).

``WATCHKEEPER_KERNELS=numba`` (or ``c``) forces one; :func:`name` says which is in use
(``watchkeeper --version`` prints it).

The functions here have the numba kernels' signatures: they take the values and the state
arrays (mutated in place) and return the positions of the detections.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy as np

from watchkeeper.detectors._base import FloatArray, IntArray

_native: ModuleType | None = None
_chosen: str | None = None


def _load_native() -> ModuleType | None:
    try:
        from watchkeeper.detectors import _ckernels  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _ckernels  # type: ignore[no-any-return]


def available() -> list[str]:
    """The backends that can run here, best first."""
    return (["c"] if _load_native() is not None else []) + ["numba"]


def use(backend: str | None) -> str:
    """Choose the backend: ``"c"``, ``"numba"``, or ``None`` for the best available (or the one
    ``WATCHKEEPER_KERNELS`` names). Returns the backend chosen.

    Raises
    ------
    ValueError
        When ``backend`` is not one of the names, or ``"c"`` is asked for but not built.
    """
    global _native, _chosen
    wanted = backend if backend is not None else os.environ.get("WATCHKEEPER_KERNELS") or None
    if wanted not in (None, "c", "numba"):
        raise ValueError(f"kernel backend must be 'c' or 'numba'; got {wanted!r}")
    native = _load_native() if wanted in (None, "c") else None
    if wanted == "c" and native is None:
        raise ValueError(
            "kernel backend 'c' is not built here: reinstall with a C compiler available "
            "(pip install -e .), or use 'numba'"
        )
    _native = native
    _chosen = "c" if native is not None else "numba"
    return _chosen


def name() -> str:
    """The backend in use (choosing it on first call)."""
    return _chosen if _chosen is not None else use(None)


def _numba() -> Any:
    from watchkeeper.detectors import _kernels

    return _kernels


def _out(values: FloatArray) -> IntArray:
    return np.empty(values.shape[0], dtype=np.int64)


def page_hinkley(values: FloatArray, buf: FloatArray, min_instances: int, delta: float,
                 threshold: float, alpha: float, mode: int, reset: bool) -> IntArray:
    """Page-Hinkley with forgetting; ``buf`` holds n, sum, inc, dec, min_inc, max_dec, drift."""
    if name() == "numba":
        return _numba().page_hinkley(  # type: ignore[no-any-return]
            values, buf, min_instances, delta, threshold, alpha, mode, reset)
    assert _native is not None
    out = _out(values)
    found = _native.page_hinkley(values, buf, out, min_instances, delta, threshold, alpha,
                                 mode, reset)
    return out[:found]


def adwin(values: FloatArray, scalars: FloatArray, counts: IntArray, totals: FloatArray,
          variances: FloatArray, delta: float, clock: int, max_buckets: int, min_len: float,
          grace: float, reset: bool) -> IntArray:
    """ADWIN over ``values``; the state is the exponential histogram's arrays."""
    if name() == "numba":
        return _numba().adwin(  # type: ignore[no-any-return]
            values, scalars, counts, totals, variances, delta, clock, max_buckets, min_len,
            grace, reset)
    assert _native is not None
    out = _out(values)
    found = _native.adwin(values, scalars, counts, totals, variances, out, delta, clock,
                          max_buckets, min_len, grace, reset)
    return out[:found]


def kswin(values: FloatArray, ring: FloatArray, scalars: FloatArray, seed: int,
          window_size: int, stat_size: int, k_crit: int, reset: bool,
          samples: IntArray) -> IntArray:
    """KSWIN over ``values``; ``samples`` (rows of pool positions) replaces the random draws
    when it has rows."""
    if name() == "numba":
        return _numba().kswin(  # type: ignore[no-any-return]
            values, ring, scalars, np.uint64(seed), window_size, stat_size, k_crit, reset,
            samples)
    assert _native is not None
    out = _out(values)
    found = _native.kswin(values, ring, scalars, int(seed), window_size, stat_size, k_crit,
                          reset, np.ascontiguousarray(samples, dtype=np.int64), out)
    return out[:found]


def eddm(values: FloatArray, scalars: FloatArray, warm_start: float, alpha: float,
         beta: float, reset: bool) -> IntArray:
    """EDDM over a 0/1 stream."""
    if name() == "numba":
        return _numba().eddm(  # type: ignore[no-any-return]
            values, scalars, warm_start, alpha, beta, reset)
    assert _native is not None
    out = _out(values)
    found = _native.eddm(values, scalars, out, warm_start, alpha, beta, reset)
    return out[:found]


def hddm_a(values: FloatArray, scalars: FloatArray, drift_conf: float, warn_conf: float,
           two_sided: bool, reset: bool) -> IntArray:
    """HDDM_A over a 0/1 stream."""
    if name() == "numba":
        return _numba().hddm_a(  # type: ignore[no-any-return]
            values, scalars, drift_conf, warn_conf, two_sided, reset)
    assert _native is not None
    out = _out(values)
    found = _native.hddm_a(values, scalars, out, drift_conf, warn_conf, two_sided, reset)
    return out[:found]


def hddm_w(values: FloatArray, scalars: FloatArray, drift_conf: float, warn_conf: float,
           lam: float, two_sided: bool, reset: bool) -> IntArray:
    """HDDM_W over a 0/1 stream."""
    if name() == "numba":
        return _numba().hddm_w(  # type: ignore[no-any-return]
            values, scalars, drift_conf, warn_conf, lam, two_sided, reset)
    assert _native is not None
    out = _out(values)
    found = _native.hddm_w(values, scalars, out, drift_conf, warn_conf, lam, two_sided, reset)
    return out[:found]
