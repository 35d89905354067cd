"""The validation gate: is the challenger good enough to replace the champion?

Both models are scored on the same labelled evaluation sets (typically the original validation
set and the recent labelled production slice). For each set the gate reports every model's
metrics with bootstrap intervals, the paired tests of :mod:`watchkeeper.loop._paired`, and a
breakdown per segment (tag value); then it applies the plan's rules. A rule names a metric, a
test and a margin:

``superior``
    pass only with evidence the challenger is better: one-sided p-value of "not better"
    below ``alpha``. Promotes a no-better challenger with probability at most ``alpha``.
``non_inferior``
    pass only with evidence the challenger loses at most ``margin``: one-sided p-value of
    "worse by more than the margin" below ``alpha``. Promotes a challenger that is worse by more
    than ``margin`` with probability at most ``alpha``.
``not_worse``
    fail only with evidence the challenger is worse by more than ``margin``. The weakest rule:
    a guard, not a proof.

The gate config is plain data (the ``gate`` section of a maintenance plan); :func:`gate_config`
fills the defaults and names any wrong field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from watchkeeper.loop._paired import (
    PairedTest,
    _coverage,
    _labels,
    _scores,
    delong,
    fpr_at_tpr,
    mcnemar,
    roc_auc,
    threshold_at_tpr,
)
from watchkeeper.stats._result import _plain

METRICS = ("fpr_at_tpr", "auc", "accuracy")
TESTS = ("superior", "non_inferior", "not_worse")

GATE_DEFAULTS: dict[str, Any] = {
    "target_tpr": 0.9,
    "alpha": 0.05,
    "n_bootstrap": 1000,
    "min_events": 100,
    "rules": [
        {"metric": "fpr_at_tpr", "test": "not_worse", "margin": 0.0, "sets": None},
        {"metric": "auc", "test": "not_worse", "margin": 0.0, "sets": None},
    ],
    "segments": {"tags": None, "metric": "accuracy", "max_drop": 0.02, "min_events": 50},
}
"""The gate of a plan that says nothing: the challenger must not be significantly worse."""

_RULE_KEYS = {"metric", "test", "margin", "sets"}
_SEGMENT_KEYS = {"tags", "metric", "max_drop", "min_events"}


def _number(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    if not (low <= float(value) <= high) or math.isnan(float(value)):
        raise ValueError(f"{name}: must be in [{low}, {high}], got {value!r}")
    return float(value)


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name}: must be in [{low}, {high}], got {value!r}")
    return int(value)


def _names(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{name}: expected a list of names, got {value!r}")
    if len(value) > 100:
        raise ValueError(f"{name}: at most 100 names, got {len(value)}")
    return list(value)


def gate_config(config: Mapping[str, Any] | None = None, where: str = "gate") -> dict[str, Any]:
    """The gate configuration with defaults filled in, validated; errors name the field.

    Examples
    --------
    >>> gate_config({"target_tpr": 0.95})["rules"][0]["metric"]
    'fpr_at_tpr'
    >>> gate_config({"rules": [{"metric": "f2"}]})
    Traceback (most recent call last):
    ...
    ValueError: gate.rules[0].metric: expected one of fpr_at_tpr, auc, accuracy, got 'f2'
    """
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(config).__name__}")
    unknown = set(config) - set(GATE_DEFAULTS)
    if unknown:
        raise ValueError(
            f"{where}.{sorted(unknown)[0]}: unknown option (known: {', '.join(GATE_DEFAULTS)})"
        )
    out: dict[str, Any] = {
        "target_tpr": _number(
            config.get("target_tpr", GATE_DEFAULTS["target_tpr"]), f"{where}.target_tpr", 0.01, 1
        ),
        "alpha": _number(config.get("alpha", GATE_DEFAULTS["alpha"]), f"{where}.alpha", 1e-6, 0.5),
        "n_bootstrap": _int(
            config.get("n_bootstrap", GATE_DEFAULTS["n_bootstrap"]), f"{where}.n_bootstrap",
            50, 20_000,
        ),
        "min_events": _int(
            config.get("min_events", GATE_DEFAULTS["min_events"]), f"{where}.min_events",
            4, 10_000_000,
        ),
    }  # fmt: skip
    rules = config.get("rules", GATE_DEFAULTS["rules"])
    if not isinstance(rules, list) or len(rules) > 50:
        raise ValueError(f"{where}.rules: expected a list of at most 50 rules, got {rules!r}")
    out["rules"] = []
    for i, rule in enumerate(rules):
        at = f"{where}.rules[{i}]"
        if not isinstance(rule, Mapping):
            raise ValueError(f"{at}: expected a mapping, got {rule!r}")
        extra = set(rule) - _RULE_KEYS
        if extra:
            raise ValueError(f"{at}.{sorted(extra)[0]}: unknown option")
        metric = rule.get("metric")
        if metric not in METRICS:
            raise ValueError(f"{at}.metric: expected one of {', '.join(METRICS)}, got {metric!r}")
        test = rule.get("test", "not_worse")
        if test not in TESTS:
            raise ValueError(f"{at}.test: expected one of {', '.join(TESTS)}, got {test!r}")
        margin = _number(rule.get("margin", 0.0), f"{at}.margin", 0.0, 1.0)
        out["rules"].append(
            {"metric": metric, "test": test, "margin": margin,
             "sets": _names(rule.get("sets"), f"{at}.sets")}
        )  # fmt: skip
    seg = config.get("segments", GATE_DEFAULTS["segments"])
    if seg is None:
        out["segments"] = None
    else:
        if not isinstance(seg, Mapping):
            raise ValueError(f"{where}.segments: expected a mapping or null, got {seg!r}")
        extra = set(seg) - _SEGMENT_KEYS
        if extra:
            raise ValueError(f"{where}.segments.{sorted(extra)[0]}: unknown option")
        d = GATE_DEFAULTS["segments"]
        metric = seg.get("metric", d["metric"])
        if metric not in ("accuracy", "recall", "fpr"):
            raise ValueError(
                f"{where}.segments.metric: expected accuracy, recall or fpr, got {metric!r}"
            )
        out["segments"] = {
            "tags": _names(seg.get("tags", d["tags"]), f"{where}.segments.tags"),
            "metric": metric,
            "max_drop": _number(
                seg.get("max_drop", d["max_drop"]), f"{where}.segments.max_drop", 0.0, 1.0
            ),
            "min_events": _int(
                seg.get("min_events", d["min_events"]), f"{where}.segments.min_events",
                1, 10_000_000,
            ),
        }  # fmt: skip
    return out


@dataclass(frozen=True, slots=True)
class EvalSet:
    """One labelled evaluation set scored by both models.

    Parameters
    ----------
    labels
        0/1 ground truth.
    champion, challenger
        Each model's positive-class score, one per event (the same events, in the same order).
    tags
        Segment dimensions: a mapping from tag name to one value per event.
    """

    labels: Any
    champion: Any
    challenger: Any
    tags: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """One gate rule applied to one evaluation set."""

    rule: str
    set: str
    passed: bool
    p_value: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            "rule": self.rule,
            "set": self.set,
            "passed": self.passed,
            "p_value": None if self.p_value is None else _plain(self.p_value),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class GateReport:
    """The gate's decision and everything behind it.

    ``passed`` is true when every rule passed on every set it applies to and no segment
    dropped by more than the plan allows. ``thresholds`` holds each model's operating point;
    the challenger's is the one re-fitted to the target TPR (on the first set) and is the
    threshold it should serve with.
    """

    passed: bool
    outcomes: tuple[RuleOutcome, ...]
    sets: Mapping[str, Any]
    thresholds: Mapping[str, float]
    config: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            "passed": self.passed,
            "outcomes": [o.to_dict() for o in self.outcomes],
            "sets": _plain(dict(self.sets)),
            "thresholds": _plain(dict(self.thresholds)),
            "config": _plain(dict(self.config)),
        }

    def summary(self) -> list[str]:
        """A few lines for a terminal: the verdict, each set's key figures, each failed rule."""
        lines = [f"gate: {'PASSED' if self.passed else 'FAILED'}"]
        for name, s in self.sets.items():
            f = s["tests"]["fpr_at_tpr"]
            a = s["tests"]["auc"]
            m = s["tests"]["accuracy"]
            lines.append(
                f"  {name} ({s['n']} events): accuracy at the operating points "
                f"{m['champion']:.3f} -> {m['challenger']:.3f} (McNemar p {m['p_value']:.2g}); "
                f"FPR at TPR {f['details']['target_tpr']:.2f} "
                f"{f['champion']:.3f} -> {f['challenger']:.3f} "
                f"[{-f['ci'][1]:+.3f}, {-f['ci'][0]:+.3f}]; "
                f"AUC {a['champion']:.3f} -> {a['challenger']:.3f} (DeLong p {a['p_value']:.2g})"
            )
        for o in self.outcomes:
            if not o.passed:
                lines.append(f"  failed: {o.rule} on {o.set}: {o.reason}")
        return lines


