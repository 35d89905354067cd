"""Streaming change detectors: one value (or one array of values) at a time.

Real-valued signals (a score, a feature, a latency): :class:`ADWIN`, :class:`PageHinkley`,
:class:`CUSUM`, :class:`KSWIN`; for signals with a trend, a seasonal pattern or autocorrelation
(a daily flag rate): :class:`BOCPD` (Bayesian online change points) and :class:`SeasonalCUSUM`
(a CUSUM on the residuals of a robust seasonal/trend model). Streams of 0/1 errors (1 = the
model was wrong): :class:`DDM`, :class:`EDDM`, :class:`HDDM_A`, :class:`HDDM_W`, and
:class:`BernoulliRate` for any rate (also from aggregated counts). All follow one contract
(:class:`Detector`); the state of each is plain JSON (``to_dict`` / :func:`from_dict`).

Importing this package loads numpy only; numba compiles the sequential kernels on first use.

Examples
--------
>>> import numpy as np
>>> from watchkeeper.detectors import ADWIN, from_dict
>>> rng = np.random.default_rng(1)
>>> stream = np.r_[rng.normal(0, 1, 3000), rng.normal(2, 1, 3000)]
>>> det = ADWIN()
>>> det.update_many(stream[:3000]).tolist()
[]
>>> saved = det.to_dict()          # e.g. stored before a restart
>>> from_dict(saved).update_many(stream[3000:]).tolist()
[39]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from watchkeeper.detectors._base import BinaryDetector, Detector, RealDetector
from watchkeeper.detectors._changepoint import BOCPD, SeasonalCUSUM
from watchkeeper.detectors._cumulative import CUSUM, DDM, BernoulliRate, PageHinkley
from watchkeeper.detectors._sequential import ADWIN, EDDM, HDDM_A, HDDM_W, KSWIN

DETECTORS: Mapping[str, type[Detector]] = {
    cls.method: cls
    for cls in (
        ADWIN,
        PageHinkley,
        CUSUM,
        KSWIN,
        BOCPD,
        SeasonalCUSUM,
        DDM,
        EDDM,
        HDDM_A,
        HDDM_W,
        BernoulliRate,
    )
}
"""Every detector class by its ``method`` name (as in ``to_dict()["method"]``)."""


def from_dict(data: Mapping[str, Any]) -> Detector:
    """Rebuild a detector, parameters and state, from :meth:`Detector.to_dict` output.

    Parameters
    ----------
    data
        The dict (e.g. parsed JSON) written by ``to_dict``.

    Returns
    -------
    Detector
        A detector that continues exactly where the saved one stopped.
    """
    from watchkeeper.detectors._base import SCHEMA_VERSION, _decode

    method = str(data.get("method"))
    if method not in DETECTORS:
        raise ValueError(f"method must be one of {sorted(DETECTORS)}; got {method!r}")
    if data.get("version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise ValueError(f"version {data.get('version')!r} is not supported")
    cls = DETECTORS[method]
    params = {k: _decode(v) for k, v in dict(data.get("params") or {}).items()}
    unknown = set(params) - set(cls.params)
    if unknown:
        raise ValueError(f"params has unknown keys for {method}: {sorted(unknown)}")
    det = cls(**params)
    det._start()
    state = data.get("state")
    if state is None:
        det.reset()
    else:
        det._state = det._state_from_json(state)
    det._drift = bool(data.get("drift_detected", False))
    det._warning = bool(data.get("warning_detected", False))
    return det


__all__ = [
    "ADWIN",
    "BOCPD",
    "CUSUM",
    "DDM",
    "DETECTORS",
    "EDDM",
    "HDDM_A",
    "HDDM_W",
    "KSWIN",
    "BernoulliRate",
    "BinaryDetector",
    "Detector",
    "PageHinkley",
    "RealDetector",
    "SeasonalCUSUM",
    "from_dict",
]
