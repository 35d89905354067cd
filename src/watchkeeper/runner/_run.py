"""Run a model's monitors: read closed windows, run the checks, store, alert, notify.

``run_monitors(store, project, model)`` is the one entry point: the scheduler calls it on every
tick, ``watchkeeper check MODEL`` and ``POST /v1/models/{model}/monitors:run`` call it now.
Windows are evaluated once each, in order; where the runner stopped is kept in the store
(``put_state``), as are the streaming detectors and the alert rules' memory, so a restart
continues where it left off and two runs never evaluate one window twice.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from watchkeeper.alerts import (
    AlertEngine,
    AlertEvent,
    AlertmanagerSink,
    SinkPolicy,
    deliver,
    sink_from_dict,
)
from watchkeeper.checks import (
    MonitorConfig,
    PreparedReference,
    default_config,
    environment_skew,
    pipeline_health,
    scores_of,
    streaming,
    training_serving_skew,
)
from watchkeeper.checks._finding import Finding
from watchkeeper.checks._monitor import window_checks
from watchkeeper.checks.adversaries import adversaries, fit_scorer, outlier_rate
from watchkeeper.profiles import Profile, binary_labels, profile
from watchkeeper.window import Window

log = logging.getLogger("watchkeeper.runner")

MAX_WINDOWS = 48
"""Most windows one run evaluates by default (``run_monitors(max_windows=...)``); a longer
backlog, the first run's backfill included, keeps only its newest windows."""

MAX_CACHED_VERSIONS = 4
"""Fitted references of this many model versions are kept in a run cache."""

LEASE_SECONDS = 900.0
"""How long a run's hold on a model lasts without renewal (it renews before each window)."""