def _bootstrap_metrics(
    y: np.ndarray, flags: np.ndarray, n_bootstrap: int, coverage: float, rng: np.random.Generator
) -> dict[str, Any]:
    """Accuracy, precision, recall, FPR and F1 at a fixed threshold, with percentile intervals."""
    n = y.size
    out: dict[str, Any] = {}
    names = ("accuracy", "precision", "recall", "fpr", "f1")
    vals: dict[str, list[np.ndarray]] = {k: [] for k in names}
    block = max(1, min(n_bootstrap, 4_000_000 // max(n, 1)))
    for start in range(0, n_bootstrap, block):
        size = min(block, n_bootstrap - start)
        idx = rng.integers(0, n, (size, n))
        yy, ff = y[idx], flags[idx]
        tp = (yy & ff).sum(axis=1)
        fp = (~yy & ff).sum(axis=1)
        fn = (yy & ~ff).sum(axis=1)
        tn = n - tp - fp - fn
        with np.errstate(invalid="ignore", divide="ignore"):
            vals["accuracy"].append((tp + tn) / n)
            vals["precision"].append(tp / (tp + fp))
            vals["recall"].append(tp / (tp + fn))
            vals["fpr"].append(fp / (fp + tn))
            vals["f1"].append(2 * tp / (2 * tp + fp + fn))
    tp = int((y & flags).sum())
    fp = int((~y & flags).sum())
    fn = int((y & ~flags).sum())
    tn = n - tp - fp - fn
    point = {
        "accuracy": (tp + tn) / n,
        "precision": tp / (tp + fp) if tp + fp else math.nan,
        "recall": tp / (tp + fn) if tp + fn else math.nan,
        "fpr": fp / (fp + tn) if fp + tn else math.nan,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan,
    }
    tail = (1 - coverage) / 2
    for k, parts in vals.items():
        v = np.concatenate(parts)
        v = v[np.isfinite(v)]
        ci = [float(x) for x in np.quantile(v, [tail, 1 - tail])] if v.size else [None, None]
        out[k] = {"value": point[k], "ci": ci}
    return out


def _segment_metric(y: np.ndarray, flags: np.ndarray, metric: str) -> float:
    if metric == "accuracy":
        return float((y == flags).mean())
    if metric == "recall":
        return float(flags[y].mean()) if y.any() else math.nan
    return float(flags[~y].mean()) if (~y).any() else math.nan  # fpr


def _segments(
    y: np.ndarray,
    fa: np.ndarray,
    fb: np.ndarray,
    tags: Mapping[str, np.ndarray],
    seg: Mapping[str, Any],
) -> list[dict[str, Any]]:
    rows = []
    keys = seg["tags"] if seg["tags"] is not None else sorted(tags)
    for key in keys:
        if key not in tags:
            continue
        values = tags[key]
        uniq, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
        if uniq.size > 1000:  # a tag with an id per event is not a segment
            continue
        for j, value in enumerate(uniq):
            if counts[j] < seg["min_events"]:
                continue
            m = inverse == j
            ca = _segment_metric(y[m], fa[m], seg["metric"])
            cb = _segment_metric(y[m], fb[m], seg["metric"])
            if math.isnan(ca) or math.isnan(cb):
                continue
            drop = cb - ca if seg["metric"] == "fpr" else ca - cb
            rows.append(
                {"tag": key, "value": _plain(value), "n": int(counts[j]), "metric": seg["metric"],
                 "champion": ca, "challenger": cb, "drop": drop,
                 "passed": bool(drop <= seg["max_drop"] + 1e-12)}
            )  # fmt: skip
    return rows


def _decide(test: PairedTest, kind: str, margin: float, alpha: float) -> tuple[bool, float, str]:
    what = (
        f"{test.metric} improvement {test.improvement:+.4f} "
        f"[{test.ci_low:+.4f}, {test.ci_high:+.4f}]"
    )
    if kind == "superior":
        p = test.p_better
        ok = p < alpha
        return ok, p, f"{what}; p(not better) = {p:.3g} {'<' if ok else '>='} {alpha}"
    if kind == "non_inferior":
        p = test.p_noninferior(margin)
        ok = p < alpha
        return ok, p, (
            f"{what}; p(worse by more than {margin}) = {p:.3g} {'<' if ok else '>='} {alpha}"
        )
    p = test.p_worse_by(margin)
    ok = p >= alpha
    return ok, p, f"{what}; p(loses at most {margin}) = {p:.3g} {'>=' if ok else '<'} {alpha}"


def evaluate_gate(
    sets: Mapping[str, EvalSet],
    config: Mapping[str, Any] | None = None,
    *,
    champion_threshold: float | None = None,
    challenger_threshold: float | None = None,
    coverage: float = 0.95,
    seed: int | None = 0,
) -> GateReport:
    """Compare challenger and champion on every evaluation set and apply the gate's rules.

    Parameters
    ----------
    sets
        Named evaluation sets, e.g. ``{"validation": ..., "recent": ...}``. Thresholds are
        re-fitted on the first one.
    config
        The plan's ``gate`` section (see :func:`gate_config`).
    champion_threshold, challenger_threshold
        Each model's operating threshold; when ``None``, re-fitted to the target TPR on the
        first set.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 1500)
    >>> champion = y + rng.normal(0, 0.8, 1500)
    >>> better = y + rng.normal(0, 0.4, 1500)
    >>> shuffled = rng.permutation(y) + rng.normal(0, 0.4, 1500)
    >>> cfg = {"n_bootstrap": 200}
    >>> evaluate_gate({"recent": EvalSet(y, champion, better)}, cfg).passed
    True
    >>> evaluate_gate({"recent": EvalSet(y, champion, shuffled)}, cfg).passed
    False
    """
    cfg = gate_config(config)
    cov = _coverage(coverage)
    if not isinstance(sets, Mapping) or not sets:
        raise ValueError("sets: expected at least one named evaluation set")
    if len(sets) > 20:
        raise ValueError(f"sets: at most 20 evaluation sets, got {len(sets)}")
    data: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]] = {}
    for name, s in sets.items():
        y = _labels(s.labels)
        a = _scores(f"sets.{name}.champion", s.champion, y.size)
        b = _scores(f"sets.{name}.challenger", s.challenger, y.size)
        if y.size < cfg["min_events"]:
            raise ValueError(
                f"sets.{name}: {y.size} labelled events, the gate needs at least "
                f"{cfg['min_events']} (gate.min_events)"
            )
        if y.sum() < 2 or (~y).sum() < 2:
            raise ValueError(f"sets.{name}: need at least two events of each class")
        tags = {}
        for key, values in (s.tags or {}).items():
            arr = np.asarray(values)
            if arr.shape != (y.size,):
                raise ValueError(f"sets.{name}.tags.{key}: expected {y.size} values")
            tags[str(key)] = arr.astype(str)
        data[str(name)] = (y, a, b, tags)
    first = next(iter(data.values()))
    t = cfg["target_tpr"]
    thr_a = (
        float(champion_threshold) if champion_threshold is not None
        else threshold_at_tpr(first[0], first[1], t)
    )  # fmt: skip
    thr_b = (
        float(challenger_threshold) if challenger_threshold is not None
        else threshold_at_tpr(first[0], first[2], t)
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    report_sets: dict[str, Any] = {}
    outcomes: list[RuleOutcome] = []
    for name, (y, a, b, tags) in data.items():
        fa, fb = a >= thr_a, b >= thr_b
        tests = {
            "fpr_at_tpr": fpr_at_tpr(
                y, a, b, t, n_bootstrap=cfg["n_bootstrap"], coverage=cov,
                seed=int(rng.integers(2**31)),
            ),
            "auc": delong(y, a, b, coverage=cov),
            "accuracy": mcnemar(fa == y, fb == y, coverage=cov),
        }  # fmt: skip
        metrics = {
            "champion": _bootstrap_metrics(y, fa, cfg["n_bootstrap"], cov, rng),
            "challenger": _bootstrap_metrics(y, fb, cfg["n_bootstrap"], cov, rng),
        }
        metrics["champion"]["auc"] = {"value": tests["auc"].champion, "ci": None}
        metrics["challenger"]["auc"] = {"value": tests["auc"].challenger, "ci": None}
        segments = _segments(y, fa, fb, tags, cfg["segments"]) if cfg["segments"] else []
        report_sets[name] = {
            "n": int(y.size),
            "n_positive": int(y.sum()),
            "metrics": metrics,
            "tests": {k: v.to_dict() for k, v in tests.items()},
            "segments": segments,
        }
        for rule in cfg["rules"]:
            if rule["sets"] is not None and name not in rule["sets"]:
                continue
            test = tests[rule["metric"]]
            ok, p, reason = _decide(test, rule["test"], rule["margin"], cfg["alpha"])
            label = f"{rule['metric']} {rule['test']}" + (
                f" (margin {rule['margin']})" if rule["margin"] else ""
            )
            outcomes.append(RuleOutcome(label, name, ok, p, reason))
        for row in segments:
            if not row["passed"]:
                outcomes.append(
                    RuleOutcome(
                        f"segment {row['tag']}={row['value']}", name, False, None,
                        f"{row['metric']} drops by {row['drop']:.3f} > "
                        f"{cfg['segments']['max_drop']} ({row['n']} events)",
                    )
                )  # fmt: skip
    for rule in cfg["rules"]:
        for wanted in rule["sets"] or []:
            if wanted not in data:
                outcomes.append(
                    RuleOutcome(f"{rule['metric']} {rule['test']}", wanted, False, None,
                                f"evaluation set {wanted!r} is missing")
                )  # fmt: skip
    passed = all(o.passed for o in outcomes)
    return GateReport(
        passed=passed,
        outcomes=tuple(outcomes),
        sets=report_sets,
        thresholds={"champion": thr_a, "challenger": thr_b},
        config=cfg,
    )


__all__ = ["EvalSet", "GateReport", "RuleOutcome", "evaluate_gate", "gate_config", "roc_auc"]
