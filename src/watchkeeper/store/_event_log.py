"""The event log: events and labels in, windows out, ingest counters, serving environments and
retention. How a batch is laid out in ``event_chunks`` is the business of
:mod:`watchkeeper.store._events`; this module runs the SQL."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from watchkeeper.store import _schema as T
from watchkeeper.store._base import StoreBase
from watchkeeper.store._codec import canonical
from watchkeeper.store._events import (
    Chunk,
    EncodedBatch,
    check_ids,
    check_name,
    decode_window,
    encode_events,
    encode_labels,
)
from watchkeeper.store._helpers import fetch_rows, finite, opt_dict, timestamp
from watchkeeper.store._types import IngestReport, IngestResult, LabelsReport
from watchkeeper.window import Window

_IN_CHUNK = 500  # ids per IN (...) list


def _new_mask(ids: Any, new_ids: set[str], accepted: int) -> np.ndarray:
    """One boolean per event of a batch: stored by this call (the first occurrence of a new
    id); vectorised, with the common all-new and none-new cases free."""
    values = np.asarray(ids, dtype=object).astype(str) if ids is not None else np.empty(0, str)
    n = len(values)
    mask = np.zeros(n, dtype=bool)
    if accepted == 0 or n == 0:
        return mask
    _, first = np.unique(values, return_index=True)
    if accepted == n:
        mask[:] = True
        return mask
    mask[first] = np.isin(values[first], np.asarray(sorted(new_ids), dtype=str))
    return mask


CHUNK_ROWS = 10_000
"""Most events in one stored chunk; a bigger batch is stored as several chunks."""
_LABEL_LOCK = 7_271_002  # advisory lock class: events (shared) vs labels (exclusive) per model
_PG_SET_LABELS = """
UPDATE events AS e SET label = u.label
FROM unnest(%(ids)b::text[], %(labels)b::text[]) AS u(event_id, label)
WHERE e.model_id = %(model_id)s AND e.event_id = u.event_id
"""
_SQLITE_INSERT_EVENTS = (
    "INSERT INTO events (model_id, event_id, ts, version, chunk_id, chunk_row, received_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model_id, event_id) DO NOTHING"
)
_PG_INSERT_EVENTS = """
INSERT INTO events (model_id, event_id, ts, version, chunk_id, chunk_row, received_at)
SELECT %(model_id)s, u.event_id, u.ts, u.version, %(chunk_id)s, u.chunk_row, %(received_at)s
FROM unnest(%(ids)b::text[], %(ts)b::float8[], %(versions)b::text[], %(rows)b::int4[])
     AS u(event_id, ts, version, chunk_row)
