"""What the runner keeps between runs: each model's monitor configuration, opaque state (a
streaming detector, an alert rule's memory) and leases (one runner per model at a time)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from watchkeeper.store import _schema as T
from watchkeeper.store._base import StoreBase
from watchkeeper.store._events import check_name
from watchkeeper.store._helpers import loads, opt_dict, timestamp


class MonitoringMixin(StoreBase):
    """Monitor configuration, state and leases of the :class:`~watchkeeper.store.Store`."""

    def put_monitor_config(self, project: str, model: str, config: Mapping[str, Any]) -> None:
        """Store the model's monitor configuration (a JSON-ready dict), replacing the last."""
        text = opt_dict(config, "config")
        if text is None:
            raise ValueError("config: expected a dict")
        mc = T.monitor_configs
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model)
            stmt = self._insert(mc).values(model_id=mid, config=text, updated_at=timestamp())
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["model_id"],
                    set_={"config": stmt.excluded.config, "updated_at": stmt.excluded.updated_at},
                )
            )

    def get_monitor_config(self, project: str, model: str) -> dict[str, Any] | None:
        """The model's monitor configuration, or None."""
        mc = T.monitor_configs
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            text = conn.execute(sa.select(mc.c.config).where(mc.c.model_id == mid)).scalar()
        out: dict[str, Any] | None = loads(text)
        return out

    def put_state(self, project: str, key: str, state: Mapping[str, Any]) -> None:
        """Store opaque JSON state (a streaming detector, an alert rule's memory) under a key."""
        check_name(key, "key", 512)
        text = opt_dict(state, "state")
        if text is None:
            raise ValueError("state: expected a dict")
        st = T.states
        with self._tx(write=True) as conn:
            pid = self._project_id(conn, project)
            stmt = self._insert(st).values(
                project_id=pid, key=key, state=text, updated_at=timestamp()
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["project_id", "key"],
                    set_={"state": stmt.excluded.state, "updated_at": stmt.excluded.updated_at},
                )
            )

    def get_state(self, project: str, key: str) -> dict[str, Any] | None:
        """The state stored under the key, or None."""
        check_name(key, "key", 512)
        st = T.states
        with self._tx() as conn:
            pid = self._project_id(conn, project)
            text = conn.execute(
                sa.select(st.c.state).where(st.c.project_id == pid).where(st.c.key == key)
            ).scalar()
        out: dict[str, Any] | None = loads(text)
        return out

    def acquire_lease(self, project: str, key: str, holder: str, ttl: float) -> bool:
        """Take (or renew) the lease ``key`` for ``holder`` for ``ttl`` seconds.

        True when ``holder`` now holds it: nobody held it, its holder let it lapse (did not
        renew it within the ttl the holder asked for), or ``holder`` held it already. One
        statement decides, in one transaction, so two processes sharing a database (server
        replicas on one PostgreSQL, a cron job beside a server) never both hold it.

        >>> from watchkeeper.store import Store
        >>> s = Store("sqlite://")
        >>> s.create_project("p")
        >>> s.acquire_lease("p", "runner:m", "replica-a", ttl=60)
        True
        >>> s.acquire_lease("p", "runner:m", "replica-b", ttl=60)
        False
        >>> s.release_lease("p", "runner:m", "replica-a")
        >>> s.acquire_lease("p", "runner:m", "replica-b", ttl=60)
        True
        """
        check_name(key, "key", 500)
        check_name(holder, "holder", 500)
        ttl = float(ttl)
        if not (math.isfinite(ttl) and ttl > 0):
            raise ValueError(f"ttl: expected a positive number of seconds, got {ttl!r}")
        st = T.states
        text = json.dumps({"lease": holder})
        now = timestamp()
        # A lease row keeps its expiry time in ``updated_at``: the holder's ttl decides.
        with self._tx(write=True) as conn:
            pid = self._project_id(conn, project)
            row_key = f"lease:{key}"
            inserted = conn.execute(
                self._insert(st)
                .values(project_id=pid, key=row_key, state=text, updated_at=now + ttl)
                .on_conflict_do_nothing(index_elements=["project_id", "key"])
            ).rowcount
            if inserted == 1:
                return True
            taken = conn.execute(
                sa.update(st)
                .where(st.c.project_id == pid)
                .where(st.c.key == row_key)
                .where((st.c.state == text) | (st.c.updated_at < now))
                .values(state=text, updated_at=now + ttl)
            ).rowcount
        return bool(taken == 1)

    def release_lease(self, project: str, key: str, holder: str) -> None:
        """Give the lease up, if ``holder`` holds it (otherwise nothing happens)."""
        check_name(key, "key", 500)
        st = T.states
        with self._tx(write=True) as conn:
            pid = self._project_id(conn, project)
            conn.execute(
                sa.delete(st)
                .where(st.c.project_id == pid)
                .where(st.c.key == f"lease:{key}")
                .where(st.c.state == json.dumps({"lease": holder}))
            )

    def delete_state(self, project: str, key: str) -> bool:
        """Forget the state under the key; True if there was one."""
        check_name(key, "key", 512)
        st = T.states
        with self._tx(write=True) as conn:
            pid = self._project_id(conn, project)
            n = conn.execute(
                sa.delete(st).where(st.c.project_id == pid).where(st.c.key == key)
            ).rowcount
        return bool(n)
