"""Settings of the ingestion service, read from ``WATCHKEEPER_*`` environment variables.

A plain frozen dataclass: the factory :func:`watchkeeper.server.create_app` takes one, tests build
one directly, and :meth:`Settings.from_env` reads the environment once, when the server starts
(never at import).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

StartupHook = Callable[[Any], Callable[[], None] | None]
"""A callable run when the app starts, given the app's :class:`~watchkeeper.store.Store`.

It may return a callable, run (in reverse order) when the app stops.
"""


def _bool(value: str) -> bool:
    low = value.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


@dataclass(frozen=True)
class Settings:
    """What the server needs to know; every field has an environment variable.

    Parameters
    ----------
    db
        Database URL for :class:`~watchkeeper.store.Store` (``WATCHKEEPER_DB``); ``None`` uses the
        embedded SQLite file ``./.watchkeeper/watchkeeper.db``.
    host, port
        Where ``watchkeeper server`` listens (``WATCHKEEPER_HOST``, ``WATCHKEEPER_PORT``).
    max_body_bytes
        Largest body of an events or labels batch; larger ones get 413 before they are read
        (``WATCHKEEPER_MAX_BODY_BYTES``).
    max_tool_body_bytes
        Largest body of every other route (tools, versions, monitor configuration, tokens)
        (``WATCHKEEPER_MAX_TOOL_BODY_BYTES``).
    max_batch_events
        Most events (or labels) in one batch; more get 413 (``WATCHKEEPER_MAX_BATCH_EVENTS``).
    auto_register_models
        Register an unknown model on its first batch instead of answering 404
        (``WATCHKEEPER_AUTO_REGISTER_MODELS``).
    flag_threshold
        Score at or above which an event counts as flagged for the ``flag rate`` metric when the
        model version has no operating point (``WATCHKEEPER_FLAG_THRESHOLD``).
    metrics_max_models
        Most distinct model label values per metric; events of further models are counted under
        ``model="_other"`` so the label set stays bounded (``WATCHKEEPER_METRICS_MAX_MODELS``).
    system_metrics
        Expose the server's own CPU, memory, disk, network and GPU figures on ``/metrics``
        (``WATCHKEEPER_SYSTEM_METRICS``).
    monitor_metrics
        Expose the monitors' latest figures and firing alerts on ``/metrics``
        (``watchkeeper.runner.MonitorCollector``, read from the store at scrape time) when that
        module exists (``WATCHKEEPER_MONITOR_METRICS``).
    run_scheduler
        Start ``watchkeeper.runner.Scheduler`` in the app's lifespan when that module exists
        (``WATCHKEEPER_RUN_SCHEDULER``).
    scheduler_interval
        Seconds between scheduler ticks (``WATCHKEEPER_SCHEDULER_INTERVAL``).
    run_loop
        With the scheduler, also drive each model's retraining loop after its monitors:
        triggers, jobs, gate, shadow test, promotion and rollback (``WATCHKEEPER_RUN_LOOP``).
    jobs_dir
        Where training jobs write their datasets and outputs (``WATCHKEEPER_JOBS_DIR``);
        ``None``: ``jobs/`` beside the SQLite file.
    max_heavy_requests
        Most CPU-heavy requests (``/v1/tools/...``, ``monitors:run``) running at once on this
        server; more get 429 with ``Retry-After`` (``WATCHKEEPER_MAX_HEAVY_REQUESTS``).
    public_metrics
        Serve every project's series on ``/metrics`` without a token
        (``WATCHKEEPER_PUBLIC_METRICS``). Off by default: a scrape then needs a token and sees
        only its own project's series.
    token_cache_seconds
        How long a replica trusts a token it verified without asking the database again: the
        longest a revoked or expired token keeps working on another replica
        (``WATCHKEEPER_TOKEN_CACHE_SECONDS``; 0 asks on every request).
    sink_hosts
        Comma-separated hosts alert sinks may send to (``WATCHKEEPER_SINK_HOSTS``); internal
        addresses only when listed exactly. See :class:`~watchkeeper.alerts.SinkPolicy`.
    sink_secret_env
        Comma-separated environment variables a sink's ``headers_env``/``password_env`` may
        name (``WATCHKEEPER_SINK_SECRET_ENV``).
    console
        Serve the web console under ``/ui`` (``WATCHKEEPER_CONSOLE``).
    ui_secret
        Key that signs console session cookies (``WATCHKEEPER_UI_SECRET``); share it between
        replicas. ``None``: a random key per process (sessions end when it restarts).
    payload_url
        Where payloads (thumbnails, snippets) are kept: a directory or an fsspec URL
        (``WATCHKEEPER_PAYLOAD_URL``); ``None``: ``payloads/`` beside the SQLite file.
    public_url
        The console's address as people reach it, e.g. ``https://wk.example.org``, for links in
        alerts (``WATCHKEEPER_PUBLIC_URL``).
    artifacts
        The model registry's artifact store: a directory or an fsspec URL
        (``WATCHKEEPER_ARTIFACTS``); ``None``: ``artifacts/`` beside the SQLite file.
    rate_limit_per_second
        Sustained requests per second of one token; a token past its bucket gets 429 with
        ``Retry-After`` (``WATCHKEEPER_RATE_LIMIT_PER_SECOND``; 0 turns the per-token limit off).
    rate_limit_burst
        Requests one token may send at once before the rate applies
        (``WATCHKEEPER_RATE_LIMIT_BURST``).
    rate_limit_anonymous_per_second, rate_limit_anonymous_burst
        The same for requests without a valid token (``/healthz``, the console's pages,
        refused tokens), per client address (``WATCHKEEPER_RATE_LIMIT_ANONYMOUS_PER_SECOND``,
        ``WATCHKEEPER_RATE_LIMIT_ANONYMOUS_BURST``; 0 turns it off).
    rate_limit_heavy_cost
        What one CPU-heavy request (``/v1/tools/...``, ``monitors:run``) costs of a bucket, in
        requests (``WATCHKEEPER_RATE_LIMIT_HEAVY_COST``).
    rate_limit_max_keys
        Most callers whose buckets are kept at once; the least recently seen is forgotten past
        it (``WATCHKEEPER_RATE_LIMIT_MAX_KEYS``).
    startup_hooks
        Extra callables run at start-up with the store (see :data:`StartupHook`); code only, no
        environment variable.

    Examples
    --------
    >>> s = Settings.from_env({"WATCHKEEPER_PORT": "9000", "WATCHKEEPER_AUTO_REGISTER_MODELS": "1"})
    >>> s.port, s.auto_register_models, s.max_batch_events
    (9000, True, 10000)
    """

    db: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 64 * 1024 * 1024
    max_tool_body_bytes: int = 4 * 1024 * 1024
    max_batch_events: int = 10_000
    auto_register_models: bool = False
    flag_threshold: float = 0.5
    metrics_max_models: int = 100
    system_metrics: bool = True
    monitor_metrics: bool = True
    run_scheduler: bool = False
    scheduler_interval: float = 60.0
    run_loop: bool = True
    jobs_dir: str | None = None
    max_heavy_requests: int = 4
    public_metrics: bool = False
    token_cache_seconds: float = 5.0
    sink_hosts: str | None = None
    sink_secret_env: str | None = None
    console: bool = True
    ui_secret: str | None = None
    payload_url: str | None = None
    public_url: str | None = None
    artifacts: str | None = None
    rate_limit_per_second: float = 200.0
    rate_limit_burst: float = 1000.0
    rate_limit_anonymous_per_second: float = 20.0
    rate_limit_anonymous_burst: float = 100.0
    rate_limit_heavy_cost: float = 10.0
    rate_limit_max_keys: int = 100_000
    startup_hooks: Sequence[StartupHook] = field(default_factory=tuple)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``WATCHKEEPER_<FIELD>`` variables; keyword ``overrides`` win over them.

        A malformed value raises :class:`ValueError` naming the variable.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "startup_hooks":
                continue
            key = f"WATCHKEEPER_{f.name.upper()}"
            if key not in env:
                continue
            raw = env[key]
            try:
                if f.type in ("int", int):
                    values[f.name] = int(raw)
                elif f.type in ("float", float):
                    values[f.name] = float(raw)
                elif f.type in ("bool", bool):
                    values[f.name] = _bool(raw)
                else:
                    values[f.name] = raw or None
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def sink_policy(self) -> Any:
        """The operator's :class:`~watchkeeper.alerts.SinkPolicy` from ``sink_hosts`` and
        ``sink_secret_env``."""
        from watchkeeper.alerts import SinkPolicy

        return SinkPolicy.parse(self.sink_hosts, self.sink_secret_env)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def validate(self) -> None:
        """Raise :class:`ValueError` naming the first field out of its range."""
        if self.max_body_bytes <= 0:
            raise ValueError(f"max_body_bytes must be positive, got {self.max_body_bytes}")
        if self.max_tool_body_bytes <= 0:
            raise ValueError(
                f"max_tool_body_bytes must be positive, got {self.max_tool_body_bytes}"
            )
        if self.max_heavy_requests < 1:
            raise ValueError(f"max_heavy_requests must be >= 1, got {self.max_heavy_requests}")
        if not 0 <= self.token_cache_seconds <= 3600:
            raise ValueError(
                f"token_cache_seconds must be in [0, 3600], got {self.token_cache_seconds}"
            )
        if self.max_batch_events <= 0:
            raise ValueError(f"max_batch_events must be positive, got {self.max_batch_events}")
        if not 0.0 <= self.flag_threshold <= 1.0:
            raise ValueError(f"flag_threshold must be in [0, 1], got {self.flag_threshold}")
        if self.metrics_max_models < 1:
            raise ValueError(f"metrics_max_models must be >= 1, got {self.metrics_max_models}")
        if not self.scheduler_interval > 0 or self.scheduler_interval == float("inf"):
            raise ValueError(
                f"scheduler_interval must be positive and finite, got {self.scheduler_interval}"
            )
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1..65535, got {self.port}")
        self._validate_rate_limits()

    def _validate_rate_limits(self) -> None:
        for prefix in ("rate_limit", "rate_limit_anonymous"):
            rate = getattr(self, f"{prefix}_per_second")
            burst = getattr(self, f"{prefix}_burst")
            if not 0 <= rate <= 1e6:
                raise ValueError(f"{prefix}_per_second must be in [0, 1e6] (0: off), got {rate}")
            if not 1 <= burst <= 1e9:
                raise ValueError(f"{prefix}_burst must be in [1, 1e9], got {burst}")
            if prefix == "rate_limit" and rate > 0 and self.rate_limit_heavy_cost > burst:
                raise ValueError(
                    f"{prefix}_burst ({burst}) must be at least rate_limit_heavy_cost "
                    f"({self.rate_limit_heavy_cost}), or a heavy request could never pass"
                )
        if not 1 <= self.rate_limit_heavy_cost <= 1e6:
            raise ValueError(
                f"rate_limit_heavy_cost must be in [1, 1e6], got {self.rate_limit_heavy_cost}"
            )
        if not 1 <= self.rate_limit_max_keys <= 10_000_000:
            raise ValueError(
                f"rate_limit_max_keys must be in [1, 10000000], got {self.rate_limit_max_keys}"
            )
