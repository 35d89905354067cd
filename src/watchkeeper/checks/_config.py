"""The monitor configuration of one model: which checks run on which window, rules and sinks.

A configuration is plain data (YAML <-> dict <-> :class:`MonitorConfig`); ``__init__`` stores what
it is given and :meth:`MonitorConfig.validate` checks it where work starts, naming the offending
field. :func:`default_config` builds a sensible one from the reference alone, so a model with a
reference and no configuration is already monitored.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from watchkeeper.window import Window

CHECK_DEFAULTS: dict[str, dict[str, Any]] = {
    "feature_drift": {
        "enabled": True,
        "features": None,
        "methods": None,
        "alpha": 0.05,
        "correction": "holm",
        "severity": "warning",
    },
    "embedding_drift": {
        "enabled": True,
        "method": "mmd",
        "alpha": 0.05,
        "max_samples": 1000,
        "severity": "warning",
    },
    "prediction_drift": {"enabled": True, "method": "ks", "alpha": 0.05, "severity": "warning"},
    "class_mix": {
        "enabled": True,
        "alpha": 0.05,
        "expected_priors": None,
        # "decrease" / "increase": the one-sided test, for a direction known beforehand
        "alternative": "two-sided",
        "severity": "warning",
    },
    "model_drift": {"enabled": True, "method": "cauchy", "alpha": 0.05, "severity": "warning"},
    "operating_point": {
        "enabled": True,
        "alpha": 0.01,
        "expected_prevalence": None,
        "mix": "random",
        "dispersion": None,
        "severity": "critical",
    },
    "estimated_performance": {
        "enabled": True,
        "metric": "f1",
        "tolerance": 0.05,
        "severity": "warning",
    },
    "realised_performance": {
        "enabled": True,
        "metric": "f1",
        "min_labels": 50,
        "tolerance": 0.05,
        "n_bootstrap": 100,
        "severity": "critical",
    },
    "calibration": {
        "enabled": True,
        "bins": 10,
        "alpha": 0.01,
        "min_labels": 100,
        "severity": "warning",
    },
    "data_quality": {
        "enabled": True,
        "max_wrong_type_rate": 0.0,
        "max_out_of_range_rate": 0.01,
        "range_margin": 0.0,
        "max_new_category_rate": 0.01,
        "max_missing_rate_increase": 0.1,
        "max_duplicate_rate": 0.0,
        "severity": "critical",
    },
    "pipeline_health": {
        "enabled": True,
        "max_silence_seconds": None,
        "expected_volume": None,
        "volume_tolerance": 0.5,
        "max_rejection_rate": 0.05,
        "severity": "critical",
    },
    "training_serving_skew": {
        "enabled": False,
        "tolerance": 1e-6,
        "max_mismatch_rate": 0.01,
        "severity": "warning",
    },
    "environment": {
        "enabled": True,
        "packages": None,
        "level": "minor",
        "severity": "warning",
    },
    "streaming": {
        "enabled": True,
        "score": "ADWIN",
        "flag": "BernoulliRate",
        "error": "BernoulliRate",
        "severity": "warning",
    },
    "outliers": {
        "enabled": True,
        "method": "auto",
        "features": None,
        "k": 10,
        "alpha": 0.01,
        "band_alpha": 0.01,
        "severity": "warning",
    },
    "adversaries": {
        "enabled": True,
        "tag": "source",
        "tests": None,
        "alpha": 0.01,
        "correction": "holm",
        "margin": 0.05,
        "min_events": 32,
        "ratio": 3.0,
        "severity": "critical",
    },
}
"""Every check the runner knows, with its options and their defaults."""

SIZE_LIMITS: dict[str, tuple[float, float]] = {
    "max_samples": (2, 50_000),
    "n_bootstrap": (1, 10_000),
    "bins": (2, 1_000),
    "min_labels": (0, 10**9),
}
"""Bounds of the options that size a check's memory or loop (a configuration comes from a
project admin, over HTTP too: none may make a monitor run exhaust the server)."""
MAX_COUNT_WINDOW = 10_000_000
"""Most events in one count window."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: float | int | str, name: str = "duration") -> float:
    """Seconds from a number or a string such as ``"90s"``, ``"15m"``, ``"1h"``, ``"1d"``.

    Examples
    --------
    >>> parse_duration("15m"), parse_duration(30)
    (900.0, 30.0)
    """
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if m is None:
            raise ValueError(f"{name}: cannot read {value!r} as a duration (e.g. '1h', '15m')")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name}: must be a positive duration, got {value!r}")
    return seconds


