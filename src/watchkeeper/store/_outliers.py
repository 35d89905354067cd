"""Per-event outlier scores (written by the runner per window) and the audit log."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from watchkeeper.store import _schema as T
from watchkeeper.store._base import StoreBase
from watchkeeper.store._events import check_name
from watchkeeper.store._helpers import finite, loads, timestamp

MAX_OUTLIER_ROWS = 1000
"""Most rows :meth:`OutliersMixin.outlier_events` returns in one call."""

AUDIT_ACTIONS = (
    "token.create",
    "token.revoke",
    "monitors.set",
    "plan.set",
    "sinks.set",
    "alias.move",
    "alias.rollback",
    "project.create",
    "job.queue",
    "job.cancel",
    "loop.job_queued",
    "loop.job_started",
    "loop.job_succeeded",
    "loop.job_failed",
    "loop.job_cancelled",
    "loop.gate_passed",
    "loop.gate_failed",
    "loop.shadow_started",
    "loop.shadow_decided",
    "loop.promotion_pending",
    "loop.promoted",
    "loop.rolled_back",
    "loop.confirmed",
)
"""Admin actions the audit log records (others are refused, so a typo is not a new action)."""


def digest(value: Any) -> str:
    """A short fingerprint of a JSON-like value (SHA-256 of its canonical JSON, 16 hex digits):
    two entries with one digest recorded the same content, and no secret can be read back.

    >>> digest({"b": 1, "a": [2]}) == digest({"a": [2], "b": 1})
    True
    """
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sink_summary(sinks: Sequence[Any] | None) -> list[dict[str, Any]]:
    """Each sink's type and name, never its address or credentials."""
    out = []
    for sink in list(sinks or [])[:100]:
        if isinstance(sink, Mapping):
            out.append({"type": sink.get("type"), "name": sink.get("name")})
    return out


