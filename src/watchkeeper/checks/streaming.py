"""Streaming detectors on the score, the flag and the error streams, continued across windows.

Each stream's detector state is a plain dict (``Detector.to_dict``) that the runner keeps with
``Store.put_state``; a window feeds its events in time order and a detection anywhere in it is
a finding. The detectors are ``watchkeeper.detectors`` classes named by their ``method``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from watchkeeper.checks._finding import Finding, finding
from watchkeeper.profiles import binary_labels
from watchkeeper.window import Window

STREAMS = ("score", "flag", "error")


def _opt(options: Mapping[str, Any] | None, key: str, default: Any) -> Any:
    value = default if options is None else options.get(key, default)
    return default if value is None else value


def _streams(
    window: Window, threshold: float | None, positive_label: object
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Values and times of each stream, in time order."""
    from watchkeeper.checks.drift import scores_of

    order = np.argsort(window.ts, kind="stable")
    ts = window.ts[order]
    s = scores_of(window)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if s is None:
        return out
    s = s[order]
    ok = np.isfinite(s)
    out["score"] = (s[ok], ts[ok])
    if threshold is not None:
        flags = (s >= threshold).astype(np.float64)
        out["flag"] = (flags[ok], ts[ok])
        if window.labels is not None:
            y = binary_labels(window.labels[order], positive_label)
            known = ok & np.isfinite(y)
            out["error"] = ((flags != y).astype(np.float64)[known], ts[known])
    return out


def streaming(
    window: Window,
    options: Mapping[str, Any] | None = None,
    *,
    state: Mapping[str, Any] | None = None,
    threshold: float | None = None,
    positive_label: object = None,
    flag_rate: float | None = None,
    error_rate: float | None = None,
) -> tuple[list[Finding], dict[str, Any]]:
    """Feed the window to one detector per stream; return findings and the new state.

    Parameters
    ----------
    window
        The window's events (fed in time order).
    options
        ``score``, ``flag``, ``error``: detector method names (``None`` switches a stream off),
        ``severity``.
    state
        Stream name -> saved detector dict, from the previous window.
    threshold
        The operating threshold, for the flag and error streams.
    positive_label
        Which label is positive, for the error stream.
    flag_rate
        The reference's flag rate at ``threshold``: the in-control rate of a ``BernoulliRate``
        flag detector (otherwise it estimates one from its first events).
    error_rate
        The reference's error rate at ``threshold``, likewise for the error stream.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> calm = Window.from_columns(ts=np.arange(3000.0), scores=rng.beta(2, 5, 3000))
    >>> found, state = streaming(calm, threshold=0.5, flag_rate=0.11)
    >>> [f.drift for f in found]
    [False, False]
    >>> moved = Window.from_columns(ts=3000 + np.arange(3000.0), scores=rng.beta(5, 2, 3000))
    >>> found, state = streaming(moved, state=state, threshold=0.5, flag_rate=0.11)
    >>> [(f.subject, f.drift) for f in found]
    [('score', True), ('flag', True)]
    """
    from watchkeeper.detectors import DETECTORS, from_dict

    new_state: dict[str, Any] = dict(state or {})
    out: list[Finding] = []
    severity = str(_opt(options, "severity", "warning"))
    defaults = {"score": "ADWIN", "flag": "BernoulliRate", "error": "BernoulliRate"}
    rates = {"flag": flag_rate, "error": error_rate}
    for stream, (values, ts) in _streams(window, threshold, positive_label).items():
        method = defaults[stream] if options is None else options.get(stream, defaults[stream])
        if method is None or values.size == 0:
            continue
        if method not in DETECTORS:
            raise ValueError(
                f"streaming.{stream}: unknown detector {method!r}; known: {sorted(DETECTORS)}"
            )
        saved = new_state.get(stream)
        if saved is not None and saved.get("method") == method:
            detector = from_dict(saved)
        elif method == "BernoulliRate" and (rate := rates.get(stream)) is not None:
            # The reference says what the rate should be; no warm-up needed.
            p0 = min(max(float(rate), 1e-4), 1 - 1e-4)
            detector = DETECTORS[method](p0=p0)  # type: ignore[call-arg]
        else:
            detector = DETECTORS[method]()
        hits = np.asarray(detector.update_many(values), dtype=np.int64)
        new_state[stream] = detector.to_dict()
        out.append(
            finding(
                f"streaming.{stream}",
                stream,
                str(method),
                float(hits.size),
                bool(hits.size),
                window=window,
                threshold=0.5,
                severity=severity,
                details={
                    "detections": int(hits.size),
                    "first_at": float(ts[hits[0]]) if hits.size else None,
                    "values": int(values.size),
                },
            )
        )
    return out, new_state
