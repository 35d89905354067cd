"""Alert rules: persistence, transients, grouping, hysteresis, cooldown, sequential false alarms."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from watchkeeper.alerts import AlertEngine, AlertRule, SequentialTest, cusum_bound


def _f(check: str, subject: str, drift: bool, **kw: Any) -> dict[str, Any]:
    return {"check": check, "subject": subject, "drift": drift, **kw}


def _run(engine: AlertEngine, windows: list[list[dict[str, Any]]]) -> list[Any]:
    state, out = None, []
    for t, findings in enumerate(windows):
        ev = engine.evaluate(findings, now=float(t * 3600), model="m", state=state)
        state = ev.state
        out.append(ev)
    return out


def test_twenty_drifted_features_make_one_alert() -> None:
    engine = AlertEngine([{"name": "drift", "checks": ["feature_drift"], "k": 1, "n": 1}])
    window = [_f("feature_drift", f"x{i}", True) for i in range(20)]
    window += [_f("feature_drift", "ok", False), _f("data_quality.range", "x0", True)]
    (ev,) = _run(engine, [window])
    assert len(ev.events) == 1 and ev.events[0].kind == "firing"
    alert = ev.events[0].alert
    assert alert["subjects"] == sorted(f"x{i}" for i in range(20))
    assert alert["labels"] == {"project": "default", "model": "m", "rule": "drift"}
    per_feature = AlertEngine(
        [{"name": "d", "checks": ["feature_drift"], "group_by": ["model", "subject"]}]
    )
    (ev,) = _run(per_feature, [window])
    assert len(ev.events) == 20


def test_the_operating_point_verdict_reaches_the_alert() -> None:
    engine = AlertEngine([{"name": "flags", "checks": ["operating_point"], "k": 1, "n": 1}])
    broken = _f("operating_point", "flags", True, details={"verdict": "model_change"})
    (ev,) = _run(engine, [[broken]])
    alert = ev.events[0].alert
    assert alert["summary"].endswith("(flags); verdict: model_change")
    assert alert["findings"][0]["verdict"] == "model_change"
    (plain,) = _run(engine, [[_f("operating_point", "flags", True)]])
    assert "verdict" not in plain.events[0].alert["summary"]


def test_one_extreme_window_is_transient_lasting_change_fires() -> None:
    engine = AlertEngine([{"name": "drift", "checks": ["feature_drift"], "k": 3, "n": 4}])
    calm = [_f("feature_drift", "x", False)]
    hot = [_f("feature_drift", "x", True)]
    evs = _run(engine, [calm, hot, calm, calm, calm, calm])
    assert not any(e.events for e in evs)
    assert [len(e.transients) for e in evs] == [0, 1, 0, 0, 0, 0]
    evs = _run(engine, [calm, hot, hot, hot, hot, calm, calm])
    kinds = [[x.kind for x in e.events] for e in evs]
    assert kinds[:4] == [[], [], [], ["firing"]]
    assert ["resolved"] in kinds


def test_hysteresis_keeps_firing_until_clear_threshold() -> None:
    rule = {
        "name": "psi",
        "checks": ["feature_drift"],
        "field": "statistic",
        "threshold": 0.2,
        "clear_threshold": 0.1,
    }
    engine = AlertEngine([rule])
    values = [0.05, 0.25, 0.15, 0.19, 0.05, 0.15]
    evs = _run(engine, [[_f("feature_drift", "x", False, statistic=v)] for v in values])
    statuses = [e.alerts[0]["status"] if e.alerts else None for e in evs]
    assert statuses == [None, "firing", "firing", "firing", "resolved", None]


def test_cooldown_suppresses_refiring() -> None:
    rule = {"name": "d", "checks": ["*"], "cooldown": "3h"}
    engine = AlertEngine([rule])
    on, off = [_f("c", "x", True)], [_f("c", "x", False)]
    evs = _run(engine, [on, off, on, off, off, off, on])
    kinds = [[x.kind for x in e.events] for e in evs]
    # t=0 fires, t=1 resolves, t=2 (2h later) re-fires silently and resolves silently,
    # t=6 (6h after the last notification) notifies again.
    assert kinds == [["firing"], ["resolved"], [], [], [], [], ["firing"]]
    assert evs[2].alerts[0]["suppressed"] is True


def test_metric_rule_below_threshold() -> None:
    engine = AlertEngine(
        [
            {
                "name": "auc",
                "metrics": ["auc*"],
                "field": "value",
                "direction": "below",
                "threshold": 0.8,
            }
        ]
    )
    ev = engine.evaluate([], now=0.0, model="m", metrics={"auc": 0.7, "other": 0.1})
    assert ev.events[0].alert["subjects"] == ["auc"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"name": "x", "field": "statistic"}, "threshold"),
        ({"name": "x", "severity": "loud"}, "severity"),
        ({"name": "x", "group_by": ["colour"]}, "group_by"),
        ({"name": "x", "colour": 1}, "unknown rule key"),
        ({"name": "x", "cooldown": "soon"}, "cooldown"),
        ({"name": "x", "sequential": {"method": "magic"}}, "sequential.method"),
        ({"name": "x", "field": "statistic", "threshold": 1, "clear_threshold": 2}, "clear"),
        ({"checks": ["x"]}, "name"),
    ],
)
def test_bad_rules_name_the_field(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AlertEngine([rule]).evaluate([], now=0.0, model="m")


def test_rule_round_trip() -> None:
    rule = AlertRule("x", checks=["a"], sequential={"method": "spending"}).validate()
    assert AlertRule.from_dict(rule.to_dict()).to_dict() == rule.to_dict()


def _null_alarm_rate(test: SequentialTest, runs: int, length: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    alarms = 0
    for _ in range(runs):
        state = None
        for p in rng.uniform(size=length):
            alarm, state = test.update(float(p), state)
            if alarm:
                alarms += 1
                break
    return alarms / runs


@pytest.mark.slow
@pytest.mark.parametrize("method", ["cusum", "spending"])
def test_sequential_false_alarm_rate_over_a_run(method: str) -> None:
    """Over runs of 100 null windows, P(any alarm) stays at the configured 5%."""
    test = SequentialTest(method, false_alarm_rate=0.05, run_length=100)
    rate = _null_alarm_rate(test, runs=1500, length=100, seed=7)
    se = (0.05 * 0.95 / 1500) ** 0.5
    assert rate < 0.05 + 3 * se
    if method == "cusum":
        # Calibrated, not merely conservative.
        assert rate > 0.05 - 3 * se
    # Per-window testing at the same level would alarm in almost every run.
    rng = np.random.default_rng(8)
    naive = (rng.uniform(size=(1500, 100)) < 0.05).any(axis=1).mean()
    assert naive > 0.9


@pytest.mark.slow
def test_sequential_rule_detects_a_lasting_shift_and_stays_quiet_without() -> None:
    """Through the engine: no alert over long calm streams, an alert soon after a change."""
    from scipy import stats

    rule = {
        "name": "seq",
        "checks": ["feature_drift"],
        "sequential": {"method": "cusum", "false_alarm_rate": 0.05, "run_length": 60},
    }
    engine = AlertEngine([rule])
    rng = np.random.default_rng(11)
    false_alarms, delays = 0, []
    runs = 200
    for r in range(runs):
        state = None
        change = 30 if r % 2 else None
        alarm_at = None
        for t in range(60):
            shift = 0.12 if change is not None and t >= change else 0.0
            p = stats.ks_2samp(rng.normal(size=300), rng.normal(shift, 1, 300)).pvalue
            ev = engine.evaluate(
                [_f("feature_drift", "x", p < 0.05, p_value=float(p))],
                now=float(t),
                model="m",
                state=state,
            )
            state = ev.state
            if any(e.kind == "firing" for e in ev.events):
                alarm_at = t
                break
        if change is None:
            false_alarms += alarm_at is not None
        else:
            if alarm_at is not None and alarm_at < change:
                false_alarms += 1
            delays.append(60 if alarm_at is None else alarm_at - change)
    assert false_alarms / runs < 0.05 + 3 * (0.05 * 0.95 / runs) ** 0.5
    assert np.median(delays) <= 10


def test_cusum_bound_is_deterministic_and_grows_with_run_length() -> None:
    assert cusum_bound(0.05, 50) == cusum_bound(0.05, 50)
    assert cusum_bound(0.05, 200) > cusum_bound(0.05, 50)
    with pytest.raises(ValueError, match="false_alarm_rate"):
        cusum_bound(1.5, 10)
