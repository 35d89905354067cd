"""Findings (the checks' verdicts per window) and metric values (time series)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from watchkeeper.store import _schema as T
from watchkeeper.store._base import StoreBase
from watchkeeper.store._events import check_name
from watchkeeper.store._helpers import finite, loads, nan_if_none, opt_dict, opt_float, timestamp

MAX_EXPLANATION_BYTES = 64 * 1024
"""Largest explanation (JSON) a finding keeps."""


def _finding_dict(model: str, r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "model": model,
        "check": r.check_name,
        "subject": r.subject,
        "method": r.method,
        "statistic": r.statistic,
        "p_value": r.p_value,
        "alpha": r.alpha,
        "threshold": r.threshold,
        "drift": r.drift,
        "severity": r.severity,
        "window_start": r.window_start,
        "window_end": r.window_end,
        "details": loads(r.details) or {},
        "created_at": r.created_at,
    }


class FindingsMixin(StoreBase):
    """Findings and metric values of the :class:`~watchkeeper.store.Store`."""

    _FINDING_NUMBERS = ("statistic", "p_value", "alpha", "threshold", "window_start", "window_end")
    _FINDING_KEYS = frozenset(
        {"check", "subject", "method", "drift", "severity", "details", *_FINDING_NUMBERS}
    )

    def add_findings(self, project: str, model: str, findings: Sequence[Mapping[str, Any]]) -> int:
        """Store findings (dicts with ``check, subject, method, statistic, p_value, alpha,
        threshold, drift, severity, window_start, window_end, details``); other keys are kept
        in ``details``. All or nothing; returns how many were stored."""
        if isinstance(findings, Mapping) or not isinstance(findings, Sequence):
            raise ValueError("findings: expected a list of finding dicts")
        now = timestamp()
        rows = []
        for i, f in enumerate(findings):
            what = f"findings[{i}]"
            if not isinstance(f, Mapping):
                raise ValueError(f"{what}: expected a dict, got {type(f).__name__}")
            check = f.get("check")
            if not isinstance(check, str) or not check:
                raise ValueError(f"{what}.check: expected a non-empty string, got {check!r}")
            row: dict[str, Any] = {"check_name": check, "created_at": now}
            for key in ("subject", "method", "severity"):
                value = f.get(key)
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"{what}.{key}: expected a string or None, got {value!r}")
                row[key] = value
            for key in self._FINDING_NUMBERS:
                row[key] = opt_float(f.get(key), f"{what}.{key}")
            drift = f.get("drift")
            if drift is not None and not isinstance(drift, bool | np.bool_):
                raise ValueError(f"{what}.drift: expected a bool or None, got {drift!r}")
            row["drift"] = None if drift is None else bool(drift)
            details = dict(f.get("details") or {})
            extra = {k: v for k, v in f.items() if k not in self._FINDING_KEYS}
            if extra:
                details.setdefault("extra", {}).update(extra)
            row["details"] = opt_dict(details, f"{what}.details")
            rows.append(row)
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model)
            if rows:
                conn.execute(sa.insert(T.findings).values(model_id=mid), rows)
        return len(rows)

    def list_findings(
        self,
        project: str,
        model: str,
        *,
        since: float | None = None,
        check: str | None = None,
        subject: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Findings of the model, oldest window first; ``since`` keeps those whose window ends
        at or after it (or, without a window, were stored at or after it); ``limit`` keeps the
        newest ``limit``."""
        cutoff = finite(since, "since")
        fi = T.findings
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            order_key = sa.func.coalesce(fi.c.window_end, fi.c.created_at)
            query = sa.select(fi).where(fi.c.model_id == mid)
            if cutoff is not None:
                query = query.where(order_key >= cutoff)
            if check is not None:
                query = query.where(fi.c.check_name == check)
            if subject is not None:
                query = query.where(fi.c.subject == subject)
            if limit is not None:
                query = query.order_by(order_key.desc(), fi.c.id.desc()).limit(int(limit))
            else:
                query = query.order_by(order_key, fi.c.id)
            rows = list(conn.execute(query).all())
        if limit is not None:
            rows.reverse()
        return [_finding_dict(model, r) for r in rows]

    def get_finding(self, project: str, model: str, finding_id: int) -> dict[str, Any]:
        """One finding of the model by its id (as :meth:`list_findings` gives it); KeyError
        when the model has none with that id."""
        if not isinstance(finding_id, int) or isinstance(finding_id, bool) or finding_id < 1:
            raise ValueError(f"finding_id: a positive integer, got {finding_id!r}")
        fi = T.findings
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            row = conn.execute(
                sa.select(fi).where(fi.c.model_id == mid, fi.c.id == finding_id)
            ).first()
        if row is None:
            raise KeyError(f"model {model!r} has no finding {finding_id}")
        return _finding_dict(model, row)

    def set_finding_explanation(
        self, project: str, model: str, finding_id: int, explanation: Mapping[str, Any]
    ) -> None:
        """Keep ``explanation`` in the finding's details (``details["explanation"]``, at most
        :data:`MAX_EXPLANATION_BYTES` of JSON), replacing an earlier one."""
        text = json.dumps(dict(explanation), default=str)
        if len(text) > MAX_EXPLANATION_BYTES:
            raise ValueError(
                f"explanation: {len(text)} bytes of JSON, more than {MAX_EXPLANATION_BYTES}"
            )
        self.get_finding(project, model, finding_id)  # KeyError when it is not this model's
        fi = T.findings
        with self._tx(write=True) as conn:
            current = conn.execute(sa.select(fi.c.details).where(fi.c.id == finding_id)).scalar()
            details = dict(loads(current) or {})
            details["explanation"] = json.loads(text)
            conn.execute(
                sa.update(fi)
                .where(fi.c.id == finding_id)
                .values(details=opt_dict(details, "details"))
            )

    def add_metric_values(
        self,
        project: str,
        model: str | None,
        ts: float,
        values: Mapping[str, float],
        labels: Mapping[str, Any] | None = None,
    ) -> int:
        """Store metric values at time ``ts`` (``model=None``: a project-level metric, e.g. the
        server's own system figures). NaN is stored as missing. Returns how many."""
        at = finite(ts, "ts")
        if at is None:
            raise ValueError("ts: expected a time (seconds since the epoch)")
        if not isinstance(values, Mapping):
            raise ValueError(
                f"values: expected a dict of name -> number, got {type(values).__name__}"
            )
        rows = []
        for name, value in values.items():
            check_name(name, "values (a metric name)", 256)
            number = opt_float(value, f"values.{name}")
            if number is not None and not math.isfinite(number):
                number = None
            rows.append({"name": name, "ts": at, "value": number})
        label_text = opt_dict(labels, "labels")
        with self._tx(write=True) as conn:
            pid = self._project_id(conn, project)
            mid = None if model is None else self._model_id(conn, project, model)
            if rows:
                conn.execute(
                    sa.insert(T.metric_values).values(
                        project_id=pid, model_id=mid, labels=label_text
                    ),
                    rows,
                )
        return len(rows)

    def list_metric_values(
        self,
        project: str,
        model: str | None = None,
        *,
        name: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[dict[str, Any]]:
        """Metric values, oldest first: ``{"name", "ts", "value", "labels", "model"}``.
        ``model=None`` lists the project-level ones."""
        lo, hi = finite(since, "since"), finite(until, "until")
        mv = T.metric_values
        with self._tx() as conn:
            pid = self._project_id(conn, project)
            query = sa.select(mv.c.name, mv.c.ts, mv.c.value, mv.c.labels).where(
                mv.c.project_id == pid
            )
            if model is None:
                query = query.where(mv.c.model_id.is_(None))
            else:
                query = query.where(mv.c.model_id == self._model_id(conn, project, model))
            if name is not None:
                query = query.where(mv.c.name == name)
            if lo is not None:
                query = query.where(mv.c.ts >= lo)
            if hi is not None:
                query = query.where(mv.c.ts < hi)
            rows = conn.execute(query.order_by(mv.c.ts, mv.c.id)).all()
        return [
            {
                "name": r.name,
                "ts": r.ts,
                "value": nan_if_none(r.value),
                "labels": loads(r.labels) or {},
                "model": model,
            }
            for r in rows
        ]
