"""Alerts: rules over findings with persistence, hysteresis, cooldown and grouping; sequential
decisions over runs of windows; sinks; Prometheus rules and a Grafana dashboard.
"""

from __future__ import annotations

from watchkeeper.alerts._policy import SinkPolicy
from watchkeeper.alerts._rules import (
    AlertEngine,
    AlertEvent,
    AlertRule,
    Evaluation,
)
from watchkeeper.alerts._sequential import SequentialTest, cusum_bound, p_to_z
from watchkeeper.alerts.sinks import (
    SINK_TYPES,
    AlertmanagerSink,
    Sink,
    SlackSink,
    SmtpSink,
    WebhookSink,
    deliver,
    sink_from_dict,
    validate_alerting,
)

__all__ = [
    "SINK_TYPES",
    "AlertEngine",
    "AlertEvent",
    "AlertRule",
    "AlertmanagerSink",
    "Evaluation",
    "SequentialTest",
    "Sink",
    "SinkPolicy",
    "SlackSink",
    "SmtpSink",
    "WebhookSink",
    "cusum_bound",
    "deliver",
    "p_to_z",
    "sink_from_dict",
    "validate_alerting",
]