ON CONFLICT (model_id, event_id) DO NOTHING
RETURNING event_id
"""


class EventLogMixin(StoreBase):
    """Events and labels of the :class:`~watchkeeper.store.Store`."""

    def _schema_id(self, conn: sa.Connection, model_id: int, spec_hash: str, spec: Any) -> int:
        hit = self._spec_ids.get((model_id, spec_hash))
        if hit is not None:
            return hit
        fs = T.feature_schemas
        conn.execute(
            self._insert(fs)
            .values(model_id=model_id, spec_hash=spec_hash, spec=canonical(spec))
            .on_conflict_do_nothing(index_elements=["model_id", "spec_hash"])
        )
        return int(
            conn.execute(
                sa.select(fs.c.id)
                .where(fs.c.model_id == model_id)
                .where(fs.c.spec_hash == spec_hash)
            ).scalar_one()
        )

    def _check_dims(
        self, conn: sa.Connection, model_id: int, emb: int | None, k: int | None
    ) -> None:
        if emb is None and k is None:
            return
        known = self._dims.get(model_id)
        if known is not None and emb in (None, known[0]) and k in (None, known[1]):
            return  # widths are set once per model and never change
        row = conn.execute(
            sa.select(T.models.c.embedding_dim, T.models.c.n_classes).where(
                T.models.c.id == model_id
            )
        ).one()
        update: dict[str, int] = {}
        for what, new, old, col in (
            ("embeddings", emb, row.embedding_dim, "embedding_dim"),
            ("probs", k, row.n_classes, "n_classes"),
        ):
            if new is None:
                continue
            if old is None:
                update[col] = new
            elif old != new:
                raise ValueError(
                    f"{what}: {new} columns, but this model's stored events have {old}"
                )
        if update:
            conn.execute(sa.update(T.models).where(T.models.c.id == model_id).values(**update))
        else:
            self._dims[model_id] = (row.embedding_dim, row.n_classes)

    def log_events(
        self,
        project: str,
        model: str,
        events: Window,
        *,
        environment: dict[str, Any] | None = None,
    ) -> IngestResult:
        """Store a batch of events in one transaction, idempotent by (model, id).

        Events whose id is already stored (or repeated in the batch) are ignored and counted
        as duplicates, so a re-sent batch changes nothing. The model must be registered. A bad
        batch (wrong types, NaN time, infinite score, partial embedding row, ...) raises
        ValueError naming the field and index, and nothing is written. ``environment`` (the
        serving environment the SDK reports) is recorded with first and last time seen.
        :meth:`log_events_report` also says which events were new.
        """
        return self.log_events_report(project, model, events, environment=environment).result()

    def log_events_report(
        self,
        project: str,
        model: str,
        events: Window,
        *,
        environment: dict[str, Any] | None = None,
    ) -> IngestReport:
        """:meth:`log_events`, telling which events of the batch this call stored.

        Examples
        --------
        >>> from watchkeeper.store import Store
        >>> store = Store("sqlite://"); store.create_project("p"); store.register_model("p", "m")
        >>> _ = store.log_events("p", "m", Window.from_columns(ids=["a", "b"], ts=[1.0, 2.0]))
        >>> batch = Window.from_columns(ids=["b", "c", "c"], ts=[2.0, 3.0, 3.0])
        >>> store.log_events_report("p", "m", batch).new.tolist()
        [False, True, False]
        """
        received = timestamp()
        batch = encode_events(events)  # validates the whole batch: indices in errors are its own
        parts = [batch]
        if len(events) > CHUNK_ROWS:
            # big batches are stored as several chunks, so a small window never decodes a
            # million-row chunk; ids repeated across parts are caught by the primary key
            parts = [
                encode_events(events.take(np.arange(i, min(i + CHUNK_ROWS, len(events)))))
                for i in range(0, len(events), CHUNK_ROWS)
            ]
        env_text = opt_dict(environment, "environment")
        new_ids: set[str] = set()
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model)
            self._label_lock(conn, mid, shared=True)
            self._check_dims(conn, mid, batch.embedding_dim, batch.n_classes)
            sid = self._schema_id(conn, mid, batch.spec_hash, batch.spec)
            accepted = 0
            for part in parts:
                new, ids = (
                    self._insert_events(conn, part, mid, sid, received) if len(part) else (0, [])
                )
                if new:
                    self._copy_early_labels(conn, mid, part.ids)
                accepted += new
                new_ids.update(ids)
            duplicates = batch.n_in - accepted
            self._count(
                conn,
                mid,
                received,
                accepted=accepted,
                duplicates=duplicates,
                last_event_ts=max(batch.ts) if len(batch) else None,
            )
            if env_text is not None:
                self._record_environment(conn, mid, env_text, received, accepted)
        self._committed_model(project, model, mid)
        self._spec_ids[(mid, batch.spec_hash)] = sid
        self._specs[sid] = batch.spec
        return IngestReport(accepted, duplicates, _new_mask(events.ids, new_ids, accepted))

    def _insert_events(
        self, conn: sa.Connection, batch: EncodedBatch, model_id: int, schema_id: int, now: float
    ) -> tuple[int, list[str]]:
        """Write the batch's chunk, then its index rows skipping ids already stored; returns
        how many events were new and their ids (all of the batch's when every one was new). A
        chunk none of whose events were new is removed again."""
        ec = T.event_chunks
        chunk_id = conn.execute(
            sa.insert(ec)
            .values(
                model_id=model_id,
                schema_id=schema_id,
                n_rows=len(batch),
                min_ts=min(batch.ts),
                max_ts=max(batch.ts),
                nums=batch.nums,
                objs=batch.objs,
                embeddings=batch.embeddings,
                embedding_dim=batch.embedding_dim,
                probs=batch.probs,
                n_classes=batch.n_classes,
                created_at=now,
                ids=batch.ids_json,
                ts=batch.ts_bytes,
                versions=batch.versions_json,
            )
            .returning(ec.c.id)
        ).scalar_one()
        if conn.dialect.name == "postgresql":
            # One statement with one array per column: the query text stays small (psycopg
            # parses a 4,000-placeholder VALUES list slower than the server inserts it).
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cursor.execute(
                _PG_INSERT_EVENTS,
                {
                    "model_id": model_id,
                    "chunk_id": chunk_id,
                    "received_at": now,
                    "ids": batch.ids,
                    "ts": batch.ts,
                    "versions": batch.versions,
                    "rows": list(range(len(batch))),
                },
            )
            new_ids = [str(r[0]) for r in cursor.fetchall()]
            accepted = len(new_ids)
            cursor.close()
        else:
            # the driver's executemany; SQLite runs one writer at a time, so the change
            # count of this connection is exactly the number of new events
            dbapi: Any = conn.connection.driver_connection
            before = dbapi.total_changes
            dbapi.executemany(
                _SQLITE_INSERT_EVENTS,
                [
                    (model_id, i, t, v, chunk_id, r, now)
                    for r, (i, t, v) in enumerate(
                        zip(batch.ids, batch.ts, batch.versions, strict=True)
                    )
                ],
            )
            accepted = dbapi.total_changes - before
            new_ids = batch.ids
            if 0 < accepted < len(batch):
                # the rows of this chunk are exactly the events this call stored
                ev = T.events
                new_ids = list(
                    conn.execute(
                        sa.select(ev.c.event_id).where(ev.c.chunk_id == chunk_id)
                    ).scalars()
                )
        if accepted == 0:
            conn.execute(sa.delete(ec).where(ec.c.id == chunk_id))
            return 0, []
        return accepted, new_ids

    def _count(
        self,
        conn: sa.Connection,
        model_id: int,
        now: float,
        *,
        accepted: int = 0,
        duplicates: int = 0,
        rejected: int = 0,
        last_event_ts: float | None = None,
    ) -> None:
        ic = T.ingest_counters
        stmt = self._insert(ic).values(
            model_id=model_id,
            bucket=int(now // 60 * 60),
            accepted=accepted,
            duplicates=duplicates,
            rejected=rejected,
            last_event_ts=last_event_ts,
            last_received_at=now,
        )
        newer = stmt.excluded.last_event_ts
        stmt = stmt.on_conflict_do_update(
            index_elements=["model_id", "bucket"],
            set_={
                "accepted": ic.c.accepted + stmt.excluded.accepted,
                "duplicates": ic.c.duplicates + stmt.excluded.duplicates,
                "rejected": ic.c.rejected + stmt.excluded.rejected,
                "last_event_ts": sa.case(
                    (ic.c.last_event_ts.is_(None), newer),
                    (newer > ic.c.last_event_ts, newer),
                    else_=ic.c.last_event_ts,
                ),
                "last_received_at": stmt.excluded.last_received_at,
            },
        )
        conn.execute(stmt)

    def _record_environment(
        self, conn: sa.Connection, model_id: int, env_text: str, now: float, accepted: int
    ) -> None:
        se = T.serving_environments
        env_hash = hashlib.sha256(canonical(json.loads(env_text)).encode()).hexdigest()
        stmt = self._insert(se).values(
            model_id=model_id,
            env_hash=env_hash,
            environment=env_text,
            first_seen=now,
            last_seen=now,
            events=accepted,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["model_id", "env_hash"],
            set_={
                "last_seen": stmt.excluded.last_seen,
                "events": se.c.events + stmt.excluded.events,
            },
        )
        conn.execute(stmt)

    def record_rejected(self, project: str, model: str, n: int) -> None:
        """Count ``n`` events refused before reaching the store (for :meth:`ingest_stats`)."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"n: expected a count >= 0, got {n!r}")
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model)
            self._count(conn, mid, timestamp(), rejected=int(n))

    def log_labels(
        self,
        project: str,
        model: str,
        ids: Sequence[str] | np.ndarray,
        labels: Sequence[Any] | np.ndarray,
    ) -> int:
        """Store ground truth by (model, id), before or after its event arrives.

        A later label for the same id replaces the earlier one. Returns the number of labels
        stored (distinct ids). ``ids`` and ``labels`` must have the same length; a label may not
        be None or NaN. :meth:`log_labels_report` also says which labels were new or changed.
        """
        return self.log_labels_report(project, model, ids, labels).stored

    def log_labels_report(
        self,
        project: str,
        model: str,
        ids: Sequence[str] | np.ndarray,
        labels: Sequence[Any] | np.ndarray,
    ) -> LabelsReport:
        """:meth:`log_labels`, telling which ids got a new or different label (a label sent
        again unchanged is stored again but is not a change).

        Examples
        --------
        >>> from watchkeeper.store import Store
        >>> store = Store("sqlite://"); store.create_project("p"); store.register_model("p", "m")
        >>> store.log_labels_report("p", "m", ["a", "b"], [1, 0]).changed.tolist()
        [True, True]
        >>> store.log_labels_report("p", "m", ["a", "b", "c"], [1, 1, 0]).changed.tolist()
        [False, True, True]
        """
        id_list, texts = encode_labels(ids, labels)
        now = timestamp()
        lb = T.labels
        before: dict[str, str] = {}
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model)
            self._label_lock(conn, mid, shared=False)
            if id_list:
                for i in range(0, len(id_list), _IN_CHUNK):
                    rows = conn.execute(
                        sa.select(lb.c.event_id, lb.c.label)
                        .where(lb.c.model_id == mid)
                        .where(lb.c.event_id.in_(id_list[i : i + _IN_CHUNK]))
                    ).all()
                    before.update((str(r[0]), str(r[1])) for r in rows)
                stmt = self._insert(lb)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["model_id", "event_id"],
                    set_={"label": stmt.excluded.label, "received_at": stmt.excluded.received_at},
                )
                conn.execute(
                    stmt,
                    [
                        {"model_id": mid, "event_id": i, "label": t, "received_at": now}
                        for i, t in zip(id_list, texts, strict=True)
                    ],
                )
                self._set_event_labels(conn, mid, id_list, texts)
        self._committed_model(project, model, mid)
        changed = np.fromiter(
            (before.get(i) != t for i, t in zip(id_list, texts, strict=True)),
            dtype=bool,
            count=len(id_list),
        )
        return LabelsReport(id_list, len(id_list), changed)

    @staticmethod
    def _label_lock(conn: sa.Connection, model_id: int, *, shared: bool) -> None:
        """PostgreSQL: event batches of a model run side by side (shared), a labels batch
        alone (exclusive), so each sees the other's committed rows and ``events.label`` never
        misses a label that raced its event. SQLite already runs one writer at a time."""
        if conn.dialect.name == "postgresql":
            kind = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
            conn.exec_driver_sql(f"SELECT {kind}({_LABEL_LOCK}, {int(model_id)})")

    @staticmethod
    def _set_event_labels(
        conn: sa.Connection, model_id: int, ids: Sequence[str], texts: Sequence[str]
    ) -> None:
        ev = T.events
        if conn.dialect.name == "postgresql":
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cursor.execute(_PG_SET_LABELS, {"model_id": model_id, "ids": ids, "labels": texts})
            cursor.close()
            return
        conn.execute(
            sa.update(ev)
            .where(ev.c.model_id == model_id)
            .where(ev.c.event_id == sa.bindparam("b_id"))
            .values(label=sa.bindparam("b_label")),
            [{"b_id": i, "b_label": t} for i, t in zip(ids, texts, strict=True)],
        )

    def _copy_early_labels(self, conn: sa.Connection, model_id: int, ids: Sequence[str]) -> None:
        """Give new events the labels that arrived before them."""
        found: list[Any] = []
        if conn.dialect.name == "postgresql":
            # one array parameter instead of an IN list of 1,000 placeholders to parse
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cursor.execute(
                "SELECT event_id, label FROM labels "
                "WHERE model_id = %(model_id)s AND event_id = ANY(%(ids)b::text[])",
                {"model_id": model_id, "ids": list(ids)},
            )
            found = cursor.fetchall()
            cursor.close()
        else:
            found = list(
                conn.exec_driver_sql(
                    "SELECT event_id, label FROM labels WHERE model_id = ? "
                    "AND event_id IN (SELECT value FROM json_each(?))",
                    (model_id, json.dumps(list(ids))),
                ).all()
            )
        if found:
            self._set_event_labels(conn, model_id, [r[0] for r in found], [r[1] for r in found])

    def _load_specs(self, conn: sa.Connection, model_id: int) -> None:
        fs = T.feature_schemas
        for sid, spec in conn.execute(
            sa.select(fs.c.id, fs.c.spec).where(fs.c.model_id == model_id)
        ).all():
            self._specs[int(sid)] = json.loads(spec)

    @staticmethod
    def _fetch_chunks(
        conn: sa.Connection, ids: set[int], *, embeddings: bool = True
    ) -> dict[int, Chunk]:
        ec = T.event_chunks
        # a window without embeddings does not even read their bytes
        emb: Any = ec.c.embeddings if embeddings else sa.null().label("embeddings")
        wanted = sorted(ids)
        out: dict[int, Chunk] = {}
        for i in range(0, len(wanted), _IN_CHUNK):
            query = sa.select(
                ec.c.id,
                ec.c.schema_id,
                ec.c.n_rows,
                ec.c.nums,
                ec.c.objs,
                emb,
                ec.c.embedding_dim,
                ec.c.probs,
                ec.c.n_classes,
                ec.c.ids,
                ec.c.ts,
                ec.c.versions,
            ).where(ec.c.id.in_(wanted[i : i + _IN_CHUNK]))
            for row in fetch_rows(conn, query):
                out[int(row[0])] = Chunk(*row[1:])
        return out

    def _event_filter(
        self,
        query: Any,
        model_id: int,
        start: float | None,
        end: float | None,
        version: str | None,
    ) -> Any:
        ev = T.events
        query = query.where(ev.c.model_id == model_id)
        if start is not None:
            query = query.where(ev.c.ts >= start)
        if end is not None:
            query = query.where(ev.c.ts < end)
        if version is not None:
            query = query.where(ev.c.version == version)
        return query

    @staticmethod
    def _window_args(
        start: Any, end: Any, last_n: Any, version: Any
    ) -> tuple[float | None, float | None, int | None]:
        lo = finite(start, "start")
        hi = finite(end, "end")
        if last_n is not None and (
            isinstance(last_n, bool) or not isinstance(last_n, int | np.integer) or last_n < 1
        ):
            raise ValueError(f"last_n: expected a positive integer, got {last_n!r}")
        if version is not None:
            check_name(version, "version")
        return lo, hi, None if last_n is None else int(last_n)

    def read_window(
        self,
        project: str,
        model: str,
        *,
        start: float | None = None,
        end: float | None = None,
        last_n: int | None = None,
        version: str | None = None,
        embeddings: bool = True,
    ) -> Window:
        """Events of a time range ``[start, end)`` and/or the last ``last_n`` of them, as columns.

        Ordered by time. Labels are joined by (model, id) (``None`` where not known). Optional
        ``version`` keeps that model version's events only; ``embeddings=False`` leaves them
        out (``window.embeddings`` is None) and skips reading them. ``start``/``end`` of the
        returned window are the bounds asked for, else the first and last event time.
        """
        lo, hi, n_last = self._window_args(start, end, last_n, version)
        ev = T.events
        with self._tx(consistent=True) as conn:
            mid = self._model_id(conn, project, model)
            since = lo
            if n_last is not None:
                # the last N are the events from the N-th newest time on (ties trimmed below)
                cutoff = conn.execute(
                    self._event_filter(sa.select(ev.c.ts), mid, lo, hi, version)
                    .order_by(ev.c.ts.desc())
                    .limit(1)
                    .offset(n_last - 1)
                ).scalar()
                if cutoff is not None:
                    since = float(cutoff)
            groups = fetch_rows(
                conn,
                self._event_filter(
                    sa.select(
                        ev.c.chunk_id,
                        sa.func.count(),
                        sa.func.min(ev.c.chunk_row),
                        sa.func.max(ev.c.chunk_row),
                    ),
                    mid,
                    since,
                    hi,
                    version,
                ).group_by(ev.c.chunk_id),
            )
            # A chunk whose selected rows are a full range needs no per-event row; one with
            # gaps (a re-sent id dropped at insert, a version filter) is read row by row.
            spans = {int(c): (int(lo_row), int(hi_row)) for c, k, lo_row, hi_row in groups
                     if k == hi_row - lo_row + 1}  # fmt: skip
            gappy = sorted(int(g[0]) for g in groups if int(g[0]) not in spans)
            rows_of: dict[int, list[int]] = {c: [] for c in gappy}
            for i in range(0, len(gappy), _IN_CHUNK):
                query = self._event_filter(
                    sa.select(ev.c.chunk_id, ev.c.chunk_row), mid, since, hi, version
                ).where(ev.c.chunk_id.in_(gappy[i : i + _IN_CHUNK]))
                for c, row in fetch_rows(conn, query):
                    rows_of[int(c)].append(int(row))
            labelled = fetch_rows(
                conn,
                self._event_filter(
                    sa.select(ev.c.chunk_id, ev.c.chunk_row, ev.c.label), mid, since, hi, version
                ).where(ev.c.label.is_not(None)),
            )
            chunks = self._fetch_chunks(
                conn, {int(g[0]) for g in groups}, embeddings=bool(embeddings)
            )
            if any(c.schema_id not in self._specs for c in chunks.values()):
                self._load_specs(conn, mid)
        self._committed_model(project, model, mid)
        order = sorted(chunks)
        index = {c: i for i, c in enumerate(order)}
        positions = [
            np.arange(spans[c][0], spans[c][1] + 1)
            if c in spans
            else np.sort(np.array(rows_of[c], dtype=np.int64))
            for c in order
        ]
        return decode_window(
            [chunks[c] for c in order],
            positions,
            [(index[int(c)], int(r), t) for c, r, t in labelled if int(c) in index],
            self._specs,
            embedding_dim=None,
            n_classes=None,
            last_n=n_last,
            start=lo,
            end=hi,
        )

    def count_events(
        self,
        project: str,
        model: str,
        *,
        start: float | None = None,
        end: float | None = None,
        version: str | None = None,
    ) -> int:
        """Number of stored events of the model (in ``[start, end)``, of a version)."""
        lo, hi, _ = self._window_args(start, end, None, version)
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            query = self._event_filter(
                sa.select(sa.func.count()).select_from(T.events), mid, lo, hi, version
            )
            return int(conn.execute(query).scalar_one())

    def first_event_ts(self, project: str, model: str) -> float | None:
        """Time of the oldest stored event of the model (None without events)."""
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            first = conn.execute(
                sa.select(sa.func.min(T.events.c.ts)).where(T.events.c.model_id == mid)
            ).scalar()
        return None if first is None else float(first)

    def event_times(self, project: str, model: str, ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Event time of each id (``float64``), NaN for ids not stored (e.g. label lag)."""
        id_array = check_ids(ids)
        out = np.full(len(id_array), np.nan)
        if not len(id_array):
            return out
        ev = T.events
        found: dict[str, float] = {}
        unique = list(dict.fromkeys(id_array.tolist()))
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            for i in range(0, len(unique), _IN_CHUNK):
                chunk = unique[i : i + _IN_CHUNK]
                found.update(
                    conn.execute(
                        sa.select(ev.c.event_id, ev.c.ts)
                        .where(ev.c.model_id == mid)
                        .where(ev.c.event_id.in_(chunk))
                    ).all()
                )
        out[:] = [found.get(i, math.nan) for i in id_array.tolist()]
        return out

    def serving_environments(
        self, project: str, model: str, since: float | None = None
    ) -> list[dict[str, Any]]:
        """Distinct serving environments reported with the model's batches, oldest first:
        ``{"environment", "first_seen", "last_seen", "events"}``; ``since`` keeps those seen
        at or after that time."""
        cutoff = finite(since, "since")
        se = T.serving_environments
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            query = sa.select(se).where(se.c.model_id == mid)
            if cutoff is not None:
                query = query.where(se.c.last_seen >= cutoff)
            rows = conn.execute(query.order_by(se.c.first_seen)).all()
        return [
            {
                "environment": json.loads(r.environment),
                "first_seen": r.first_seen,
                "last_seen": r.last_seen,
                "events": int(r.events),
            }
            for r in rows
        ]

    def ingest_stats(self, project: str, model: str, since: float | None = None) -> dict[str, Any]:
        """Pipeline health since a time: ``accepted``, ``duplicates``, ``rejected`` (counted per
        minute), ``last_event_ts`` (newest event time stored) and ``last_received_at``."""
        cutoff = finite(since, "since")
        ic = T.ingest_counters
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            query = sa.select(
                sa.func.coalesce(sa.func.sum(ic.c.accepted), 0),
                sa.func.coalesce(sa.func.sum(ic.c.duplicates), 0),
                sa.func.coalesce(sa.func.sum(ic.c.rejected), 0),
                sa.func.max(ic.c.last_received_at),
            ).where(ic.c.model_id == mid)
            if cutoff is not None:
                query = query.where(ic.c.bucket >= int(cutoff // 60 * 60))
            accepted, duplicates, rejected, last_received = conn.execute(query).one()
            last_ts = conn.execute(
                sa.select(sa.func.max(T.events.c.ts)).where(T.events.c.model_id == mid)
            ).scalar()
        return {
            "accepted": int(accepted),
            "duplicates": int(duplicates),
            "rejected": int(rejected),
            "last_event_ts": None if last_ts is None else float(last_ts),
            "last_received_at": None if last_received is None else float(last_received),
        }

    # Retention: raw events go; findings, metric values, alerts and references stay.
    def delete_events_before(
        self,
        ts: float,
        *,
        batch: int = 10_000,
        project: str | None = None,
        model: str | None = None,
    ) -> int:
        """Delete raw events older than ``ts`` (their chunks once every event in them is older,
        and labels of events no longer stored that arrived before ``ts``), ``batch`` rows per
        transaction so writers are never blocked for long. Findings, metric values, alerts and
        references are kept. Returns the number of events deleted."""
        cutoff = finite(ts, "ts")
        if cutoff is None:
            raise ValueError("ts: expected a time (seconds since the epoch)")
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch: expected a positive integer, got {batch!r}")
        with self._tx() as conn:
            query = sa.select(T.models.c.id)
            if project is not None:
                query = query.where(T.models.c.project_id == self._project_id(conn, project))
            if model is not None:
                if project is None:
                    raise ValueError("project: required when model is given")
                query = sa.select(sa.literal(self._model_id(conn, project, model)))
            model_ids = [int(m) for m in conn.execute(query).scalars()]
        ev, lb = T.events, T.labels
        deleted = 0
        for mid in model_ids:
            while True:
                with self._tx(write=True) as conn:
                    victims = (
                        sa.select(ev.c.event_id)
                        .where(ev.c.model_id == mid)
                        .where(ev.c.ts < cutoff)
                        .limit(batch)
                        .scalar_subquery()
                    )
                    n = conn.execute(
                        sa.delete(ev).where(ev.c.model_id == mid).where(ev.c.event_id.in_(victims))
                    ).rowcount
                deleted += n
                if n < batch:
                    break
            ec = T.event_chunks
            while True:
                with self._tx(write=True) as conn:
                    # again, in this transaction: an old event written since the loop above
                    # must not keep pointing into a chunk deleted below
                    conn.execute(sa.delete(ev).where(ev.c.model_id == mid).where(ev.c.ts < cutoff))
                    old = (
                        sa.select(ec.c.id)
                        .where(ec.c.model_id == mid)
                        .where(ec.c.max_ts < cutoff)
                        .limit(batch)
                        .scalar_subquery()
                    )
                    n = conn.execute(sa.delete(ec).where(ec.c.id.in_(old))).rowcount
                if n < batch:
                    break
            while True:
                with self._tx(write=True) as conn:
                    orphan = (
                        sa.select(lb.c.event_id)
                        .where(lb.c.model_id == mid)
                        .where(lb.c.received_at < cutoff)
                        .where(
                            ~sa.exists()
                            .where(ev.c.model_id == mid)
                            .where(ev.c.event_id == lb.c.event_id)
                        )
                        .limit(batch)
                        .scalar_subquery()
                    )
                    n = conn.execute(
                        sa.delete(lb).where(lb.c.model_id == mid).where(lb.c.event_id.in_(orphan))
                    ).rowcount
                if n < batch:
                    break
        return deleted

    def delete_events_older_than(self, age_seconds: float, **kwargs: Any) -> int:
        """:meth:`delete_events_before` ``now - age_seconds``."""
        age = finite(age_seconds, "age_seconds")
        if age is None or age < 0:
            raise ValueError(f"age_seconds: expected a duration >= 0, got {age_seconds!r}")
        return self.delete_events_before(timestamp() - age, **kwargs)
