"""Alerts: rules over findings with persistence, hysteresis, cooldown and grouping; sequential
decisions over runs of windows; sinks; Prometheus rules and a Grafana dashboard.
"""

from __future__ import annotations

from watchkeeper.alerts._rules import (
    AlertEngine,
    AlertEvent,
    AlertRule,
    Evaluation,
)
from watchkeeper.alerts._sequential import SequentialTest, cusum_bound, p_to_z

__all__ = [
    "AlertEngine",
    "AlertEvent",
    "AlertRule",
    "Evaluation",
    "SequentialTest",
    "cusum_bound",
    "p_to_z",
]