@dataclass
class MonitorConfig:
    """Which checks run on which window, the alert rules over their findings, and the sinks.

    Parameters
    ----------
    window
        ``{"kind": "time", "size": "1h"}`` (closed time windows) or
        ``{"kind": "count", "size": 10000}`` (every N events).
    checks
        Check name -> options; options not given take the values of :data:`CHECK_DEFAULTS`.
    rules
        Alert rule dicts (see :class:`watchkeeper.alerts.AlertRule`).
    sinks
        Sink dicts (see :func:`watchkeeper.alerts.sink_from_dict`).
    positive_label
        Which label is the positive class, when labels are not 0/1-like.

    Examples
    --------
    >>> text = "window: {kind: count, size: 500}\\nchecks: {calibration: {bins: 5}}"
    >>> c = MonitorConfig.from_yaml(text)
    >>> c.validate().option("calibration", "bins"), c.option("calibration", "alpha")
    (5, 0.01)
    >>> MonitorConfig(window={"kind": "weekly"}).validate()
    Traceback (most recent call last):
    ...
    ValueError: window.kind must be 'time' or 'count', got 'weekly'
    """

    window: dict[str, Any] = field(default_factory=lambda: {"kind": "time", "size": "1h"})
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: list[dict[str, Any]] = field(default_factory=list)
    sinks: list[dict[str, Any]] = field(default_factory=list)
    positive_label: Any = None

    def validate(self) -> MonitorConfig:
        """Check every field; return ``self`` or raise ``ValueError`` naming the field."""
        kind = self.window.get("kind")
        if kind not in ("time", "count"):
            raise ValueError(f"window.kind must be 'time' or 'count', got {kind!r}")
        size = self.window.get("size")
        if kind == "time":
            parse_duration(size, "window.size")  # type: ignore[arg-type]
        elif (
            not isinstance(size, int) or isinstance(size, bool) or not 2 <= size <= MAX_COUNT_WINDOW
        ):
            raise ValueError(
                f"window.size must be an integer in [2, {MAX_COUNT_WINDOW:,}] for count windows, "
                f"got {size!r}"
            )
        for name, options in self.checks.items():
            if name not in CHECK_DEFAULTS:
                raise ValueError(
                    f"checks.{name}: unknown check; known: {', '.join(sorted(CHECK_DEFAULTS))}"
                )
            if not isinstance(options, Mapping):
                raise ValueError(f"checks.{name}: expected a mapping of options")
            for key in options:
                if key not in CHECK_DEFAULTS[name]:
                    raise ValueError(
                        f"checks.{name}.{key}: unknown option; known: "
                        f"{', '.join(sorted(CHECK_DEFAULTS[name]))}"
                    )
            for key in ("alpha", "band_alpha"):
                if key in options and not 0 < float(options[key]) < 1:
                    raise ValueError(f"checks.{name}.{key} must be in (0, 1), got {options[key]}")
            for key, (low, high) in SIZE_LIMITS.items():
                if key in options and options[key] is not None:
                    value = options[key]
                    if (
                        isinstance(value, bool)
                        or not isinstance(value, int | float)
                        or not low <= value <= high
                    ):
                        raise ValueError(
                            f"checks.{name}.{key} must be a number in [{low}, {high:,}], "
                            f"got {value!r}"
                        )
            alt = options.get("alternative")
            if alt is not None and alt not in ("two-sided", "decrease", "increase"):
                raise ValueError(
                    f"checks.{name}.alternative must be 'two-sided', 'decrease' or 'increase', "
                    f"got {alt!r}"
                )
            sev = options.get("severity")
            if sev is not None and sev not in ("info", "warning", "critical"):
                raise ValueError(f"checks.{name}.severity: unknown severity {sev!r}")
        # Rules and sinks belong to the layer above (watchkeeper.alerts), which validates them:
        # a check never imports alerts.
        for key in ("rules", "sinks"):
            items = getattr(self, key)
            if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
                raise ValueError(f"{key}: expected a list of mappings")
        return self

    def options(self, check: str) -> dict[str, Any]:
        """The options of ``check``: its defaults overlaid with what was configured."""
        if check not in CHECK_DEFAULTS:
            raise ValueError(f"check: unknown check {check!r}")
        return {**CHECK_DEFAULTS[check], **self.checks.get(check, {})}

    def option(self, check: str, key: str) -> Any:
        """One option of one check."""
        return self.options(check)[key]

    def enabled(self, check: str) -> bool:
        """Whether ``check`` runs."""
        return bool(self.option(check, "enabled"))

    def window_seconds(self) -> float | None:
        """Length of a time window in seconds, None for count windows."""
        if self.window.get("kind") != "time":
            return None
        return parse_duration(self.window["size"], "window.size")

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as stored by ``Store.put_monitor_config``."""
        return {
            "window": copy.deepcopy(self.window),
            "checks": copy.deepcopy(self.checks),
            "rules": copy.deepcopy(self.rules),
            "sinks": copy.deepcopy(self.sinks),
            "positive_label": self.positive_label,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MonitorConfig:
        """Build from plain data; unknown top-level keys are an error naming them."""
        known = {"window", "checks", "rules", "sinks", "positive_label"}
        extra = set(d) - known
        if extra:
            raise ValueError(f"unknown configuration key(s): {', '.join(sorted(extra))}")
        return cls(
            window=dict(d.get("window") or {"kind": "time", "size": "1h"}),
            checks={k: dict(v or {}) for k, v in (d.get("checks") or {}).items()},
            rules=[dict(r) for r in d.get("rules") or []],
            sinks=[dict(s) for s in d.get("sinks") or []],
            positive_label=d.get("positive_label"),
        )

    @classmethod
    def from_yaml(cls, text: str) -> MonitorConfig:
        """Parse a YAML document (the same shape as :meth:`to_dict`)."""
        import yaml

        data = yaml.safe_load(text) or {}
        if not isinstance(data, Mapping):
            raise ValueError("configuration: the YAML document must be a mapping")
        return cls.from_dict(data)

    def to_yaml(self) -> str:
        """YAML text that :meth:`from_yaml` reads back."""
        import yaml

        return str(yaml.safe_dump(self.to_dict(), sort_keys=False))


def default_rules() -> list[dict[str, Any]]:
    """The default alert rules: persistence on drift, immediate on broken pipelines."""
    drift = {"k": 2, "n": 3}
    return [
        {
            "name": "data_drift",
            "checks": ["feature_drift", "embedding_drift", "prediction_drift"],
            "severity": "warning",
            **drift,
        },
        {"name": "operating_point", "checks": ["operating_point"], "severity": "critical", **drift},
        {
            "name": "performance",
            "checks": ["estimated_performance", "realised_performance"],
            "severity": "critical",
            **drift,
        },
        {"name": "calibration", "checks": ["calibration"], "severity": "warning", **drift},
        {
            "name": "data_quality",
            "checks": ["data_quality.*", "training_serving_skew"],
            "severity": "critical",
            "k": 1,
            "n": 1,
        },
        {
            "name": "pipeline_health",
            "checks": ["pipeline_health.*"],
            "severity": "critical",
            "k": 1,
            "n": 1,
        },
        {"name": "environment", "checks": ["environment"], "severity": "warning", "k": 1, "n": 1},
        {"name": "streaming", "checks": ["streaming.*"], "severity": "warning", "k": 1, "n": 1},
        {"name": "outliers", "checks": ["outliers"], "severity": "warning", **drift},
        {
            "name": "adversaries",
            "checks": ["adversary.*"],
            "subjects": ["*=*"],
            "severity": "critical",
            "k": 1,
            "n": 1,
            "group_by": ["project", "model", "rule", "subject"],
        },
    ]


def default_config(
    reference: Window,
    operating_point: Any = None,
    *,
    expected_volume: float | None = None,
    window: str | int = "1h",
) -> MonitorConfig:
    """A configuration that makes sense from the reference alone.

    Checks that need what the reference lacks are switched off: embedding drift without
    embeddings, prediction drift, calibration and the score detector without scores,
    performance and calibration without labels, the operating-point check without an operating
    point.

    Parameters
    ----------
    reference
        The reference set of the model version.
    operating_point
        Its :class:`~watchkeeper.estimation.OperatingPoint` (or its dict), if any.
    expected_volume
        Events expected per window; enables the volume check.
    window
        A duration such as ``"1h"`` for time windows, or an event count for count windows.

    Examples
    --------
    >>> ref = Window.from_columns(features={"x": [1.0, 2.0]}, scores=[0.2, 0.8])
    >>> c = default_config(ref)
    >>> c.enabled("prediction_drift"), c.enabled("embedding_drift"), c.enabled("calibration")
    (True, False, False)
    """
    has_scores = reference.scores is not None or (
        reference.probs is not None and reference.probs.ndim == 2 and reference.probs.shape[1] == 2
    )
    has_labels = reference.labels is not None
    multiclass = (
        reference.probs is not None and reference.probs.ndim == 2 and reference.probs.shape[1] >= 3
    )
    has_embeddings = reference.embeddings is not None
    has_op = operating_point is not None
    switch = {
        "feature_drift": bool(reference.features),
        "embedding_drift": has_embeddings,
        "prediction_drift": has_scores
        or reference.probs is not None
        or reference.predicted is not None,
        "class_mix": has_labels and (multiclass or reference.predicted is not None),
        "model_drift": True,
        "operating_point": has_op and has_scores,
        "estimated_performance": has_scores and has_labels and has_op,
        "realised_performance": has_scores and has_op,
        "calibration": has_scores and has_labels,
        "data_quality": True,
        "pipeline_health": True,
        "training_serving_skew": False,
        "environment": True,
        "streaming": has_scores,
        "outliers": has_embeddings
        or any(np.asarray(v).dtype.kind in "biuf" for v in reference.features.values()),
        "adversaries": True,
    }
    checks: dict[str, dict[str, Any]] = {k: {"enabled": v} for k, v in switch.items()}
    if expected_volume is not None:
        checks["pipeline_health"]["expected_volume"] = float(expected_volume)
    if isinstance(window, int):
        win: dict[str, Any] = {"kind": "count", "size": window}
    else:
        win = {"kind": "time", "size": window}
        # No event for three windows in a row is a broken pipeline, not a quiet hour.
        checks["pipeline_health"]["max_silence_seconds"] = 3 * parse_duration(window)
    if not has_scores:
        checks["streaming"]["score"] = None
    return MonitorConfig(window=win, checks=checks, rules=default_rules(), sinks=[])
