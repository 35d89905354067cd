"""Prometheus collectors of the ingestion service, on a registry the app factory creates.

Names follow Prometheus conventions: base units (seconds, bytes, ratios), ``_total`` counters,
and bounded label sets. A label is a (project, model) pair; after ``max_models`` distinct pairs,
further ones are counted under ``project="_other", model="_other"``. Rejections are labelled by
a fixed set of reasons. Per-event histograms (scores, model latency, label lag) are filled a
whole batch at a time with numpy, not one ``observe`` call per event.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from watchkeeper.window import Window

REJECT_REASONS = (
    "validation",
    "too_large",
    "unknown_model",
    "unauthenticated",
    "rate_limited",
    "forbidden",
    "busy",
    "error",
)
OTHER = "_other"
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_BUCKETS = (
    60.0,
    300.0,
    900.0,
    3600.0,
    4 * 3600.0,
    86400.0,
    3 * 86400.0,
    7 * 86400.0,
    30 * 86400.0,
)
FLAG_RATE_WINDOW = 10_000
"""Number of most recent scored events per model over which the flag-rate gauge is computed."""


class BulkHistogram(Collector):
    """A labelled histogram observed a numpy array at a time.

    >>> reg = CollectorRegistry()
    >>> h = BulkHistogram("demo_seconds", "Demo.", ("model",), (0.1, 1.0), reg)
    >>> h.observe_many(("m",), np.array([0.05, 0.5, 5.0, np.nan]))
    >>> reg.get_sample_value("demo_seconds_bucket", {"model": "m", "le": "1.0"})
    2.0
    >>> reg.get_sample_value("demo_seconds_count", {"model": "m"})
    3.0
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: tuple[str, ...],
        buckets: tuple[float, ...],
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self.buckets = buckets
        self._edges = np.asarray(buckets, dtype=np.float64)
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], tuple[np.ndarray, list[float]]] = {}
        registry.register(self)

    def observe_many(self, labels: tuple[str, ...], values: np.ndarray) -> None:
        """Add every finite value of ``values`` to the series ``labels``."""
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return
        # side="left": a value equal to an edge belongs to that bucket (le is inclusive).
        idx = np.searchsorted(self._edges, v, side="left")
        counts = np.bincount(idx, minlength=len(self._edges) + 1)
        total = float(v.sum())
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = (np.zeros(len(self._edges) + 1, dtype=np.int64), [0.0])
                self._series[labels] = series
            series[0][:] += counts
            series[1][0] += total

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            items = [(k, c.copy(), s[0]) for k, (c, s) in self._series.items()]
        for labels, counts, total in items:
            cum = np.cumsum(counts)
            buckets = [
                (repr(float(b)), float(c)) for b, c in zip(self.buckets, cum[:-1], strict=True)
            ]
            buckets.append(("+Inf", float(cum[-1])))
            family.add_metric(list(labels), buckets, total)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)


