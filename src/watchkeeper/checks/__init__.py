"""Checks: data quality, pipeline health, skew, calibration and drift, as :class:`Finding` lists.

A check is a function of a reference and a window (plus the options of its entry in
:class:`MonitorConfig`) returning findings; :class:`MonitorConfig` says which run on which
window, and :func:`default_config` makes one from the reference alone.
"""

from __future__ import annotations

from watchkeeper.checks._config import (
    CHECK_DEFAULTS,
    MonitorConfig,
    default_config,
    default_rules,
    parse_duration,
)
from watchkeeper.checks._finding import SEVERITIES, Finding, finding
from watchkeeper.checks._monitor import MonitorReport, monitor
from watchkeeper.checks.calibration import calibration_drift
from watchkeeper.checks.drift import (
    PreparedReference,
    class_mix,
    embedding_drift,
    estimated_performance,
    feature_drift,
    model_drift,
    operating_point,
    prediction_drift,
    realised_performance,
    scores_of,
)
from watchkeeper.checks.pipeline import (
    check_freshness,
    check_rejections,
    check_volume,
    pipeline_health,
)
from watchkeeper.checks.quality import (
    check_categories,
    check_constant,
    check_duplicates,
    check_missing,
    check_ranges,
    check_types,
    data_quality,
)
from watchkeeper.checks.skew import environment_skew, training_serving_skew
from watchkeeper.checks.streaming import streaming

__all__ = [
    "CHECK_DEFAULTS",
    "SEVERITIES",
    "Finding",
    "MonitorConfig",
    "MonitorReport",
    "PreparedReference",
    "calibration_drift",
    "check_categories",
    "check_constant",
    "check_duplicates",
    "check_freshness",
    "check_missing",
    "check_ranges",
    "check_rejections",
    "check_types",
    "check_volume",
    "class_mix",
    "data_quality",
    "default_config",
    "default_rules",
    "embedding_drift",
    "environment_skew",
    "estimated_performance",
    "feature_drift",
    "finding",
    "model_drift",
    "monitor",
    "operating_point",
    "parse_duration",
    "pipeline_health",
    "prediction_drift",
    "realised_performance",
    "scores_of",
    "streaming",
    "training_serving_skew",
]
