"""Prometheus exposition of the monitors: latest window figures and firing alerts, per model.

Read from the store at scrape time, so every API replica exposes the same values whatever
process ran the monitors. Register it on the app's registry:
``registry.register(MonitorCollector(store))``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("watchkeeper.runner")

METRIC_NAMES = {
    "value": "watchkeeper_monitor_value",
    "drifted": "watchkeeper_monitor_drifted_subjects",
    "last_window": "watchkeeper_monitor_last_window_end_timestamp_seconds",
    "firing": "watchkeeper_alerts_firing",
}
"""The series this collector exposes (the Prometheus rules and the dashboard read these)."""


class MonitorCollector(Collector):
    """Gauges of each model's latest evaluated window and its firing alerts.

    ``watchkeeper_monitor_value{project, model, metric}``: every figure of the latest window
    (``events``, ``flag_rate``, ``ece``, ``estimated_performance.f1``, ...);
    ``watchkeeper_monitor_drifted_subjects{project, model, check}``: subjects found drifted per
    check; ``watchkeeper_monitor_last_window_end_timestamp_seconds{project, model}``;
    ``watchkeeper_alerts_firing{project, model, rule, severity}``: 1 per firing alert.

    Parameters
    ----------
    store
        The :class:`~watchkeeper.store.Store` the runner writes to.
    max_models
        Most models exposed (bounded label sets).
    """

    def __init__(self, store: Any, max_models: int = 100) -> None:
        self.store = store
        self.max_models = max_models

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        value = GaugeMetricFamily(
            METRIC_NAMES["value"],
            "Figures of the latest evaluated window of each model.",
            labels=["project", "model", "metric"],
        )
        drifted = GaugeMetricFamily(
            METRIC_NAMES["drifted"],
            "Subjects (features, score, embedding, ...) found drifted in the latest window.",
            labels=["project", "model", "check"],
        )
        last = GaugeMetricFamily(
            METRIC_NAMES["last_window"],
            "End of the latest window the monitors evaluated.",
            labels=["project", "model"],
        )
        firing = GaugeMetricFamily(
            METRIC_NAMES["firing"],
            "Alerts firing now (1 per alert).",
            labels=["project", "model", "rule", "severity"],
        )
        try:
            self._fill(value, drifted, last, firing)
        except Exception:  # a scrape must never fail because the store hiccuped
            log.exception("reading monitor figures for /metrics failed")
        yield from (value, drifted, last, firing)

    def _fill(
        self,
        value: GaugeMetricFamily,
        drifted: GaugeMetricFamily,
        last: GaugeMetricFamily,
        firing: GaugeMetricFamily,
    ) -> None:
        n = 0
        for project in self.store.list_projects():
            for alert in self.store.list_alerts(project, status="firing"):
                firing.add_metric(
                    [
                        project,
                        str(alert.get("model")),
                        str(alert.get("rule")),
                        str(alert.get("severity")),
                    ],
                    1.0,
                )
            for model in self.store.list_models(project):
                n += 1
                if n > self.max_models:
                    return
                state = self.store.get_state(project, f"runner:{model}") or {}
                end = state.get("last_end", state.get("last_ts"))
                if end is None:
                    continue
                last.add_metric([project, model], float(end))
                for row in self.store.list_metric_values(project, model, since=float(end)):
                    v = row["value"]
                    if v is None or not math.isfinite(v):
                        continue
                    name = str(row["name"])
                    if name.startswith("drifted."):
                        drifted.add_metric([project, model, name.removeprefix("drifted.")], v)
                    else:
                        value.add_metric([project, model, name], v)