class _ServingSystem(Collector):
    """Last system snapshot each (project, model) sent with a batch, as gauges."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], dict[str, float]] = {}
        registry.register(self)

    def set(self, labels: tuple[str, str], snapshot: dict[str, float]) -> None:
        clean = {
            k: float(v)
            for k, v in snapshot.items()
            if isinstance(k, str) and k.replace("_", "").isalnum() and np.isfinite(v)
        }
        with self._lock:
            self._last[labels] = clean

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            items = list(self._last.items())
        families: dict[str, GaugeMetricFamily] = {}
        for (project, model), snap in items:
            for key, value in snap.items():
                name = f"watchkeeper_serving_{key.removesuffix('_total')}"
                fam = families.get(name)
                if fam is None:
                    fam = GaugeMetricFamily(
                        name,
                        f"Serving-side system figure '{key}' last reported by the SDK.",
                        labels=["project", "model"],
                    )
                    families[name] = fam
                fam.add_metric([project, model], value)
        yield from families.values()

    def describe(self) -> Iterator[Metric]:
        return iter(())


class ServerMetrics:
    """Every collector of the service, registered on ``registry``.

    Parameters
    ----------
    registry
        Where the collectors live; ``/metrics`` exposes exactly this registry.
    max_models
        Most distinct (project, model) label pairs before further ones become ``_other``.
    """

    def __init__(self, registry: CollectorRegistry, max_models: int = 100) -> None:
        self.registry = registry
        self.max_models = max_models
        self._known: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._flags: dict[tuple[str, str], list[tuple[int, int]]] = {}
        pm = ("project", "model")
        self.accepted = Counter(
            "watchkeeper_events_accepted_total",
            "Events stored (new ids), by model.",
            pm,
            registry=registry,
        )
        self.duplicates = Counter(
            "watchkeeper_events_duplicate_total",
            "Events received again with an id already stored (not counted twice).",
            pm,
            registry=registry,
        )
        self.rejected = Counter(
            "watchkeeper_events_rejected_total",
            "Events (or requests, when the body could not be read) rejected, by reason.",
            ("reason",),
            registry=registry,
        )
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)
        self.labels_accepted = Counter(
            "watchkeeper_labels_accepted_total",
            "Labels stored that were new or changed (a re-sent label is not counted), by model.",
            pm,
            registry=registry,
        )
        self.ingest_seconds = Histogram(
            "watchkeeper_ingest_duration_seconds",
            "Time to validate and durably commit one batch, by kind (events, labels).",
            ("kind",),
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.scores = BulkHistogram(
            "watchkeeper_model_score",
            "Prediction scores (positive-class score), by model.",
            pm,
            SCORE_BUCKETS,
            registry,
        )
        self.latency = BulkHistogram(
            "watchkeeper_model_latency_seconds",
            "Model latency reported with each event, by model.",
            pm,
            LATENCY_BUCKETS,
            registry,
        )
        self.label_lag = BulkHistogram(
            "watchkeeper_label_lag_seconds",
            "Time from an event to the arrival of its label, by model.",
            pm,
            LAG_BUCKETS,
            registry,
        )
        self.flagged = Counter(
            "watchkeeper_model_flagged_total",
            "Scored events at or above the model's threshold, by model.",
            pm,
            registry=registry,
        )
        self.scored = Counter(
            "watchkeeper_model_scored_total",
            "Events with a score, by model.",
            pm,
            registry=registry,
        )
        self.flag_rate = Gauge(
            "watchkeeper_model_flag_rate",
            f"Share of the last {FLAG_RATE_WINDOW} scored events at or above the threshold.",
            pm,
            registry=registry,
        )
        self.serving = _ServingSystem(registry)

    def label(self, project: str, model: str) -> tuple[str, str]:
        """The label pair for (project, model), or ``_other`` once the set is full."""
        key = (project, model)
        with self._lock:
            if key in self._known:
                return key
            if len(self._known) < self.max_models:
                self._known.add(key)
                return key
        return (OTHER, OTHER)

    def observe_events(
        self,
        project: str,
        model: str,
        window: Window,
        accepted: int,
        duplicates: int,
        threshold: float,
        *,
        new: np.ndarray | None = None,
    ) -> None:
        """Count one committed batch and add the scores, flags and latencies of the events it
        stored: ``new`` marks them (one boolean per event; None: all when ``accepted``)."""
        key = self.label(project, model)
        self.accepted.labels(*key).inc(accepted)
        if duplicates:
            self.duplicates.labels(*key).inc(duplicates)
        if accepted == 0:
            return  # a batch re-sent whole (an SDK replay) must not count its events twice
        stored = np.ones(len(window), dtype=bool) if new is None else np.asarray(new, dtype=bool)
        if window.scores is not None:
            scores = window.scores[stored]
            scores = scores[np.isfinite(scores)]
            self.scores.observe_many(key, scores)
            n, k = int(scores.size), int(np.count_nonzero(scores >= threshold))
            if n:
                self.scored.labels(*key).inc(n)
                self.flagged.labels(*key).inc(k)
                self.flag_rate.labels(*key).set(self._recent_rate(key, n, k))
        if window.latency_ms is not None:
            self.latency.observe_many(key, window.latency_ms[stored] / 1000.0)

    def _recent_rate(self, key: tuple[str, str], n: int, k: int) -> float:
        with self._lock:
            recent = self._flags.setdefault(key, [])
            recent.append((n, k))
            total = sum(c for c, _ in recent)
            while len(recent) > 1 and total - recent[0][0] >= FLAG_RATE_WINDOW:
                total -= recent.pop(0)[0]
            return sum(f for _, f in recent) / total

    def observe_labels(
        self, project: str, model: str, accepted: int, lags: np.ndarray | None
    ) -> None:
        """Count labels that were new or changed, and their lag behind their events
        (seconds)."""
        key = self.label(project, model)
        self.labels_accepted.labels(*key).inc(accepted)
        if lags is not None:
            self.label_lag.observe_many(key, lags)

    def reject(self, reason: str, n: int = 1) -> None:
        """Count ``n`` rejected events (one per request when the body was unreadable)."""
        self.rejected.labels(reason if reason in REJECT_REASONS else "error").inc(max(n, 1))

    def observe_serving_system(self, project: str, model: str, snapshot: dict[str, Any]) -> None:
        """Keep the serving side's last system snapshot for ``/metrics``."""
        self.serving.set(self.label(project, model), snapshot)


class SystemCollector(Collector):
    """This process's machine (CPU, memory, disk, network, GPUs) read at scrape time."""

    def __init__(self, path: str = "/") -> None:
        self.path = path

    def collect(self) -> Iterator[Metric]:
        from watchkeeper.system import snapshot

        snap = snapshot(self.path)
        gpus: dict[str, list[tuple[str, float]]] = {}
        for key, value in snap.items():
            if key.startswith("gpu") and "_" in key:
                index, name = key[3:].split("_", 1)
                gpus.setdefault(name, []).append((index, value))
                continue
            if key.endswith("_total"):
                yield CounterMetricFamily(
                    f"watchkeeper_system_{key.removesuffix('_total')}",
                    f"System counter '{key}' (since boot).",
                    value,
                )
            else:
                yield GaugeMetricFamily(
                    f"watchkeeper_system_{key}", f"System figure '{key}'.", value
                )
        for name, values in gpus.items():
            fam = GaugeMetricFamily(
                f"watchkeeper_gpu_{name}", f"GPU figure '{name}'.", labels=["gpu"]
            )
            for index, value in values:
                fam.add_metric([index], value)
            yield fam

    def describe(self) -> Iterator[Metric]:
        return iter(())
