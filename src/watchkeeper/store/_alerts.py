"""Alerts: one row per stable key, updated in place as the alert moves."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from watchkeeper.store import _schema as T
from watchkeeper.store._base import StoreBase
from watchkeeper.store._events import check_name
from watchkeeper.store._helpers import finite, opt_dict, timestamp


class AlertsMixin(StoreBase):
    """Alerts of the :class:`~watchkeeper.store.Store`."""

    def upsert_alert(self, project: str, alert: Mapping[str, Any]) -> dict[str, Any]:
        """Create or update an alert identified by ``alert["key"]`` (a stable fingerprint such
        as rule + model + subject). Fields given replace stored ones; the stored alert is
        returned with ``id``, ``created_at`` and ``updated_at``."""
        if not isinstance(alert, Mapping):
            raise ValueError(f"alert: expected a dict, got {type(alert).__name__}")
        key = check_name(alert.get("key"), "alert.key", 512)
        for field in ("model", "status", "severity"):
            value = alert.get(field)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"alert.{field}: expected a string or None, got {value!r}")
        opt_dict(alert, "alert")
        al = T.alerts
        now = timestamp()
        with self._tx(write=True) as conn:
            pid = self._project_id(conn, project)
            row = conn.execute(
                sa.select(al).where(al.c.project_id == pid).where(al.c.key == key)
            ).first()
            data = {} if row is None else json.loads(row.data)
            data.update(json.loads(opt_dict(alert, "alert") or "{}"))
            values = {
                "model": data.get("model"),
                "status": data.get("status"),
                "severity": data.get("severity"),
                "data": json.dumps(data),
                "updated_at": now,
            }
            if row is None:
                alert_id = conn.execute(
                    sa.insert(al)
                    .values(project_id=pid, key=key, created_at=now, **values)
                    .returning(al.c.id)
                ).scalar_one()
                created = now
            else:
                conn.execute(sa.update(al).where(al.c.id == row.id).values(**values))
                alert_id, created = row.id, row.created_at
        return {**data, "id": int(alert_id), "created_at": created, "updated_at": now}

    def list_alerts(
        self,
        project: str,
        *,
        model: str | None = None,
        status: str | None = None,
        since: float | None = None,
    ) -> list[dict[str, Any]]:
        """Alerts of the project, most recently updated first."""
        cutoff = finite(since, "since")
        al = T.alerts
        with self._tx() as conn:
            pid = self._project_id(conn, project)
            query = sa.select(al).where(al.c.project_id == pid)
            if model is not None:
                query = query.where(al.c.model == model)
            if status is not None:
                query = query.where(al.c.status == status)
            if cutoff is not None:
                query = query.where(al.c.updated_at >= cutoff)
            rows = conn.execute(query.order_by(al.c.updated_at.desc(), al.c.id.desc())).all()
        return [
            {
                **json.loads(r.data),
                "id": r.id,
                "created_at": r.created_at,
                "updated_at": r.updated_at,
            }
            for r in rows
        ]