@dataclass
class RunResult:
    """What one run did.

    Attributes
    ----------
    windows
        ``(start, end, events)`` of each window evaluated.
    findings
        Every finding stored, as dicts.
    metrics
        Metric values of the last window.
    events
        Alert notifications produced (firing, resolved).
    transients
        Breaches that did not (yet) persist: reported, not alerted.
    alerts
        Alerts as stored after the run.
    sinks
        Sink label -> ``None`` (delivered) or the error.
    errors
        Check name -> error of a check that failed (the others still ran).
    skipped
        Why nothing was evaluated, when nothing was.
    adhoc
        True when no window had closed and the trailing window was evaluated instead
        (findings returned, nothing stored or alerted).
    evaluations
        One ``{"start", "end", "version", "events", "findings"}`` per version present in each
        window: a window that mixes versions is split, each part evaluated against its own
        version's reference, never pooled.
    """

    project: str
    model: str
    windows: list[tuple[float, float, int]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    events: list[AlertEvent] = field(default_factory=list)
    transients: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    sinks: dict[str, str | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None
    adhoc: bool = False
    evaluations: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "project": self.project,
            "model": self.model,
            "windows": [{"start": s, "end": e, "events": n} for s, e, n in self.windows],
            "findings": self.findings,
            "metrics": self.metrics,
            "events": [{"kind": e.kind, "alert": e.alert} for e in self.events],
            "transients": self.transients,
            "alerts": self.alerts,
            "sinks": self.sinks,
            "errors": self.errors,
            "skipped": self.skipped,
            "adhoc": self.adhoc,
            "evaluations": self.evaluations,
        }


@dataclass
class ModelContext:
    """Everything about a model version the checks need besides the window."""

    version: str | None
    reference: Window
    profile: Profile
    prepared: PreparedReference
    config: MonitorConfig
    record: dict[str, Any]


def _latest_version(store: Any, project: str, model: str) -> dict[str, Any]:
    """The serving version's record: the one the ``champion`` alias points at, else the newest
    registered (monitoring follows the registry, so a rollback moves it back at once)."""
    try:
        versions = store.list_model_versions(project, model)
    except (KeyError, AttributeError):
        return {}
    champion = store.get_alias(project, model, "champion") if hasattr(store, "get_alias") else None
    for record in versions:
        if record["version"] == champion:
            return dict(record)
    return dict(versions[-1]) if versions else {}


SERVING = object()
"""``load_context(version=SERVING)``: the version the registry says is serving."""


def _version_record(store: Any, project: str, model: str, version: str) -> dict[str, Any]:
    try:
        return dict(store.get_model_version(project, model, version))
    except (KeyError, AttributeError):
        return {"version": version}


def load_context(
    store: Any,
    project: str,
    model: str,
    *,
    cache: MutableMapping[Any, Any] | None = None,
    version: Any = SERVING,
) -> ModelContext | None:
    """A version's reference, profile and configuration (None without a reference).

    ``version`` defaults to the serving one: the ``champion`` alias's version when set, else
    the newest registered. A version without its own reference falls back to the model's
    reference registered without a version.

    The configuration is the stored one (``put_monitor_config``) or, without one,
    :func:`~watchkeeper.checks.default_config` from the reference and operating point.
    """
    if version is SERVING:
        record = _latest_version(store, project, model)
    else:
        record = _version_record(store, project, model, str(version))
    version = record.get("version")
    try:
        reference = store.get_reference(project, model, version)
    except KeyError:
        if version is None:
            return None
        try:
            reference = store.get_reference(project, model, None)
        except KeyError:
            return None
    return _context(store, project, model, record, reference, cache)


def _context(
    store: Any,
    project: str,
    model: str,
    record: dict[str, Any],
    reference: Window,
    cache: MutableMapping[Any, Any] | None,
) -> ModelContext:
    version = record.get("version")
    op = record.get("operating_point")
    stored = store.get_monitor_config(project, model)
    if stored is not None:
        config = MonitorConfig.from_dict(stored).validate()
    else:
        config = default_config(
            reference,
            op,
            expected_volume=record.get("expected_volume"),
            window=record.get("window") or "1h",
        )
        if record.get("expected_prevalence") is not None:
            config.checks["operating_point"]["expected_prevalence"] = record["expected_prevalence"]
    key = (project, model, version, len(reference), repr(op), repr(config.positive_label))
    if cache is not None and key in cache:
        prepared, prof = cache[key]
    else:
        stored_profile = store.get_reference_profile(project, model, version)
        prof = (
            Profile.from_dict(stored_profile)
            if stored_profile
            else profile(reference, positive_label=config.positive_label)
        )
        prepared = PreparedReference(reference, op, config.positive_label)
        if cache is not None:
            # A few versions at a time per cache (each window is checked per version); the
            # oldest entry goes first, since references are large.
            while len(cache) >= MAX_CACHED_VERSIONS:
                cache.pop(next(iter(cache)))
            cache[key] = (prepared, prof)
    return ModelContext(version, reference, prof, prepared, config, record)


def _rates(prep: PreparedReference) -> tuple[float | None, float | None]:
    op = prep.op
    s = scores_of(prep.reference)
    if op is None or op.threshold is None or s is None:
        return None, None
    ok = np.isfinite(s)
    if not ok.any():
        return None, None
    flags = s[ok] >= op.threshold
    flag_rate = float(flags.mean())
    y = prep.labels01()
    if y is None:
        return flag_rate, None
    known = np.isfinite(y[ok])
    if not known.any():
        return flag_rate, None
    return flag_rate, float((flags[known] != (y[ok][known] == 1)).mean())


def run_checks(
    ctx: ModelContext,
    window: Window,
    *,
    now: float,
    store: Any = None,
    project: str = "default",
    model: str = "model",
    stream_state: Mapping[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    outlier_results: list[Any] | None = None,
) -> tuple[list[Finding], dict[str, Any]]:
    """Every enabled check on one window; returns findings and the streaming state.

    ``outlier_results`` receives the per-event :class:`~watchkeeper.outliers.OutlierResult`
    of the window when the outlier check ran.
    """
    cfg = ctx.config
    prep = ctx.prepared
    errors = errors if errors is not None else {}
    findings: list[Finding] = []
    new_stream_state: dict[str, Any] = dict(stream_state or {})

    def run(name: str, fn: Callable[[], list[Finding]]) -> None:
        if not cfg.enabled(name):
            return
        try:
            findings.extend(fn())
        except Exception as exc:  # one failing check must not stop the others
            log.exception("check %s failed for %s/%s", name, project, model)
            errors[name] = f"{type(exc).__name__}: {exc}"

    has_rows = len(window) > 0
    if has_rows:
        calibration_reference = (
            ctx.profile if ctx.profile.calibration is not None else ctx.reference
        )
        for name, fn in window_checks(
            prep, window, cfg, findings, calibration_reference=calibration_reference,
            reference_profile=ctx.profile,
        ):  # fmt: skip
            run(name, fn)
        run(
            "training_serving_skew",
            lambda: training_serving_skew(
                ctx.reference, window, cfg.options("training_serving_skew")
            ),
        )

        def stream() -> list[Finding]:
            flag_rate, error_rate = _rates(prep)
            op = prep.op
            found, state = streaming(
                window,
                cfg.options("streaming"),
                state=stream_state,
                threshold=None if op is None else op.threshold,
                positive_label=cfg.positive_label,
                flag_rate=flag_rate,
                error_rate=error_rate,
            )
            new_stream_state.clear()
            new_stream_state.update(state)
            return found

        run("streaming", stream)

        def outliers() -> list[Finding]:
            options = cfg.options("outliers")
            key = f"outlier_scorer:{sorted(options.items())!r}"
            if key not in prep._cache:  # fitted once per reference and options
                prep._cache[key] = fit_scorer(ctx.reference, options)
            if prep._cache[key] is None:
                return []
            found, scored = outlier_rate(prep._cache[key], window, options)
            if scored is not None and outlier_results is not None:
                outlier_results.append(scored)
            return found

        run("outliers", outliers)

        def attacks() -> list[Finding]:
            op = prep.op
            found, state = adversaries(
                window,
                cfg.options("adversaries"),
                threshold=None if op is None else op.threshold,
                state=(stream_state or {}).get("adversaries"),
            )
            new_stream_state["adversaries"] = state
            return found

        run("adversaries", attacks)

    def env() -> list[Finding]:
        if store is None:
            return []
        serving = store.serving_environments(project, model, since=window.start)
        return environment_skew(
            ctx.record.get("environment"),
            [s["environment"] for s in serving],
            cfg.options("environment"),
            window=window,
        )

    run("environment", env)

    def pipeline() -> list[Finding]:
        stats: dict[str, Any] = {}
        if store is not None:
            stats = store.ingest_stats(project, model, since=window.start)
        return pipeline_health(
            window,
            cfg.options("pipeline_health"),
            now=now,
            last_event_ts=stats.get("last_event_ts"),
            accepted=stats.get("accepted"),
            rejected=stats.get("rejected"),
        )

    run("pipeline_health", pipeline)
    return findings, new_stream_state


def window_metrics(ctx: ModelContext, window: Window, findings: list[Finding]) -> dict[str, float]:
    """Summary figures of one window, stored as metric values and exposed to Prometheus."""
    out: dict[str, float] = {"events": float(len(window))}
    s = scores_of(window)
    op = ctx.prepared.op
    if s is not None and np.isfinite(s).any():
        fs = s[np.isfinite(s)]
        out["score_mean"] = float(fs.mean())
        if op is not None and op.threshold is not None:
            out["flag_rate"] = float((fs >= op.threshold).mean())
            out["flags"] = float((fs >= op.threshold).sum())
    if window.labels is not None:
        y = binary_labels(window.labels, ctx.config.positive_label)
        out["labelled_share"] = float(np.isfinite(y).mean()) if len(y) else 0.0
    if window.latency_ms is not None and np.isfinite(window.latency_ms).any():
        out["latency_ms_p99"] = float(np.nanquantile(window.latency_ms, 0.99))
    by_check: dict[str, int] = {}
    for f in findings:
        by_check.setdefault(f.check, 0)
        if f.drift and f.subject != "*":
            by_check[f.check] += 1
        if f.check == "calibration":
            out["ece"] = f.statistic
        elif f.check == "outliers":
            out["outlier_rate"] = f.statistic
        elif f.check in ("estimated_performance", "realised_performance"):
            out[f"{f.check}.{f.subject}"] = f.statistic
        elif (f.check, f.subject) in (
            ("prediction_drift", "score"),
            ("embedding_drift", "embedding"),
        ):
            out[f"{f.check}.statistic"] = f.statistic
            if f.p_value is not None:
                out[f"{f.check}.p_value"] = f.p_value
        elif f.check == "feature_drift" and f.subject == "*" and f.p_value is not None:
            out["feature_drift.p_value"] = f.p_value
    for check, n in by_check.items():
        out[f"drifted.{check}"] = float(n)
    n_feat = len(ctx.reference.features)
    if n_feat:
        out["feature_drift.share"] = by_check.get("feature_drift", 0) / n_feat
    return {k: v for k, v in out.items() if math.isfinite(v)}


def _time_windows(
    cfg: MonitorConfig,
    last_end: float | None,
    now: float,
    first_ts: float | None = None,
    max_windows: int = MAX_WINDOWS,
) -> list[tuple[float, float]]:
    """Closed windows to evaluate: after ``last_end``; on a first run (``last_end`` None) every
    window since the one holding the first event. At most the newest ``max_windows``, computed
    without building the whole range (``now`` far in the future costs nothing)."""
    size = cfg.window_seconds()
    assert size is not None
    closed = math.floor(now / size) * size
    if last_end is None:
        if first_ts is None or not math.isfinite(first_ts):
            return [(closed - size, closed)]
        begin = math.floor(first_ts / size) * size
    else:
        begin = float(last_end)
    count = int(max(0.0, math.floor((closed - begin) / size + 1e-9)))
    count = min(count, max(1, int(max_windows)))
    return [(closed - (count - i) * size, closed - (count - i - 1) * size) for i in range(count)]


def _by_version(window: Window, serving: str | None = None) -> list[tuple[str | None, Window]]:
    """The window cut into one part per model version, in order of version name; never pooled.

    Events that carry no version were served by the serving version (the ``champion``
    alias's), and count as its events; with no serving version they form their own part,
    ``None``.
    """
    if window.versions is None or len(window) == 0:
        return [(serving, window)]
    import pandas as pd

    versions = pd.Series(window.versions, dtype=object).replace("", None)
    if serving is not None:
        versions = versions.fillna(serving)
    codes, uniques = pd.factorize(versions, use_na_sentinel=True)
    codes = np.asarray(codes)
    names: list[str | None] = [str(u) for u in uniques]
    parts: list[tuple[str | None, Window]] = []
    if (codes < 0).any():
        parts.append((None, window.take(np.flatnonzero(codes < 0))))
    if len(names) == 1 and not (codes < 0).any():
        return [(names[0], window)]
    for code in np.argsort(np.array([str(n) for n in names], dtype=object), kind="stable"):
        part = window.take(np.flatnonzero(codes == code))
        parts.append((names[int(code)], part))
    return parts


def _with_bounds(part: Window, start: float | None, end: float | None) -> Window:
    return Window(**{**part.__dict__, "start": start, "end": end})


def run_monitors(
    store: Any,
    project: str,
    model: str,
    *,
    now: float | None = None,
    adhoc: bool = False,
    cache: MutableMapping[Any, Any] | None = None,
    send: bool = True,
    trailing: bool = False,
    sink_policy: SinkPolicy | None = None,
    max_windows: int = MAX_WINDOWS,
) -> RunResult:
    """Evaluate every window of ``model`` that closed since the last run.

    Each window is evaluated **per model version**: the events of each version present are
    checked against that version's own reference, operating point and detector state, and the
    findings, metric values and alerts carry the version; versions are never pooled. Events
    logged without a version are checked against the serving version (the ``champion`` alias,
    else the newest registered).

    The first run backfills: it evaluates every closed window since the one holding the first
    event, up to the newest ``max_windows``.

    Parameters
    ----------
    store
        A :class:`~watchkeeper.store.Store`.
    project, model
        Whose monitors to run.
    now
        The time to run at (default: the clock); windows closed by then are evaluated.
    adhoc
        When no window has closed, evaluate the trailing window (the last window's length up
        to ``now``, or the last N events) and return its findings without storing or alerting:
        what ``watchkeeper check`` shows.
    cache
        A dict the caller keeps between runs (the scheduler does) to reuse what was fitted on
        the references.
    send
        Deliver notifications to the configured sinks.
    trailing
        Evaluate only the trailing window, whether or not windows have closed, and store
        nothing: a look at the events logged since the last closed window.
    sink_policy
        The operator's hosts and secret names for sinks (``None``: read from
        ``WATCHKEEPER_SINK_HOSTS`` and ``WATCHKEEPER_SINK_SECRET_ENV``).
    max_windows
        Most windows one run evaluates (a backlog or the first run's backfill keeps the newest).

    Returns
    -------
    RunResult
    """
    now = time.time() if now is None else float(now)
    if not isinstance(max_windows, int) or isinstance(max_windows, bool) or max_windows < 1:
        raise ValueError(f"max_windows: expected a positive integer, got {max_windows!r}")
    result = RunResult(project, model)
    ctx = load_context(store, project, model, cache=cache)
    if ctx is None:
        result.skipped = "no reference registered for this model"
        return result
    contexts = _Contexts(store, project, model, ctx, cache)
    if trailing:
        return _adhoc(store, project, model, contexts, now, result)
    state_key = f"runner:{model}"
    # Server replicas sharing a database, or a cron job beside a server, must not evaluate
    # one window twice: each run holds the model's lease, renewed window by window.
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
    if not store.acquire_lease(project, state_key, holder, ttl=LEASE_SECONDS):
        result.skipped = "another process is running this model's monitors"
        return result
    try:
        return _run_windows(
            store, project, model, contexts, now, adhoc, send, holder, result, sink_policy,
            max_windows,
        )  # fmt: skip
    finally:
        store.release_lease(project, state_key, holder)


class _Contexts:
    """The serving version's context, and each other version's, loaded once per run."""

    def __init__(
        self,
        store: Any,
        project: str,
        model: str,
        serving: ModelContext,
        cache: MutableMapping[Any, Any] | None,
    ) -> None:
        self.store, self.project, self.model = store, project, model
        self.serving = serving
        self.cache = cache
        self._loaded: dict[str | None, ModelContext | None] = {None: serving}
        if serving.version is not None:
            self._loaded[serving.version] = serving

    def get(self, version: str | None) -> ModelContext | None:
        """The context of ``version`` (``None``: events without a version, checked against the
        serving version); ``None`` when the version has no reference at all."""
        if version not in self._loaded:
            self._loaded[version] = load_context(
                self.store, self.project, self.model, cache=self.cache, version=version
            )
        return self._loaded[version]


def _upgrade_state(rstate: dict[str, Any]) -> dict[str, Any]:
    """State written before windows were split per version: one version's memory at the top."""
    if "versions" in rstate:
        return rstate
    legacy = {k: rstate.pop(k) for k in ("alerts", "streaming", "last_ts") if k in rstate}
    key = "" if rstate.get("version") is None else str(rstate["version"])
    rstate["versions"] = {key: legacy} if legacy else {}
    return rstate


def _version_key(version: str | None) -> str:
    return "" if version is None else version


def _tag_alert(alert: dict[str, Any], version: str | None) -> None:
    """An alert is about one version: the version joins its key, labels and summary."""
    if alert.get("version", False) == version:
        return
    alert["version"] = version
    label = "(none)" if version is None else version
    alert["key"] = f"{alert['key']}|version={label}"
    alert["fingerprint"] = hashlib.sha256(alert["key"].encode()).hexdigest()[:16]
    alert["labels"] = {**(alert.get("labels") or {}), "version": label}
    alert["summary"] = f"{alert.get('summary', '')} [version {label}]"


def _run_windows(
    store: Any,
    project: str,
    model: str,
    contexts: _Contexts,
    now: float,
    adhoc: bool,
    send: bool,
    holder: str,
    result: RunResult,
    policy: SinkPolicy | None,
    max_windows: int,
) -> RunResult:
    """The body of :func:`run_monitors`, run while holding the model's lease."""
    ctx = contexts.serving
    cfg = ctx.config
    state_key = f"runner:{model}"
    rstate = _upgrade_state(dict(store.get_state(project, state_key) or {}))
    rstate["version"] = ctx.version  # the serving version, for the record
    vstates: dict[str, Any] = dict(rstate.get("versions") or {})
    # (window, its parts by version); the parts of a count window are cut per version
    windows: list[tuple[Window, list[tuple[str | None, Window]]]] = []
    if cfg.window["kind"] == "time":
        first = store.first_event_ts(project, model) if rstate.get("last_end") is None else None
        for start, end in _time_windows(cfg, rstate.get("last_end"), now, first, max_windows):
            full = store.read_window(project, model, start=start, end=end)
            windows.append((full, _by_version(full, ctx.version)))
    else:
        size = int(cfg.window["size"])
        known = [v.get("last_ts") for v in vstates.values()]
        after = min(known) if known and None not in known else None
        begin = None if after is None else float(np.nextafter(float(after), math.inf))
        pending = store.read_window(project, model, start=begin, end=now)
        for version, part in _by_version(pending, ctx.version):
            own = vstates.get(_version_key(version), {}).get("last_ts")
            if own is not None:
                part = part.take(np.flatnonzero(part.ts > float(own)))
            # Count windows are cut in time order; a backlog keeps its newest windows.
            full_count = len(part) // size
            for i in range(max(0, full_count - max_windows), full_count):
                piece = part.take(np.arange(i * size, (i + 1) * size))
                piece = _with_bounds(piece, float(piece.ts[0]), float(piece.ts[-1]))
                windows.append((piece, [(version, piece)]))
        windows.sort(key=lambda w: float(w[0].end or 0.0))
    if not windows:
        if adhoc:
            return _adhoc(store, project, model, contexts, now, result)
        result.skipped = "no window has closed since the last run"
        _refresh_alertmanager(store, project, model, cfg, now, result, send, policy)
        return result

    engine = AlertEngine(cfg.rules)
    for i, (window, parts) in enumerate(windows):
        if i and not store.acquire_lease(project, state_key, holder, ttl=LEASE_SECONDS):
            # This run stalled past the lease and another took over: stop before storing.
            result.skipped = "the lease passed to another process during the run"
            return result
        wend = float(window.end if window.end is not None else now)
        for version, part in parts:
            vctx = contexts.get(version)
            label = "(none)" if version is None else version
            if vctx is None:
                result.errors[f"version {label}"] = (
                    f"no reference for version {label}: its {len(part)} events are not checked"
                )
                continue
            key = _version_key(version)
            vstate = dict(vstates.get(key) or {})
            scored: list[Any] = []
            findings, stream_state = run_checks(
                vctx,
                part,
                now=min(now, wend) if cfg.window["kind"] == "time" else now,
                store=store,
                project=project,
                model=model,
                stream_state=vstate.get("streaming"),
                errors=result.errors,
                outlier_results=scored,
            )
            metrics = window_metrics(vctx, part, findings)
            dicts = [f.to_dict() for f in findings]
            for d in dicts:
                d["details"] = {**(d.get("details") or {}), "version": version}
            ev = engine.evaluate(
                dicts, now=wend, model=model, project=project, metrics=metrics,
                state=vstate.get("alerts"),
            )  # fmt: skip
            for alert in ev.alerts:
                _tag_alert(alert, version)
            transients = [
                {
                    "check": "alert.transient",
                    "subject": f"{t['rule']}:{t['subject']}",
                    "method": "persistence",
                    "statistic": float(t["breaches"]),
                    "p_value": None,
                    "alpha": None,
                    "threshold": float(t["k"]),
                    "drift": True,
                    "severity": "info",
                    "window_start": window.start,
                    "window_end": window.end,
                    "details": {**t, "version": version},
                }
                for t in ev.transients
            ]
            store.add_findings(project, model, dicts + transients)
            for outliers in scored:  # per-event scores, for the sample explorer
                store.add_outlier_scores(
                    project,
                    model,
                    part.ids,
                    part.ts,
                    outliers.scores,
                    outliers.p_values,
                    method=outliers.method,
                    version=version,
                    window_end=wend,
                )
            store.add_metric_values(
                project, model, wend, metrics, {"window": cfg.window["kind"], "version": label}
            )
            public = os.environ.get("WATCHKEEPER_PUBLIC_URL", "").rstrip("/")
            for alert in ev.alerts:
                stored = store.upsert_alert(project, alert)
                if public:
                    # the console page of the alert, its findings and their samples, for every sink
                    alert["console_url"] = f"{public}/ui/alerts/{stored['id']}"
                    store.upsert_alert(
                        project, {"key": alert["key"], "console_url": alert["console_url"]}
                    )
            result.findings.extend(dicts)
            result.evaluations.append(
                {
                    "start": float(window.start if window.start is not None else wend),
                    "end": wend,
                    "version": version,
                    "events": len(part),
                    "findings": len(dicts),
                }
            )
            result.metrics = metrics
            result.events.extend(ev.events)
            result.transients.extend({**t, "version": version} for t in ev.transients)
            vstate["alerts"] = ev.state
            vstate["streaming"] = stream_state
            if cfg.window["kind"] != "time" and len(part):
                vstate["last_ts"] = float(part.ts[-1])
            vstates[key] = vstate
        result.windows.append((float(window.start or wend), wend, len(window)))
        if cfg.window["kind"] == "time":
            rstate["last_end"] = wend
        # Where the run stands is saved with each window, so a run cut short (a crash, a lost
        # lease) resumes after the last stored window instead of storing it again.
        rstate["versions"] = vstates
        rstate["last_run"] = now
        store.put_state(project, state_key, rstate)
    if send and result.events:
        sinks = [sink_from_dict(s, policy) for s in cfg.sinks]
        result.sinks = deliver(sinks, result.events, now=now)
    _refresh_alertmanager(store, project, model, cfg, now, result, send, policy, skip_sent=True)
    result.alerts = store.list_alerts(project, model=model, status="firing")
    return result


def _refresh_alertmanager(
    store: Any,
    project: str,
    model: str,
    cfg: MonitorConfig,
    now: float,
    result: RunResult,
    send: bool,
    policy: SinkPolicy | None,
    *,
    skip_sent: bool = False,
) -> None:
    """Re-post firing alerts to Alertmanager sinks on every run, so none expires while firing."""
    if not send:
        return
    built = (sink_from_dict(d, policy) for d in cfg.sinks)
    sinks = [s for s in built if isinstance(s, AlertmanagerSink)]
    if not sinks:
        return
    sent = {e.alert.get("key") for e in result.events} if skip_sent else set()
    firing = [
        a
        for a in store.list_alerts(project, model=model, status="firing")
        if a.get("key") not in sent and not a.get("suppressed")
    ]
    if firing:
        status = deliver(sinks, [AlertEvent("refresh", a) for a in firing], now=now)
        result.sinks.update({k: v for k, v in status.items() if v is not None})


def _adhoc(
    store: Any, project: str, model: str, contexts: _Contexts, now: float, result: RunResult
) -> RunResult:
    ctx = contexts.serving
    cfg = ctx.config
    if cfg.window["kind"] == "time":
        size = cfg.window_seconds()
        assert size is not None
        window = store.read_window(project, model, start=now - size, end=now)
    else:
        window = store.read_window(project, model, last_n=int(cfg.window["size"]))
    rstate = _upgrade_state(dict(store.get_state(project, f"runner:{model}") or {}))
    vstates = rstate.get("versions") or {}
    result.adhoc = True
    result.windows.append((float(window.start or now), float(window.end or now), len(window)))
    result.findings = []
    for version, part in _by_version(window, ctx.version):
        vctx = contexts.get(version)
        if vctx is None:
            continue
        findings, _ = run_checks(
            vctx,
            part,
            now=now,
            store=store,
            project=project,
            model=model,
            stream_state=(vstates.get(_version_key(version)) or {}).get("streaming"),
            errors=result.errors,
        )
        for f in findings:
            d = f.to_dict()
            d["details"] = {**(d.get("details") or {}), "version": version}
            result.findings.append(d)
        result.metrics = window_metrics(vctx, part, findings)
    result.alerts = store.list_alerts(project, model=model, status="firing")
    return result
