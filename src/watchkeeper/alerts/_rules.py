"""Alert rules over findings and metric values, and the engine that evaluates them per window.

A rule decides, for every subject it matches (a feature, ``score``, a metric), whether the
window *breaches*: the finding's ``drift`` flag, or its statistic, p-value or a metric value
against a threshold in a direction, or a sequential test over the run of p-values. Then:

- **persistence**: a subject is *active* when at least ``k`` of its last ``n`` windows breached.
  A breach that is not (yet) persistent is a *transient*: reported, never alerted.
- **hysteresis**: once active, a value-threshold rule keeps breaching until the value crosses
  ``clear_threshold`` (default: ``threshold``), so a value hovering at the bound does not flap.
- **grouping**: subjects are grouped by ``group_by`` (default one alert per model and rule), so
  twenty drifted features of one model make one alert listing the twenty.
- **resolution**: a firing group resolves after ``resolve_after`` windows with no active subject.
- **cooldown**: a group that resolved does not notify again for ``cooldown`` after its last
  notification; it is still recorded as firing.

All state is a plain dict (``Store.put_state``), so evaluation survives restarts.
"""

from __future__ import annotations

import dataclasses as dc
import fnmatch
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from watchkeeper.alerts._sequential import SequentialTest
from watchkeeper.checks import SEVERITIES, parse_duration

FIELDS = ("drift", "statistic", "p_value", "value")
DIRECTIONS = ("above", "below")
GROUP_KEYS = ("project", "model", "rule", "check", "subject")


