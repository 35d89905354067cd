"""The maintenance plan: one reviewed YAML per model, the monitors plus a retraining policy.

The plan is the monitors YAML (``window``, ``checks``, ``rules``, ``sinks``; see
:class:`~watchkeeper.checks.MonitorConfig`) with one more section, ``retraining``::

    retraining:
      enabled: true
      triggers:
        alerts: [operating_point]          # alert rules whose firing starts a retraining
        verdicts: [model_change]           # operating-point verdicts that do
        realised_performance: {metric: f1, below: 0.8}
        schedule: "0 3 * * 1"              # cron, UTC: Mondays 03:00
        new_labels: 5000                   # labelled events since the last retraining
      cooldown: 7d                         # no new retraining sooner after one started
      strategy: transfer                   # or awe: a weighted ensemble of recent versions
      ensemble: {max_members: 5, scorer: "package.module:score"}   # with strategy awe
      dataset: {...}                       # see watchkeeper.loop.dataset_config
      trainer: {command: [...], timeout: 1h}   # or {callable: "package.module:train"}
      gate: {...}                          # see watchkeeper.loop.gate_config
      shadow: {enabled: true, duration: 1d, max_events: 5000, alpha: 0.05}
      promotion: approval                  # or auto
      rollback: {watch: 3d, verdicts: [model_change], gate_breach: true}

A ``prior_shift`` verdict does not trigger retraining unless listed: the class mix changed and
the model is fine (its TPR and FPR hold), so the flag count moves as it should; retraining on the
new mix would only teach the model today's prevalence, which tomorrow may not keep.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from watchkeeper.checks import MonitorConfig
from watchkeeper.checks._config import parse_duration
from watchkeeper.loop._gate import gate_config

VERDICTS = ("model_change", "prior_shift")

RETRAINING_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "strategy": "transfer",
    "ensemble": None,
    "triggers": {
        "alerts": [],
        "verdicts": ["model_change"],
        "realised_performance": None,
        "schedule": None,
        "new_labels": None,
    },
    "cooldown": "1d",
    "dataset": {},
    "trainer": None,
    "gate": {},
    "shadow": {"enabled": True, "duration": "1d", "max_events": 5000, "alpha": 0.05},
    "promotion": "approval",
    "rollback": {"watch": "3d", "verdicts": ["model_change"], "gate_breach": True},
}
"""The retraining section of a plan that says nothing but ``retraining: {}``."""

_TRIGGER_KEYS = set(RETRAINING_DEFAULTS["triggers"])
_SHADOW_KEYS = set(RETRAINING_DEFAULTS["shadow"])
_ROLLBACK_KEYS = set(RETRAINING_DEFAULTS["rollback"])


# ---------------------------------------------------------------------------------------- cron


_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_CRON_NAMES = ("minute", "hour", "day of month", "month", "day of week")


def _cron_field(text: str, i: int) -> frozenset[int]:
    lo, hi = _CRON_RANGES[i]
    out: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"{_CRON_NAMES[i]}: bad step {step_text!r}")
            step = int(step_text)
        if part == "*":
            a, b = lo, hi
        elif "-" in part:
            a_text, b_text = part.split("-", 1)
            if not (a_text.isdigit() and b_text.isdigit()):
                raise ValueError(f"{_CRON_NAMES[i]}: bad range {part!r}")
            a, b = int(a_text), int(b_text)
        elif part.isdigit():
            a = b = int(part)
            if step > 1:
                b = hi
        else:
            raise ValueError(f"{_CRON_NAMES[i]}: cannot read {part!r}")
        if i == 4:  # 7 is Sunday too
            a, b = (0 if a == 7 else a), (6 if b == 7 and a != 7 else (0 if b == 7 else b))
        if not (lo <= a <= hi and lo <= b <= hi and a <= b):
            raise ValueError(f"{_CRON_NAMES[i]}: {part!r} outside {lo}-{hi}")
        out.update(range(a, b + 1, step))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Cron:
    """A five-field cron schedule (minute hour day-of-month month day-of-week), in UTC.

    Examples
    --------
    >>> c = Cron.parse("30 3 * * 1")           # Mondays 03:30
    >>> t = dt.datetime(2026, 12, 1, tzinfo=dt.UTC).timestamp()   # a Tuesday
    >>> dt.datetime.fromtimestamp(c.next_after(t), dt.UTC).isoformat()
    '2026-12-07T03:30:00+00:00'
    """

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        """Read ``"m h dom mon dow"`` (``*``, ``a-b``, ``*/n``, lists); ValueError otherwise."""
        if not isinstance(text, str):
            raise ValueError(f"expected a cron string, got {text!r}")
        parts = text.split()
        if len(parts) != 5:
            raise ValueError(f"expected 5 fields (minute hour day month weekday), got {text!r}")
        f = [_cron_field(p, i) for i, p in enumerate(parts)]
        return cls(f[0], f[1], f[2], f[3], f[4], parts[2] == "*", parts[4] == "*")

    def _day_ok(self, d: dt.date) -> bool:
        if d.month not in self.months:
            return False
        dom = d.day in self.days
        dow = (d.weekday() + 1) % 7 in self.weekdays  # cron: 0 = Sunday
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return dow
        if self.any_weekday:
            return dom
        return dom or dow  # cron's rule: either matches when both are restricted

    def next_after(self, ts: float) -> float:
        """The first scheduled time strictly after ``ts`` (seconds since the epoch)."""
        start = dt.datetime.fromtimestamp(ts, dt.UTC).replace(second=0, microsecond=0)
        start += dt.timedelta(minutes=1)
        day = start.date()
        for _ in range(366 * 5):  # every pattern recurs within five years (29 February)
            if self._day_ok(day):
                for h in sorted(self.hours):
                    for m in sorted(self.minutes):
                        when = dt.datetime(day.year, day.month, day.day, h, m, tzinfo=dt.UTC)
                        if when >= start:
                            return when.timestamp()
            day += dt.timedelta(days=1)
        raise ValueError("the schedule never fires")

    def due(self, last: float, now: float) -> bool:
        """Whether the schedule fired in ``(last, now]``."""
        return self.next_after(last) <= now



# ---------------------------------------------------------------------------------------- plan


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {value!r}")
    return value


def _unknown(value: Mapping[str, Any], known: set[str], where: str) -> None:
    extra = set(value) - known
    if extra:
        raise ValueError(
            f"{where}.{sorted(extra)[0]}: unknown option (known: {', '.join(sorted(known))})"
        )


def _duration(value: Any, where: str) -> str | float:
    parse_duration(value, where)
    return value if isinstance(value, str) else float(value)


def _names(value: Any, where: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{where}: expected a list of names, got {value!r}")
    if len(value) > 100:
        raise ValueError(f"{where}: at most 100 names")
    if allowed is not None:
        for v in value:
            if v not in allowed:
                raise ValueError(f"{where}: unknown {v!r} (known: {', '.join(allowed)})")
    return list(value)


def _positive_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: expected a positive integer, got {value!r}")
    return int(value)


def trainer_config(value: Any, where: str = "retraining.trainer") -> dict[str, Any] | None:
    """A trainer: ``{callable: "module:function"}`` or ``{command: [...]}``, with a timeout."""
    if value is None:
        return None
    v = _mapping(value, where)
    _unknown(v, {"callable", "command", "timeout", "env"}, where)
    has_callable, has_command = v.get("callable") is not None, v.get("command") is not None
    if has_callable == has_command:
        raise ValueError(f"{where}: give exactly one of callable and command")
    out: dict[str, Any] = {"timeout": _duration(v.get("timeout", "1h"), f"{where}.timeout")}
    if has_callable:
        target = v["callable"]
        if not isinstance(target, str) or target.count(":") != 1 or target.startswith(":"):
            raise ValueError(
                f"{where}.callable: expected 'package.module:function', got {target!r}"
            )
        out["callable"] = target
    else:
        cmd = v["command"]
        if isinstance(cmd, str):
            import shlex

            cmd = shlex.split(cmd)
        if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd):
            raise ValueError(f"{where}.command: expected a list of strings, got {v['command']!r}")
        if len(cmd) > 200:
            raise ValueError(f"{where}.command: at most 200 arguments")
        out["command"] = list(cmd)
    env = _mapping(v.get("env"), f"{where}.env")
    if not all(isinstance(k, str) and isinstance(x, str) for k, x in env.items()):
        raise ValueError(f"{where}.env: expected string names and values")
    out["env"] = dict(env)
    return out


def retraining_config(value: Any, where: str = "retraining") -> dict[str, Any]:
    """The retraining section with defaults filled in and every field checked.

    Examples
    --------
    >>> retraining_config({})["triggers"]["verdicts"]
    ['model_change']
    >>> retraining_config({"promotion": "yes"})
    Traceback (most recent call last):
    ...
    ValueError: retraining.promotion: expected 'auto' or 'approval', got 'yes'
    """
    from watchkeeper.loop._dataset import dataset_config
    from watchkeeper.loop._ensemble import STRATEGIES, ensemble_config

    v = _mapping(value, where)
    _unknown(v, set(RETRAINING_DEFAULTS), where)
    d = RETRAINING_DEFAULTS
    out: dict[str, Any] = {}
    enabled = v.get("enabled", d["enabled"])
    if not isinstance(enabled, bool):
        raise ValueError(f"{where}.enabled: expected true or false, got {enabled!r}")
    out["enabled"] = enabled
    strategy = v.get("strategy", d["strategy"])
    if strategy not in STRATEGIES:
        raise ValueError(
            f"{where}.strategy: expected one of {', '.join(STRATEGIES)}, got {strategy!r}"
        )
    out["strategy"] = strategy
    out["ensemble"] = ensemble_config(v.get("ensemble"), strategy, f"{where}.ensemble")
    t = _mapping(v.get("triggers", d["triggers"]), f"{where}.triggers")
    _unknown(t, _TRIGGER_KEYS, f"{where}.triggers")
    dt_ = d["triggers"]
    trig: dict[str, Any] = {
        "alerts": _names(t.get("alerts", dt_["alerts"]), f"{where}.triggers.alerts"),
        "verdicts": _names(
            t.get("verdicts", dt_["verdicts"]), f"{where}.triggers.verdicts", VERDICTS
        ),
        "new_labels": _positive_int(t.get("new_labels"), f"{where}.triggers.new_labels"),
        "schedule": None,
        "realised_performance": None,
    }
    if t.get("schedule") is not None:
        try:
            Cron.parse(t["schedule"])
        except ValueError as exc:
            raise ValueError(f"{where}.triggers.schedule: {exc}") from None
        trig["schedule"] = t["schedule"]
    rp = t.get("realised_performance")
    if rp is not None:
        at = f"{where}.triggers.realised_performance"
        rp = _mapping(rp, at)
        _unknown(rp, {"metric", "below"}, at)
        metric = rp.get("metric", "f1")
        if metric not in ("f1", "accuracy", "precision", "recall", "auc"):
            raise ValueError(f"{at}.metric: expected f1, accuracy, precision, recall or auc")
        below = rp.get("below")
        if isinstance(below, bool) or not isinstance(below, int | float) or not 0 < below <= 1:
            raise ValueError(f"{at}.below: expected a number in (0, 1], got {below!r}")
        trig["realised_performance"] = {"metric": metric, "below": float(below)}
    out["triggers"] = trig
    out["cooldown"] = _duration(v.get("cooldown", d["cooldown"]), f"{where}.cooldown")
    out["dataset"] = dataset_config(v.get("dataset", d["dataset"]), f"{where}.dataset")
    out["trainer"] = trainer_config(v.get("trainer", d["trainer"]), f"{where}.trainer")
    out["gate"] = gate_config(v.get("gate", d["gate"]), f"{where}.gate")
    s = _mapping(v.get("shadow", d["shadow"]), f"{where}.shadow")
    _unknown(s, _SHADOW_KEYS, f"{where}.shadow")
    ds = d["shadow"]
    s_enabled = s.get("enabled", ds["enabled"])
    if not isinstance(s_enabled, bool):
        raise ValueError(f"{where}.shadow.enabled: expected true or false, got {s_enabled!r}")
    alpha = s.get("alpha", ds["alpha"])
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 0.5:
        raise ValueError(f"{where}.shadow.alpha: expected a number in (0, 0.5), got {alpha!r}")
    out["shadow"] = {
        "enabled": s_enabled,
        "duration": _duration(s.get("duration", ds["duration"]), f"{where}.shadow.duration"),
        "max_events": _positive_int(
            s.get("max_events", ds["max_events"]), f"{where}.shadow.max_events"
        ),
        "alpha": float(alpha),
    }
    promotion = v.get("promotion", d["promotion"])
    if promotion not in ("auto", "approval"):
        raise ValueError(f"{where}.promotion: expected 'auto' or 'approval', got {promotion!r}")
    out["promotion"] = promotion
    r = _mapping(v.get("rollback", d["rollback"]), f"{where}.rollback")
    _unknown(r, _ROLLBACK_KEYS, f"{where}.rollback")
    dr = d["rollback"]
    breach = r.get("gate_breach", dr["gate_breach"])
    if not isinstance(breach, bool):
        raise ValueError(f"{where}.rollback.gate_breach: expected true or false, got {breach!r}")
    out["rollback"] = {
        "watch": _duration(r.get("watch", dr["watch"]), f"{where}.rollback.watch"),
        "verdicts": _names(
            r.get("verdicts", dr["verdicts"]), f"{where}.rollback.verdicts", VERDICTS
        ),
        "gate_breach": breach,
    }
    return out


@dataclass
class MaintenancePlan:
    """A model's monitors and its retraining policy, as one document.

    Parameters
    ----------
    monitors
        The monitor configuration (the plan's ``window``, ``checks``, ``rules``, ``sinks``).
    retraining
        The ``retraining`` section (see :func:`retraining_config`); ``None`` for a plan that
        only monitors.

    Examples
    --------
    >>> plan = MaintenancePlan.from_yaml("window: {kind: time, size: 1d}\\nretraining: {}")
    >>> plan.validate().retraining["promotion"]
    'approval'
    >>> MaintenancePlan.from_yaml("retraining: {cooldown: soon}").validate()
    Traceback (most recent call last):
    ...
    ValueError: retraining.cooldown: cannot read 'soon' as a duration (e.g. '1h', '15m')
    """

    monitors: MonitorConfig = field(default_factory=MonitorConfig)
    retraining: dict[str, Any] | None = None

    def validate(self, policy: Any = None) -> MaintenancePlan:
        """Check every field (monitors, rules and sinks, retraining); errors name the field.

        ``policy`` is the operator's :class:`~watchkeeper.alerts.SinkPolicy` the sinks must
        respect (``None``: the environment's).
        """
        from watchkeeper.alerts import validate_alerting

        self.monitors.validate()
        validate_alerting(self.monitors.rules, self.monitors.sinks, policy)
        if self.retraining is not None:
            self.retraining = retraining_config(self.retraining)
            names = {str(r.get("name")) for r in self.monitors.rules}
            for name in self.retraining["triggers"]["alerts"]:
                if self.monitors.rules and name not in names:
                    raise ValueError(
                        f"retraining.triggers.alerts: no alert rule named {name!r} in rules"
                    )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the monitors' keys plus ``retraining``."""
        out = self.monitors.to_dict()
        out["retraining"] = copy.deepcopy(self.retraining)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MaintenancePlan:
        """Build from plain data; unknown top-level keys are an error naming them."""
        if not isinstance(d, Mapping):
            raise ValueError("plan: expected a mapping")
        rest = {k: v for k, v in d.items() if k != "retraining"}
        retraining = d.get("retraining")
        if "retraining" in d and retraining is None:
            retraining = {}
        section = None if retraining is None else dict(_mapping(retraining, "retraining"))
        return cls(MonitorConfig.from_dict(rest), section)

    @classmethod
    def from_yaml(cls, text: str) -> MaintenancePlan:
        """Parse a YAML (or JSON) document."""
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"not valid YAML: {exc}") from None
        if not isinstance(data, Mapping):
            raise ValueError("plan: the YAML document must be a mapping")
        return cls.from_dict(data)

    def to_yaml(self) -> str:
        """YAML text that :meth:`from_yaml` reads back."""
        import yaml

        return str(yaml.safe_dump(self.to_dict(), sort_keys=False))


def _plan_key(model: str) -> str:
    return f"plan.retraining:{model}"


def get_plan(store: Any, project: str, model: str) -> tuple[str, MaintenancePlan] | None:
    """The model's plan and where it came from: ``"stored"``, or ``"default"`` (the stored or
    default monitors with the default retraining section); ``None`` without monitors or a
    reference to derive them from."""
    from watchkeeper.runner import load_context

    stored_monitors = store.get_monitor_config(project, model)
    retraining = store.get_state(project, _plan_key(model))
    if stored_monitors is not None:
        monitors = MonitorConfig.from_dict(stored_monitors)
    else:
        ctx = load_context(store, project, model)
        if ctx is None:
            return None
        monitors = ctx.config
    source = "stored" if retraining is not None else "default"
    section = retraining["retraining"] if retraining is not None else {}
    return source, MaintenancePlan(monitors, retraining_config(section))


def put_plan(
    store: Any, project: str, model: str, plan: MaintenancePlan, policy: Any = None
) -> None:
    """Validate the whole plan, then store it; on any error nothing is stored."""
    plan.validate(policy)
    retraining = retraining_config(plan.retraining or {})
    store.put_state(project, _plan_key(model), {"retraining": retraining})
    store.put_monitor_config(project, model, plan.monitors.to_dict())