def change_summary(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> dict[str, Any]:
    """What an audit entry says about a replaced configuration: the new and the previous
    digest, and which top-level sections changed (never their content).

    >>> change_summary({"window": 1, "rules": []}, {"window": 2, "rules": []})["changed"]
    ['window']
    """
    keys = set(after) | set(before or {})
    return {
        "digest": digest(dict(after)),
        "previous_digest": None if before is None else digest(dict(before)),
        "changed": sorted(str(k) for k in keys if (before or {}).get(k) != after.get(k)),
    }


def insert_audit(
    conn: sa.Connection,
    action: str,
    *,
    project: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write one audit entry inside the caller's transaction (so the change and its entry are
    stored together or not at all); returns it."""
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"action: unknown audit action {action!r}; known: {AUDIT_ACTIONS}")
    if project is not None:
        check_name(project, "project")
    entry = {
        "project": project,
        "at": timestamp(),
        "actor": None if actor is None else str(actor)[:256],
        "action": action,
        "target": None if target is None else str(target)[:512],
        "details": json.dumps(dict(details or {}), sort_keys=True, default=str),
    }
    conn.execute(sa.insert(T.audit_log), [entry])
    return {**entry, "details": dict(details or {})}


class OutliersMixin(StoreBase):
    """Outlier scores and the audit log of the :class:`~watchkeeper.store.Store`."""

    def add_outlier_scores(
        self,
        project: str,
        model: str,
        ids: Any,
        ts: Any,
        scores: Any,
        p_values: Any,
        *,
        method: str,
        version: str | None = None,
        window_end: float | None = None,
    ) -> int:
        """Store one row per scored event (rows whose p-value is NaN are skipped); returns how
        many were stored."""
        check_name(method, "method", 32)
        ident = np.asarray(ids, dtype=object)
        cols = {
            "ts": np.asarray(ts, dtype=np.float64),
            "scores": np.asarray(scores, dtype=np.float64),
            "p_values": np.asarray(p_values, dtype=np.float64),
        }
        for name, col in cols.items():
            if col.shape != ident.shape:
                raise ValueError(f"{name}: {col.shape[0]} values for {ident.shape[0]} ids")
        keep = np.isfinite(cols["p_values"]) & np.isfinite(cols["ts"])
        if version is not None:
            check_name(version, "version", 128)
        end = finite(window_end, "window_end")
        rows = [
            {"event_id": str(i)[:256], "ts": t, "score": s, "p_value": p}
            for i, t, s, p in zip(
                ident[keep].tolist(),
                cols["ts"][keep].tolist(),
                np.where(np.isfinite(cols["scores"]), cols["scores"], np.nan)[keep].tolist(),
                cols["p_values"][keep].tolist(),
                strict=True,
            )
        ]
        for r in rows:
            if r["score"] != r["score"]:
                r["score"] = None
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model)
            if rows:
                conn.execute(
                    sa.insert(T.outlier_scores).values(
                        model_id=mid, method=method, version=version, window_end=end
                    ),
                    rows,
                )
        return len(rows)

    def outlier_events(
        self,
        project: str,
        model: str,
        *,
        max_p_value: float = 0.01,
        start: float | None = None,
        end: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Scored events with ``p_value <= max_p_value`` (most unusual first), for the sample
        explorer: ``{"id", "ts", "version", "method", "score", "p_value", "window_end"}``."""
        bound = finite(max_p_value, "max_p_value")
        if bound is None or not 0.0 < bound <= 1.0:
            raise ValueError(f"max_p_value: must be in (0, 1], got {max_p_value!r}")
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise ValueError(f"limit: an integer in [1, {MAX_OUTLIER_ROWS}], got {limit!r}")
        if not 1 <= limit <= MAX_OUTLIER_ROWS:
            raise ValueError(f"limit: an integer in [1, {MAX_OUTLIER_ROWS}], got {limit!r}")
        lo, hi = finite(start, "start"), finite(end, "end")
        o = T.outlier_scores
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            query = sa.select(o).where(o.c.model_id == mid, o.c.p_value <= bound)
            if lo is not None:
                query = query.where(o.c.ts >= lo)
            if hi is not None:
                query = query.where(o.c.ts < hi)
            query = query.order_by(o.c.p_value, o.c.score.desc(), o.c.id).limit(limit)
            rows = conn.execute(query).all()
        return [
            {
                "id": r.event_id,
                "ts": r.ts,
                "version": r.version,
                "method": r.method,
                "score": r.score,
                "p_value": r.p_value,
                "window_end": r.window_end,
            }
            for r in rows
        ]

    def audit(
        self,
        action: str,
        *,
        project: str | None = None,
        actor: str | None = None,
        target: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record an admin action; returns the entry."""
        with self._tx(write=True) as conn:
            return insert_audit(
                conn, action, project=project, actor=actor, target=target, details=details
            )

    def audit_config_change(
        self,
        action: str,
        project: str,
        model: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> list[dict[str, Any]]:
        """Record a replaced monitor configuration or plan (``action`` ``monitors.set`` or
        ``plan.set``) with its :func:`change_summary`, and a ``sinks.set`` entry too when its
        sinks changed (their types and names, never their addresses); returns the entries."""
        if action not in ("monitors.set", "plan.set"):
            raise ValueError(f"action: expected monitors.set or plan.set, got {action!r}")
        target = f"model:{model}"
        old_sinks = (before or {}).get("sinks") or []
        new_sinks = after.get("sinks") or []
        with self._tx(write=True) as conn:
            entries = [
                insert_audit(
                    conn,
                    action,
                    project=project,
                    actor=actor,
                    target=target,
                    details=change_summary(before, after),
                )
            ]
            if digest(old_sinks) != digest(new_sinks):
                details = {
                    "sinks": sink_summary(new_sinks),
                    "previous": sink_summary(old_sinks),
                    "digest": digest(new_sinks),
                    "via": action,
                }
                entries.append(
                    insert_audit(
                        conn, "sinks.set", project=project, actor=actor, target=target,
                        details=details,
                    )
                )  # fmt: skip
        return entries

    def audit_log(
        self,
        project: str | None = None,
        *,
        since: float | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Audit entries, newest first (``project=None``: every project's and the server's)."""
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 10_000:
            raise ValueError(f"limit: an integer in [1, 10000], got {limit!r}")
        lo = finite(since, "since")
        a = T.audit_log
        query = sa.select(a)
        if project is not None:
            query = query.where(a.c.project == project)
        if lo is not None:
            query = query.where(a.c.at >= lo)
        if action is not None:
            query = query.where(a.c.action == action)
        with self._tx() as conn:
            rows = conn.execute(query.order_by(a.c.at.desc(), a.c.id.desc()).limit(limit)).all()
        return [
            {
                "project": r.project,
                "at": r.at,
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "details": loads(r.details) or {},
            }
            for r in rows
        ]
