"""Pipeline health: freshness, volume against the expected volume, rejection rate.

These checks read counts the store keeps (``Store.ingest_stats``), not the events' values: a
broken pipeline shows first as silence, a drop in volume, or requests turned away.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from watchkeeper.checks._finding import Finding, finding
from watchkeeper.window import Window


def _opt(options: Mapping[str, Any] | None, key: str, default: Any) -> Any:
    value = default if options is None else options.get(key, default)
    return default if value is None else value


def check_freshness(
    now: float,
    last_event_ts: float | None,
    options: Mapping[str, Any] | None = None,
    *,
    window: Window | None = None,
) -> list[Finding]:
    """No event for longer than ``max_silence_seconds`` (no finding when it is not set, or
    before the model's first event).

    Examples
    --------
    >>> f = check_freshness(10_000.0, 1_000.0, {"max_silence_seconds": 3600})[0]
    >>> f.statistic, f.drift
    (9000.0, True)
    """
    bound = _opt(options, "max_silence_seconds", None)
    if bound is None or last_event_ts is None:
        # Before the first event the model is not serving yet: nothing has gone quiet.
        return []
    bound = float(bound)
    silence = max(0.0, now - float(last_event_ts))
    return [
        finding(
            "pipeline_health.freshness",
            "events",
            "seconds_since_last_event",
            silence,
            silence > bound,
            window=window,
            threshold=bound,
            severity=str(_opt(options, "severity", "critical")),
            details={"last_event_ts": last_event_ts, "now": now},
        )
    ]


def check_volume(
    observed: int,
    options: Mapping[str, Any] | None = None,
    *,
    window: Window | None = None,
) -> list[Finding]:
    """Events in the window far from ``expected_volume``: relative error above
    ``volume_tolerance`` *and* outside the Poisson band at level 0.001, so small expected
    volumes do not alarm on noise.

    Examples
    --------
    >>> f = check_volume(400, {"expected_volume": 1000})[0]
    >>> round(f.statistic, 2), f.drift
    (-0.6, True)
    >>> check_volume(950, {"expected_volume": 1000})[0].drift
    False
    """
    expected = _opt(options, "expected_volume", None)
    if expected is None:
        return []
    expected = float(expected)
    if not expected > 0:
        raise ValueError(f"pipeline_health.expected_volume must be positive, got {expected}")
    tolerance = float(_opt(options, "volume_tolerance", 0.5))
    from scipy import stats

    rel = (observed - expected) / expected
    p_value = float(
        min(
            1.0,
            2
            * min(stats.poisson.cdf(observed, expected), stats.poisson.sf(observed - 1, expected)),
        )
    )
    return [
        finding(
            "pipeline_health.volume",
            "events",
            "relative_volume_change",
            rel,
            abs(rel) > tolerance and p_value < 0.001,
            window=window,
            p_value=p_value,
            threshold=tolerance,
            severity=str(_opt(options, "severity", "critical")),
            details={"observed": observed, "expected": expected},
        )
    ]


def check_rejections(
    accepted: int,
    rejected: int,
    options: Mapping[str, Any] | None = None,
    *,
    window: Window | None = None,
) -> list[Finding]:
    """Share of submitted events the service rejected above ``max_rejection_rate``.

    Examples
    --------
    >>> check_rejections(90, 10, {"max_rejection_rate": 0.05})[0].drift
    True
    """
    total = accepted + rejected
    if total == 0:
        return []
    bound = float(_opt(options, "max_rejection_rate", 0.05))
    rate = rejected / total
    return [
        finding(
            "pipeline_health.rejection_rate",
            "events",
            "rejection_rate",
            rate,
            rate > bound,
            window=window,
            threshold=bound,
            severity=str(_opt(options, "severity", "critical")),
            details={"accepted": accepted, "rejected": rejected},
        )
    ]


def pipeline_health(
    window: Window,
    options: Mapping[str, Any] | None = None,
    *,
    now: float,
    last_event_ts: float | None = None,
    accepted: int | None = None,
    rejected: int | None = None,
) -> list[Finding]:
    """Freshness, volume and rejections for one window (each only where its input is known)."""
    out = check_freshness(now, last_event_ts, options, window=window)
    out += check_volume(len(window), options, window=window)
    if accepted is not None and rejected is not None:
        out += check_rejections(accepted, rejected, options, window=window)
    return out
