"""Every window check on plain arrays, in one call: no store, no server, no configuration file.

:func:`monitor` builds the reference's :class:`~watchkeeper.checks.PreparedReference` and its
default configuration (or takes yours), runs each check that applies to what the two samples
hold, and returns the findings with one combined verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from watchkeeper.checks._finding import Finding
from watchkeeper.window import Window

_COLUMNS = (
    "ids",
    "ts",
    "features",
    "scores",
    "probs",
    "predicted",
    "labels",
    "embeddings",
    "latency_ms",
    "tags",
)


def _window(name: str, data: Any) -> Window:
    """A :class:`Window` from a window, a mapping of columns, a DataFrame or a 2-D array."""
    if isinstance(data, Window):
        return data
    if isinstance(data, Mapping):
        keys = set(data)
        if keys and keys <= set(_COLUMNS):
            return Window.from_columns(**dict(data))
        return Window.from_columns(features=dict(data))  # a mapping of feature columns
    if hasattr(data, "columns") and hasattr(data, "__getitem__"):  # pandas / polars frames
        return Window.from_columns(features={str(c): np.asarray(data[c]) for c in data.columns})
    arr = np.asarray(data)
    if arr.ndim == 2:
        return Window.from_columns(features={f"x{i}": arr[:, i] for i in range(arr.shape[1])})
    raise ValueError(
        f"{name}: expected a Window, a mapping of columns ({', '.join(_COLUMNS)}) or of "
        f"features, a DataFrame or a 2-D array; got {type(data).__name__}"
    )


@dataclass(frozen=True, slots=True)
class MonitorReport:
    """What :func:`monitor` found.

    ``findings`` are those of every check that ran; ``drift`` is the combined verdict of the
    drift tests (the ``model_drift`` finding: their p-values combined by a rule that keeps the
    level) or of any operating-point, class-mix or performance finding that fired;
    ``errors`` names checks that failed (the others still ran).
    """

    findings: tuple[Finding, ...]
    drift: bool
    p_value: float | None
    errors: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "errors", MappingProxyType(dict(self.errors)))

    def drifted(self) -> list[Finding]:
        """The findings that report a change."""
        return [f for f in self.findings if f.drift]

    def of(self, check: str) -> list[Finding]:
        """The findings of one check."""
        return [f for f in self.findings if f.check == check]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "drift": self.drift,
            "p_value": self.p_value,
            "findings": [f.to_dict() for f in self.findings],
            "errors": dict(self.errors),
        }


_VERDICT_CHECKS = (
    "model_drift",
    "operating_point",
    "class_mix",
    "estimated_performance",
    "realised_performance",
)


def monitor(
    reference: Any,
    current: Any,
    *,
    operating_point: Any = None,
    config: Any = None,
) -> MonitorReport:
    """Run the monitors on two samples held in memory and return what they found.

    Parameters
    ----------
    reference
        The validation sample: a :class:`~watchkeeper.window.Window`, a mapping of columns
        (``features``, ``scores``, ``probs``, ``predicted``, ``labels``, ``embeddings``, ...),
        a mapping of feature columns, a pandas or polars DataFrame of features, or a 2-D array
        of features.
    current
        The production window, in the same form.
    operating_point
        The model's :class:`~watchkeeper.estimation.OperatingPoint` (or its dict), which
        enables the flag band and the performance estimate of a binary model.
    config
        A :class:`~watchkeeper.checks.MonitorConfig` or its dict; default
        :func:`~watchkeeper.checks.default_config` from the reference.

    Returns
    -------
    MonitorReport
        Findings, the combined verdict and its p-value.

    Examples
    --------
    >>> import watchkeeper
    >>> rng = np.random.default_rng(0)
    >>> ref = {"features": {"x": rng.normal(size=500)}, "embeddings": rng.normal(size=(500, 8))}
    >>> cur = {"features": {"x": rng.normal(size=200)},
    ...        "embeddings": rng.normal(0.4, 1.0, size=(200, 8))}
    >>> report = watchkeeper.monitor(ref, cur)
    >>> report.drift, [f.check for f in report.drifted()]
    (True, ['embedding_drift', 'model_drift'])
    """
    from watchkeeper.checks._config import MonitorConfig, default_config
    from watchkeeper.checks.drift import PreparedReference

    ref = _window("reference", reference)
    cur = _window("current", current)
    if len(ref) == 0:
        raise ValueError("reference: empty")
    if config is None:
        cfg = default_config(ref, operating_point)
    elif isinstance(config, MonitorConfig):
        cfg = config.validate()
    else:
        cfg = MonitorConfig.from_dict(config).validate()
    prep = PreparedReference(ref, operating_point, cfg.positive_label)
    findings: list[Finding] = []
    errors: dict[str, str] = {}

    def run(name: str, fn: Callable[[], list[Finding]]) -> None:
        if not cfg.enabled(name):
            return
        try:
            findings.extend(fn())
        except ValueError as exc:  # a misconfigured check: say so, run the others
            errors[name] = str(exc)

    if len(cur):
        for name, fn in window_checks(prep, cur, cfg, findings, calibration_reference=ref):
            run(name, fn)
    combined = [f for f in findings if f.check == "model_drift"]
    drift = any(f.drift for f in findings if f.check in _VERDICT_CHECKS)
    return MonitorReport(
        findings=tuple(findings),
        drift=drift,
        p_value=combined[0].p_value if combined else None,
        errors=errors,
    )


def window_checks(
    prep: Any,
    window: Window,
    cfg: Any,
    findings: list[Finding],
    *,
    calibration_reference: Any,
    reference_profile: Any = None,
) -> list[tuple[str, Callable[[], list[Finding]]]]:
    """The checks that compare one window with the reference, in the order they run.

    Each is a name and a call; the caller runs the enabled ones and collects what they find
    into ``findings``, which ``model_drift`` reads when its turn comes (it combines the drift
    tests before it). :func:`monitor` and the runner both take their checks from here.
    """
    from watchkeeper.checks.calibration import calibration_drift
    from watchkeeper.checks.drift import (
        class_mix,
        embedding_drift,
        estimated_performance,
        feature_drift,
        model_drift,
        operating_point,
        prediction_drift,
        realised_performance,
    )
    from watchkeeper.checks.quality import data_quality

    def opts(name: str) -> Any:
        return cfg.options(name)

    return [
        ("feature_drift", lambda: feature_drift(prep, window, opts("feature_drift"))),
        ("prediction_drift", lambda: prediction_drift(prep, window, opts("prediction_drift"))),
        ("embedding_drift", lambda: embedding_drift(prep, window, opts("embedding_drift"))),
        ("class_mix", lambda: class_mix(prep, window, opts("class_mix"))),
        ("model_drift", lambda: model_drift(list(findings), window, opts("model_drift"))),
        ("operating_point", lambda: operating_point(prep, window, opts("operating_point"))),
        (
            "estimated_performance",
            lambda: estimated_performance(prep, window, opts("estimated_performance")),
        ),
        (
            "realised_performance",
            lambda: realised_performance(prep, window, opts("realised_performance")),
        ),
        (
            "calibration",
            lambda: calibration_drift(
                calibration_reference, window, opts("calibration"),
                positive_label=cfg.positive_label,
            ),
        ),
        (
            "data_quality",
            lambda: data_quality(
                prep.reference, window, opts("data_quality"), reference_profile=reference_profile
            ),
        ),
    ]
