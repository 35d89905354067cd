"""Training jobs: one row per run of a trainer, with its state, trigger, logs and outputs.

States move ``queued -> running -> succeeded | failed | cancelled`` (``queued -> cancelled`` too).
A running job's holder renews ``heartbeat_at``; a job whose heartbeat stopped (its process was
killed) is found by :meth:`JobsMixin.stale_jobs` and requeued or failed by the loop, never lost.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from watchkeeper.store import _schema as T
from watchkeeper.store._base import StoreBase
from watchkeeper.store._events import check_name
from watchkeeper.store._helpers import loads, timestamp

JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE = ("queued", "running")
MAX_LOG = 64_000
"""Characters of a job's log kept (the tail)."""


def _json(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{what}: expected a mapping")
    return json.dumps(value, default=str)


def _job_dict(model: str | None, row: Any) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "model": model,
        "kind": row.kind,
        "state": row.state,
        "spec": loads(row.spec) or {},
        "trigger": loads(row.trigger) or {},
        "outputs": loads(row.outputs) or {},
        "log": row.log or "",
        "error": row.error,
        "holder": row.holder,
        "attempts": int(row.attempts or 0),
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "heartbeat_at": row.heartbeat_at,
    }


class JobsMixin(StoreBase):
    """Training jobs of the :class:`~watchkeeper.store.Store`."""

    def create_job(
        self,
        project: str,
        model: str,
        *,
        kind: str = "retrain",
        spec: Mapping[str, Any] | None = None,
        trigger: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Queue a job for ``model``; refused (ValueError) while another is queued or running.

        Examples
        --------
        >>> from watchkeeper.store import Store
        >>> s = Store("sqlite://")
        >>> s.register_model("p", "m")
        >>> job = s.create_job("p", "m", trigger={"reason": "manual"})
        >>> job["state"], s.create_job("p", "m")
        Traceback (most recent call last):
        ...
        ValueError: model 'm' has job 1 queued; one job per model at a time
        """
        check_name(kind, "kind", 32)
        spec_text, trig_text = _json(spec, "spec"), _json(trigger, "trigger")
        jb = T.jobs
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model)
            busy = conn.execute(
                sa.select(jb.c.id, jb.c.state)
                .where(jb.c.model_id == mid)
                .where(jb.c.state.in_(ACTIVE))
                .limit(1)
            ).first()
            if busy is not None:
                raise ValueError(
                    f"model {model!r} has job {busy.id} {busy.state}; one job per model at a time"
                )
            new_id = conn.execute(
                sa.insert(jb)
                .values(
                    model_id=mid, kind=kind, state="queued", spec=spec_text, trigger=trig_text,
                    attempts=0, created_at=timestamp(),
                )
                .returning(jb.c.id)
            ).scalar_one()
            row = conn.execute(sa.select(jb).where(jb.c.id == new_id)).one()
        return _job_dict(model, row)

    def _job_model(self, conn: sa.Connection, project: str, job_id: int) -> tuple[Any, str]:
        jb, md = T.jobs, T.models
        pid = self._project_id(conn, project)
        row = conn.execute(
            sa.select(jb, md.c.name.label("model_name"))
            .join(md, md.c.id == jb.c.model_id)
            .where(md.c.project_id == pid)
            .where(jb.c.id == int(job_id))
        ).first()
        if row is None:
            raise KeyError(f"job {job_id} not found in project {project!r}")
        return row, str(row.model_name)

    def get_job(self, project: str, job_id: int) -> dict[str, Any]:
        """One job; KeyError when the project has no such job."""
        with self._tx() as conn:
            row, model = self._job_model(conn, project, job_id)
        return _job_dict(model, row)

    def list_jobs(
        self,
        project: str,
        model: str | None = None,
        *,
        state: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The project's (or the model's) jobs, newest first."""
        if state is not None and state not in JOB_STATES:
            raise ValueError(f"state: expected one of {', '.join(JOB_STATES)}, got {state!r}")
        limit = max(1, min(int(limit), 10_000))
        jb, md = T.jobs, T.models
        with self._tx() as conn:
            pid = self._project_id(conn, project)
            query = (
                sa.select(jb, md.c.name.label("model_name"))
                .join(md, md.c.id == jb.c.model_id)
                .where(md.c.project_id == pid)
            )
            if model is not None:
                query = query.where(jb.c.model_id == self._model_id(conn, project, model))
            if state is not None:
                query = query.where(jb.c.state == state)
            rows = conn.execute(query.order_by(jb.c.id.desc()).limit(limit)).all()
        return [_job_dict(r.model_name, r) for r in rows]

    def claim_job(self, project: str, job_id: int, holder: str) -> bool:
        """Move a queued job to running for ``holder``; False if someone else got it first."""
        check_name(holder, "holder", 256)
        jb = T.jobs
        now = timestamp()
        with self._tx(write=True) as conn:
            self._job_model(conn, project, job_id)
            n = conn.execute(
                sa.update(jb)
                .where(jb.c.id == int(job_id))
                .where(jb.c.state == "queued")
                .values(state="running", holder=holder, started_at=now, heartbeat_at=now,
                        attempts=jb.c.attempts + 1)
            ).rowcount
        return bool(n == 1)

    def heartbeat_job(self, project: str, job_id: int, holder: str, log: str | None = None) -> str:
        """Renew a running job's heartbeat (and its log tail); returns the job's state, so a
        runner sees a cancellation."""
        jb = T.jobs
        values: dict[str, Any] = {"heartbeat_at": timestamp()}
        if log is not None:
            values["log"] = log[-MAX_LOG:]
        with self._tx(write=True) as conn:
            _row, _ = self._job_model(conn, project, job_id)
            conn.execute(
                sa.update(jb)
                .where(jb.c.id == int(job_id))
                .where(jb.c.state == "running")
                .where(jb.c.holder == holder)
                .values(**values)
            )
            state = conn.execute(sa.select(jb.c.state).where(jb.c.id == int(job_id))).scalar()
        return str(state)

    def finish_job(
        self,
        project: str,
        job_id: int,
        state: str,
        *,
        outputs: Mapping[str, Any] | None = None,
        log: str | None = None,
        error: str | None = None,
    ) -> dict[str, Any]:
        """Record the end of a job (succeeded, failed or cancelled); a finished job stays so."""
        if state not in ("succeeded", "failed", "cancelled"):
            raise ValueError(f"state: expected succeeded, failed or cancelled, got {state!r}")
        jb = T.jobs
        values: dict[str, Any] = {"state": state, "finished_at": timestamp()}
        if outputs is not None:
            values["outputs"] = _json(outputs, "outputs")
        if log is not None:
            values["log"] = log[-MAX_LOG:]
        if error is not None:
            values["error"] = error[:MAX_LOG]
        with self._tx(write=True) as conn:
            self._job_model(conn, project, job_id)
            conn.execute(
                sa.update(jb)
                .where(jb.c.id == int(job_id))
                .where(jb.c.state.in_(ACTIVE))
                .values(**values)
            )
            row, model = self._job_model(conn, project, job_id)
        return _job_dict(model, row)

    def update_job_outputs(
        self, project: str, job_id: int, outputs: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Merge ``outputs`` into a job's outputs (any state): what the loop learned after the
        trainer ended (the gate's and the shadow test's reports, the registered version)."""
        jb = T.jobs
        _json(outputs, "outputs")
        with self._tx(write=True) as conn:
            row, _ = self._job_model(conn, project, job_id)
            merged = {**(loads(row.outputs) or {}), **outputs}
            conn.execute(
                sa.update(jb).where(jb.c.id == int(job_id)).values(outputs=_json(merged, "outputs"))
            )
            row, model = self._job_model(conn, project, job_id)
        return _job_dict(model, row)

    def cancel_job(self, project: str, job_id: int) -> dict[str, Any]:
        """Cancel a queued or running job (its runner stops the trainer at its next heartbeat)."""
        return self.finish_job(project, job_id, "cancelled", error="cancelled")

    def requeue_job(self, project: str, job_id: int, reason: str) -> dict[str, Any]:
        """Put a running job back in the queue (its runner died); the reason goes to the log."""
        jb = T.jobs
        with self._tx(write=True) as conn:
            row, model = self._job_model(conn, project, job_id)
            conn.execute(
                sa.update(jb)
                .where(jb.c.id == int(job_id))
                .where(jb.c.state == "running")
                .values(state="queued", holder=None,
                        log=((row.log or "") + f"\n[watchkeeper] {reason}\n")[-MAX_LOG:])
            )  # fmt: skip
            row, model = self._job_model(conn, project, job_id)
        return _job_dict(model, row)

    def stale_jobs(self, project: str, older_than: float) -> list[dict[str, Any]]:
        """Running jobs whose heartbeat is older than ``older_than`` seconds (their runner died)."""
        cutoff = timestamp() - float(older_than)
        jb, md = T.jobs, T.models
        with self._tx() as conn:
            pid = self._project_id(conn, project)
            rows = conn.execute(
                sa.select(jb, md.c.name.label("model_name"))
                .join(md, md.c.id == jb.c.model_id)
                .where(md.c.project_id == pid)
                .where(jb.c.state == "running")
                .where(jb.c.heartbeat_at < cutoff)
            ).all()
        return [_job_dict(r.model_name, r) for r in rows]
