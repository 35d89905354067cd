"""Prometheus alerting rules and their ``promtool`` unit tests, for the series the server exposes.

The rules read the ingestion service's own series (``watchkeeper_events_*``,
``watchkeeper_model_*``, ``watchkeeper_ingest_duration_seconds``) and the monitors' series that
:class:`watchkeeper.runner.MonitorCollector` adds (``watchkeeper_monitor_*``,
``watchkeeper_alerts_firing``). Use them when Prometheus, not Watchkeeper, should own alerting
(or both: Watchkeeper's own rules then go to Alertmanager directly).

Examples
--------
>>> rules = alerting_rules()
>>> [r["alert"] for r in rules["groups"][0]["rules"]][:2]
['WatchkeeperIngestRejections', 'WatchkeeperNoEvents']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

GROUP = "watchkeeper"


def alerting_rules(
    *,
    rejection_rate: float = 0.05,
    silence: str = "1h",
    ingest_p99_seconds: float = 2.0,
    latency_p99_seconds: float = 1.0,
    monitor_stale: str = "3h",
    flag_rate_change: float = 0.5,
) -> dict[str, Any]:
    """The rules file as a dict (dump it with ``yaml.safe_dump``).

    Parameters
    ----------
    rejection_rate
        Share of events rejected over 10 minutes above which ingestion is failing.
    silence
        No accepted event for this long (a model that was receiving some).
    ingest_p99_seconds, latency_p99_seconds
        99th percentile of batch commit time and of model latency.
    monitor_stale
        No window evaluated for this long: the scheduler is not running.
    flag_rate_change
        Relative change of the flag rate (last hour against the day before) that warns.
    """
    rules: list[dict[str, Any]] = [
        {
            "alert": "WatchkeeperIngestRejections",
            "expr": (
                "sum(rate(watchkeeper_events_rejected_total[10m])) / "
                "clamp_min(sum(rate(watchkeeper_events_accepted_total[10m])) + "
                f"sum(rate(watchkeeper_events_rejected_total[10m])), 1e-9) > {rejection_rate}"
            ),
            "for": "10m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "Watchkeeper rejects more than {{ $value | humanizePercentage }} "
                "of submitted events",
            },
        },
        {
            "alert": "WatchkeeperNoEvents",
            "expr": (
                f"sum by (project, model) (increase(watchkeeper_events_accepted_total[{silence}]))"
                " == 0 and sum by (project, model) "
                "(increase(watchkeeper_events_accepted_total[1d] offset 1h)) > 0"
            ),
            "for": "15m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": f"No event for model {{{{ $labels.model }}}} in the last {silence}",
            },
        },
        {
            "alert": "WatchkeeperIngestSlow",
            "expr": (
                "histogram_quantile(0.99, sum by (le) "
                "(rate(watchkeeper_ingest_duration_seconds_bucket[5m]))) > "
                f"{ingest_p99_seconds}"
            ),
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {"summary": "99th percentile of batch ingest time is {{ $value }}s"},
        },
        {
            "alert": "WatchkeeperModelLatencyHigh",
            "expr": (
                "histogram_quantile(0.99, sum by (project, model, le) "
                "(rate(watchkeeper_model_latency_seconds_bucket[5m]))) > "
                f"{latency_p99_seconds}"
            ),
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Model {{ $labels.model }} p99 latency is {{ $value }}s",
            },
        },
        {
            "alert": "WatchkeeperFlagRateChanged",
            "expr": (
                "abs(watchkeeper_model_flag_rate - avg_over_time(watchkeeper_model_flag_rate[1d]"
                " offset 1h)) / clamp_min(avg_over_time(watchkeeper_model_flag_rate[1d] "
                f"offset 1h), 1e-9) > {flag_rate_change}"
            ),
            "for": "30m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Flag rate of {{ $labels.model }} moved by more than "
                f"{int(flag_rate_change * 100)}% against the day before",
            },
        },
        {
            "alert": "WatchkeeperMonitorsStale",
            "expr": (
                "time() - watchkeeper_monitor_last_window_end_timestamp_seconds > "
                f"{_seconds(monitor_stale)}"
            ),
            "for": "5m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Monitors of {{ $labels.model }} have not evaluated a window "
                f"for {monitor_stale}",
            },
        },
        {
            "alert": "WatchkeeperMonitorAlert",
            "expr": "watchkeeper_alerts_firing > 0",
            "labels": {"source": "watchkeeper"},
            "annotations": {
                "summary": "Watchkeeper rule {{ $labels.rule }} fires for model "
                "{{ $labels.model }}",
            },
        },
        {
            "alert": "WatchkeeperFeatureDrift",
            "expr": 'watchkeeper_monitor_drifted_subjects{check="feature_drift"} > 0',
            "for": "2h",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{ $value }} feature(s) of {{ $labels.model }} drifted for 2h",
            },
        },
    ]
    return {"groups": [{"name": GROUP, "rules": rules}]}


def _seconds(duration: str) -> int:
    from watchkeeper.checks import parse_duration

    return int(parse_duration(duration, "duration"))


def rules_unit_tests(rules_file: str = "watchkeeper-rules.yml") -> dict[str, Any]:
    """A ``promtool test rules`` file exercising each rule once firing and once quiet."""
    pm = 'project="p",model="fraud"'
    return {
        "rule_files": [rules_file],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": f"watchkeeper_events_accepted_total{{{pm}}}",
                        "values": "0+100x30",
                    },
                    {
                        "series": 'watchkeeper_events_rejected_total{reason="validation"}',
                        "values": "0+20x30",
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "25m",
                        "alertname": "WatchkeeperIngestRejections",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical"},
                                "exp_annotations": {
                                    "summary": "Watchkeeper rejects more than 16.67% of "
                                    "submitted events",
                                },
                            }
                        ],
                    },
                    {"eval_time": "25m", "alertname": "WatchkeeperNoEvents", "exp_alerts": []},
                ],
            },
            {
                "interval": "5m",
                "input_series": [
                    {
                        # Events all day, then nothing for the last 90 minutes.
                        "series": f"watchkeeper_events_accepted_total{{{pm}}}",
                        "values": "0+10x300 3000x30",
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "26h30m",
                        "alertname": "WatchkeeperNoEvents",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "critical",
                                    "project": "p",
                                    "model": "fraud",
                                },
                                "exp_annotations": {
                                    "summary": "No event for model fraud in the last 1h",
                                },
                            }
                        ],
                    },
                    {"eval_time": "20h", "alertname": "WatchkeeperNoEvents", "exp_alerts": []},
                ],
            },
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": f'watchkeeper_alerts_firing{{{pm},rule="data_drift",'
                        'severity="warning"}',
                        "values": "1x10",
                    },
                    {
                        "series": f"watchkeeper_monitor_drifted_subjects{{{pm},"
                        'check="feature_drift"}',
                        "values": "3x180",
                    },
                    {
                        "series": f"watchkeeper_monitor_last_window_end_timestamp_seconds{{{pm}}}",
                        "values": "0x300",
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "5m",
                        "alertname": "WatchkeeperMonitorAlert",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "source": "watchkeeper",
                                    "project": "p",
                                    "model": "fraud",
                                    "rule": "data_drift",
                                    "severity": "warning",
                                },
                                "exp_annotations": {
                                    "summary": "Watchkeeper rule data_drift fires for model fraud",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "1h",
                        "alertname": "WatchkeeperFeatureDrift",
                        "exp_alerts": [],
                    },
                    {
                        "eval_time": "150m",
                        "alertname": "WatchkeeperFeatureDrift",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "project": "p",
                                    "model": "fraud",
                                    "check": "feature_drift",
                                },
                                "exp_annotations": {
                                    "summary": "3 feature(s) of fraud drifted for 2h",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "2h",
                        "alertname": "WatchkeeperMonitorsStale",
                        "exp_alerts": [],
                    },
                    {
                        "eval_time": "4h",
                        "alertname": "WatchkeeperMonitorsStale",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "project": "p",
                                    "model": "fraud",
                                },
                                "exp_annotations": {
                                    "summary": "Monitors of fraud have not evaluated a "
                                    "window for 3h",
                                },
                            }
                        ],
                    },
                ],
            },
        ],
    }


def export_rules(directory: str | Path, **options: Any) -> list[Path]:
    """Write ``watchkeeper-rules.yml`` and ``watchkeeper-rules.test.yml`` into ``directory``.

    Check them with ``promtool check rules`` and ``promtool test rules``.
    """
    import yaml

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rules = out / "watchkeeper-rules.yml"
    tests = out / "watchkeeper-rules.test.yml"
    rules.write_text(yaml.safe_dump(alerting_rules(**options), sort_keys=False, width=100))
    tests.write_text(yaml.safe_dump(rules_unit_tests(rules.name), sort_keys=False, width=100))
    return [rules, tests]