@dataclass
class AlertRule:
    """A condition on findings (or metric values) with persistence, hysteresis and grouping.

    Parameters
    ----------
    name
        Unique within a model's configuration; the alert's name.
    checks
        Shell-style patterns over ``Finding.check`` (``"data_quality.*"``).
    subjects
        Patterns over ``Finding.subject``.
    metrics
        Patterns over metric names; when given, the rule reads metric values, not findings.
    field
        ``"drift"`` (the finding's verdict), ``"statistic"``, ``"p_value"``, or ``"value"``
        (metric rules).
    direction, threshold, clear_threshold
        Breach when the field is above (below) ``threshold``; an active subject clears only
        past ``clear_threshold``.
    k, n
        Persistence: active when ``k`` of the last ``n`` windows breached.
    severity
        ``"info"``, ``"warning"`` or ``"critical"``.
    cooldown
        Least time between two notifications of one group (seconds or ``"1h"``).
    resolve_after
        Windows without an active subject before a firing group resolves.
    group_by
        Which of ``project, model, rule, check, subject`` make one alert.
    sequential
        ``{"method": "cusum"|"spending", "false_alarm_rate", "run_length"}``: breach when the
        sequential test over the subject's p-values alarms, instead of the per-window verdict.
    sinks
        Names of the sinks to notify; ``None`` for all.

    Examples
    --------
    >>> AlertRule("drift", checks=["feature_drift"], k=2, n=3).validate().name
    'drift'
    >>> AlertRule("x", k=4, n=3).validate()
    Traceback (most recent call last):
    ...
    ValueError: k must be between 1 and n (3), got 4
    """

    name: str
    checks: list[str] = dc.field(default_factory=lambda: ["*"])
    subjects: list[str] = dc.field(default_factory=lambda: ["*"])
    metrics: list[str] | None = None
    field: str = "drift"
    direction: str = "above"
    threshold: float | None = None
    clear_threshold: float | None = None
    k: int = 1
    n: int = 1
    severity: str = "warning"
    cooldown: float | str = 0.0
    resolve_after: int = 1
    group_by: list[str] = dc.field(default_factory=lambda: ["project", "model", "rule"])
    sequential: dict[str, Any] | None = None
    sinks: list[str] | None = None

    def validate(self) -> AlertRule:
        """Check every field; raise ``ValueError`` naming the first bad one."""
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("name must be a non-empty string")
        if self.field not in FIELDS:
            raise ValueError(f"field must be one of {FIELDS}, got {self.field!r}")
        if self.metrics is not None and self.field != "value":
            raise ValueError("field must be 'value' for a rule over metrics")
        if self.metrics is None and self.field == "value":
            raise ValueError("metrics: a rule with field 'value' needs metric patterns")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        needs_bound = self.field in ("statistic", "p_value", "value") and self.sequential is None
        if needs_bound and (self.threshold is None or not math.isfinite(float(self.threshold))):
            raise ValueError(f"threshold: a rule on {self.field!r} needs a finite threshold")
        if self.clear_threshold is not None and self.threshold is not None:
            ok = (
                self.clear_threshold <= self.threshold
                if self.direction == "above"
                else self.clear_threshold >= self.threshold
            )
            if not ok:
                raise ValueError(
                    "clear_threshold must be on the safe side of threshold "
                    f"({self.clear_threshold} vs {self.threshold}, direction {self.direction})"
                )
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n must be an integer >= 1, got {self.n!r}")
        if not isinstance(self.k, int) or not 1 <= self.k <= self.n:
            raise ValueError(f"k must be between 1 and n ({self.n}), got {self.k}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        if self.cooldown not in (0, 0.0):
            parse_duration(self.cooldown, "cooldown")
        if not isinstance(self.resolve_after, int) or self.resolve_after < 1:
            raise ValueError(f"resolve_after must be an integer >= 1, got {self.resolve_after}")
        bad = [g for g in self.group_by if g not in GROUP_KEYS]
        if bad:
            raise ValueError(f"group_by: unknown key(s) {bad}; known: {GROUP_KEYS}")
        if self.sequential is not None:
            SequentialTest.from_dict(self.sequential).validate()
        return self

    @property
    def cooldown_seconds(self) -> float:
        """The cooldown in seconds."""
        if self.cooldown in (0, 0.0, None):
            return 0.0
        return parse_duration(self.cooldown, "cooldown")

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as in ``MonitorConfig.rules``."""
        return {
            "name": self.name,
            "checks": list(self.checks),
            "subjects": list(self.subjects),
            "metrics": None if self.metrics is None else list(self.metrics),
            "field": self.field,
            "direction": self.direction,
            "threshold": self.threshold,
            "clear_threshold": self.clear_threshold,
            "k": self.k,
            "n": self.n,
            "severity": self.severity,
            "cooldown": self.cooldown,
            "resolve_after": self.resolve_after,
            "group_by": list(self.group_by),
            "sequential": None if self.sequential is None else dict(self.sequential),
            "sinks": None if self.sinks is None else list(self.sinks),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AlertRule:
        """Build from plain data; an unknown key is an error naming it."""
        known = set(cls.__dataclass_fields__)
        extra = set(d) - known
        if extra:
            raise ValueError(f"unknown rule key(s): {', '.join(sorted(extra))}")
        if "name" not in d:
            raise ValueError("name: every rule needs a name")
        kw = dict(d)
        for key in ("checks", "subjects", "metrics", "group_by", "sinks"):
            if isinstance(kw.get(key), str):
                kw[key] = [kw[key]]
        return cls(**{k: v for k, v in kw.items() if v is not None or k in ("metrics",)})


@dataclass(frozen=True)
class AlertEvent:
    """A notification to send: an alert that started firing, resolved, or is still firing.

    ``kind`` is ``"firing"`` (new, or again after resolving), ``"resolved"``, or ``"refresh"``
    (still firing; only sinks that need a heartbeat, such as Alertmanager, act on it).
    """

    kind: str
    alert: dict[str, Any]


@dataclass
class Evaluation:
    """What one window's evaluation produced."""

    events: list[AlertEvent] = dc.field(default_factory=list)
    transients: list[dict[str, Any]] = dc.field(default_factory=list)
    alerts: list[dict[str, Any]] = dc.field(default_factory=list)
    state: dict[str, Any] = dc.field(default_factory=dict)

    @property
    def firing(self) -> list[dict[str, Any]]:
        """Alerts firing after this window."""
        return [a for a in self.alerts if a["status"] == "firing"]


def _match(patterns: Iterable[str], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _observations(
    rule: AlertRule, findings: Iterable[Mapping[str, Any]], metrics: Mapping[str, float]
) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(check, subject, record) of everything the rule reads in this window."""
    if rule.metrics is not None:
        return [
            ("metric", name, {"value": value, "check": "metric", "subject": name})
            for name, value in sorted(metrics.items())
            if _match(rule.metrics, name)
        ]
    return [
        (str(f["check"]), str(f["subject"]), f)
        for f in findings
        if _match(rule.checks, str(f["check"])) and _match(rule.subjects, str(f["subject"]))
    ]


def _breach(rule: AlertRule, record: Mapping[str, Any], active: bool) -> bool | None:
    if rule.field == "drift":
        return bool(record.get("drift"))
    value = record.get(rule.field)
    if value is None or not math.isfinite(float(value)):
        return None
    bound = rule.threshold
    if active and rule.clear_threshold is not None:
        bound = rule.clear_threshold
    assert bound is not None
    return float(value) > bound if rule.direction == "above" else float(value) < bound


def _group_key(rule: AlertRule, labels: Mapping[str, str]) -> str:
    return "|".join(f"{g}={labels[g]}" for g in rule.group_by)


def _fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class AlertEngine:
    """Evaluate rules window after window.

    Parameters
    ----------
    rules
        :class:`AlertRule` objects or their dicts.

    Examples
    --------
    >>> engine = AlertEngine([{"name": "drift", "checks": ["feature_drift"], "k": 2, "n": 3}])
    >>> f = lambda drift: [{"check": "feature_drift", "subject": "age", "drift": drift}]
    >>> state, kinds = None, []
    >>> for t, drift in enumerate([True, False, False, True, True, False, False]):
    ...     ev = engine.evaluate(f(drift), now=t, model="m", state=state)
    ...     state = ev.state
    ...     kinds.append([e.kind for e in ev.events] or len(ev.transients))
    >>> kinds
    [1, 0, 0, 1, ['firing'], ['refresh'], ['resolved']]
    """

    def __init__(self, rules: Iterable[AlertRule | Mapping[str, Any]]) -> None:
        self.rules = rules

    def _rules(self) -> list[AlertRule]:
        out = []
        for i, r in enumerate(self.rules):
            try:
                rule = r if isinstance(r, AlertRule) else AlertRule.from_dict(r)
                out.append(rule.validate())
            except (ValueError, TypeError) as exc:
                raise ValueError(f"rules[{i}]: {exc}") from exc
        names = [r.name for r in out]
        if len(set(names)) != len(names):
            raise ValueError(f"rules: names must be unique, got {names}")
        return out

    def evaluate(
        self,
        findings: Iterable[Mapping[str, Any]],
        *,
        now: float,
        model: str,
        project: str = "default",
        metrics: Mapping[str, float] | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> Evaluation:
        """Judge one window's findings and metric values; returns events and the new state."""
        findings = list(findings)
        metrics = dict(metrics or {})
        old = dict(state or {})
        ev = Evaluation(state={})
        for rule in self._rules():
            rstate = dict(old.get(rule.name) or {})
            subjects: dict[str, Any] = dict(rstate.get("subjects") or {})
            groups: dict[str, Any] = dict(rstate.get("groups") or {})
            seq = None if rule.sequential is None else SequentialTest.from_dict(rule.sequential)
            active_by_group: dict[str, list[str]] = {}
            labels_by_group: dict[str, dict[str, str]] = {}
            records_by_group: dict[str, list[dict[str, Any]]] = {}
            seen = set()
            for check, subject, record in _observations(rule, findings, metrics):
                skey = f"{check}|{subject}"
                seen.add(skey)
                sst = dict(subjects.get(skey) or {"history": [], "active": False})
                if seq is not None:
                    p = record.get("p_value")
                    breach: bool | None
                    breach, sst["seq"] = seq.update(None if p is None else float(p), sst.get("seq"))
                    if p is None:
                        breach = None
                else:
                    breach = _breach(rule, record, bool(sst["active"]))
                if breach is None:
                    subjects[skey] = sst
                    continue
                history = [*sst["history"], bool(breach)][-rule.n :]
                active = sum(history) >= rule.k
                sst.update(history=history, active=active)
                subjects[skey] = sst
                labels = {
                    "project": project,
                    "model": model,
                    "rule": rule.name,
                    "check": check,
                    "subject": subject,
                }
                gkey = _group_key(rule, labels)
                labels_by_group.setdefault(gkey, {g: labels[g] for g in rule.group_by})
                active_by_group.setdefault(gkey, [])
                if active:
                    active_by_group[gkey].append(subject)
                    records_by_group.setdefault(gkey, []).append(_brief(record))
                elif breach:
                    ev.transients.append(
                        {
                            "rule": rule.name,
                            "model": model,
                            "check": check,
                            "subject": subject,
                            "record": _brief(record),
                            "breaches": sum(history),
                            "k": rule.k,
                            "n": rule.n,
                        }
                    )
            # Groups seen earlier but with no observation now count as quiet windows.
            for gkey in set(groups) | set(active_by_group):
                g = dict(groups.get(gkey) or {"status": "inactive"})
                active_subjects = sorted(set(active_by_group.get(gkey, [])))
                if gkey in labels_by_group:
                    g["labels"] = labels_by_group[gkey]
                alert = self._advance(rule, gkey, g, active_subjects, now, model, project)
                if alert is not None:
                    alert["findings"] = records_by_group.get(gkey, [])[:50]
                    verdicts = sorted({f["verdict"] for f in alert["findings"] if "verdict" in f})
                    if verdicts and alert["status"] == "firing":
                        alert["summary"] += f"; verdict: {', '.join(verdicts)}"
                    ev.alerts.append(alert)
                    kind = g.pop("_event", None)
                    if kind is not None:
                        ev.events.append(AlertEvent(kind, alert))
                groups[gkey] = g
            ev.state[rule.name] = {
                "subjects": {k: v for k, v in subjects.items() if k in seen or v.get("active")},
                "groups": {k: v for k, v in groups.items() if v.get("status") != "inactive"},
            }
        return ev

    def _advance(
        self,
        rule: AlertRule,
        gkey: str,
        g: dict[str, Any],
        active: list[str],
        now: float,
        model: str,
        project: str,
    ) -> dict[str, Any] | None:
        status = g.get("status", "inactive")
        if active:
            g["quiet"] = 0
            g["subjects"] = active
            if status != "firing":
                g["status"] = "firing"
                g["started_at"] = now
                g.pop("resolved_at", None)
                last = g.get("last_notified")
                if last is None or now - float(last) >= rule.cooldown_seconds:
                    g["_event"] = "firing"
                    g["last_notified"] = now
                    g["suppressed"] = False
                else:
                    g["suppressed"] = True
            else:
                g["_event"] = "refresh"
        elif status == "firing":
            g["quiet"] = int(g.get("quiet", 0)) + 1
            if g["quiet"] >= rule.resolve_after:
                g["status"] = "resolved"
                g["resolved_at"] = now
                if not g.get("suppressed"):
                    g["_event"] = "resolved"
            else:
                g["_event"] = "refresh"
        else:
            # A resolved alert is reported once; its group stays in the state for the cooldown.
            return None
        labels = dict(g.get("labels") or {"project": project, "model": model, "rule": rule.name})
        subjects = list(g.get("subjects") or [])
        summary = (
            f"{rule.name} on {model}: {len(subjects)} subject(s) "
            f"{'drifted' if g['status'] == 'firing' else 'back to normal'}"
            + (f" ({', '.join(subjects[:10])}{', ...' if len(subjects) > 10 else ''})")
        )
        return {
            "key": gkey,
            "fingerprint": _fingerprint(gkey),
            "rule": rule.name,
            "project": project,
            "model": model,
            "status": g["status"],
            "severity": rule.severity,
            "started_at": g.get("started_at"),
            "resolved_at": g.get("resolved_at"),
            "updated_at": now,
            "subjects": subjects,
            "labels": labels,
            "summary": summary,
            "sinks": rule.sinks,
            "suppressed": bool(g.get("suppressed", False)),
        }


def _brief(record: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("check", "subject", "method", "statistic", "p_value", "drift", "value", "threshold")
    out = {k: record[k] for k in keys if k in record}
    details = record.get("details")
    if isinstance(details, Mapping) and isinstance(details.get("verdict"), str):
        # the operating point's diagnosis: what the person paged needs to know first
        out["verdict"] = details["verdict"]
    return out
