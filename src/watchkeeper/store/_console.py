"""What the console reads and writes: a page of samples, curated sets, a session's token.

:class:`ConsoleMixin` holds the methods, composed into the :class:`Store` facade like the other
aggregates; it reads the event log's chunks through that part's helpers.

A page of samples is a *keyset* scan of the ``(model, ts, event_id)`` index: index rows are read
newest (or oldest) first in batches, the few chunks they point into are decoded once per batch,
every filter is one vectorised mask over the batch, and the scan stops at ``limit`` matches or
after ``max_scan`` index rows. The cursor is the last index row scanned, so the next page starts
where this one stopped, and no page ever reads more than ``max_scan`` rows, whatever the table
holds.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from watchkeeper.store import _schema as T
from watchkeeper.store._base import StoreBase
from watchkeeper.store._events import Chunk, check_ids, check_name

MAX_PAGE = 500
MAX_SCAN = 200_000
FIRST_BATCH = 1_000
SCAN_BATCH = 20_000
MAX_SET_IDS = 100_000
OUTLIER_BATCH = 2_000
"""Most outlier-score rows one step of an ``outlier_p_max`` scan reads (each step's events are
then looked up by an IN list of their times, kept short for every database)."""
ORDERS = ("newest", "oldest")
_SET_PREFIX = "curated_set/"


def _num(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected a number, got {value!r}") from None
    if math.isnan(out):
        raise ValueError(f"{what}: expected a number, got NaN")
    return out


@dataclass(frozen=True)
class SampleQuery:
    """Which samples to show, in what order. Every field is optional.

    Parameters
    ----------
    start, end
        The time range ``[start, end)`` (seconds since the epoch), e.g. a finding's window.
    version
        Only this model version's events.
    score_min, score_max
        Score range, inclusive.
    flagged
        Only events at or above (True) or below (False) their version's threshold.
    predicted
        Predicted class (compared as text).
    label
        Ground-truth label (compared as text); ``labelled`` keeps those with (True) or without
        (False) a label; ``correct`` keeps right (True) or wrong (False) predictions.
    tags
        ``{tag: value}``; every one must match.
    features
        ``{feature: (low, high)}`` numeric ranges (inclusive, either end None for open) or
        ``{feature: "value"}`` for a categorical feature.
    outlier_p_max
        Only events whose stored outlier p-value (the ``outliers`` check) is at most this, in
        ``(0, 1]``; events never scored do not match.
    order
        ``"newest"`` first (default) or ``"oldest"`` first.
    """

    start: float | None = None
    end: float | None = None
    version: str | None = None
    score_min: float | None = None
    score_max: float | None = None
    flagged: bool | None = None
    predicted: str | None = None
    label: str | None = None
    labelled: bool | None = None
    correct: bool | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    features: Mapping[str, Any] = field(default_factory=dict)
    outlier_p_max: float | None = None
    order: str = "newest"

    def validate(self) -> SampleQuery:
        """Raise ValueError naming the first bad field; returns self."""
        for name in ("start", "end", "score_min", "score_max"):
            _num(getattr(self, name), name)
        bound = _num(self.outlier_p_max, "outlier_p_max")
        if bound is not None and not 0.0 < bound <= 1.0:
            raise ValueError(f"outlier_p_max: expected a p-value in (0, 1], got {bound!r}")
        if self.version is not None:
            check_name(self.version, "version")
        if self.order not in ORDERS:
            raise ValueError(f"order: expected one of {ORDERS}, got {self.order!r}")
        for name in ("flagged", "labelled", "correct"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"{name}: expected true or false, got {value!r}")
        if not isinstance(self.tags, Mapping) or len(self.tags) > 20:
            raise ValueError("tags: expected at most 20 {tag: value} pairs")
        for key, value in self.tags.items():
            check_name(key, "tags (a tag name)")
            if not isinstance(value, str) or len(value) > 256:
                raise ValueError(f"tags.{key}: expected a string of at most 256 characters")
        if not isinstance(self.features, Mapping) or len(self.features) > 20:
            raise ValueError("features: expected at most 20 feature filters")
        for key, value in self.features.items():
            check_name(key, "features (a feature name)")
            if isinstance(value, str):
                continue
            if not isinstance(value, Sequence) or len(value) != 2:
                raise ValueError(f"features.{key}: expected (low, high) or a category")
            _num(value[0], f"features.{key}.low")
            _num(value[1], f"features.{key}.high")
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields that differ from the defaults."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value in (None, {}) or (name == "order" and value == "newest"):
                continue
            out[name] = dict(value) if isinstance(value, Mapping) else value
        return out


@dataclass(frozen=True)
class SamplePage:
    """One page of samples: ``rows`` (dicts), where the next page starts, and the scan's cost.

    ``next_cursor`` is None when the scan reached the end of the range; ``scanned`` index rows
    were read to fill the page (a page stops early, with a cursor, at ``max_scan``).
    """

    rows: list[dict[str, Any]]
    next_cursor: str | None
    scanned: int
    thresholds: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "rows": self.rows,
            "next_cursor": self.next_cursor,
            "scanned": self.scanned,
            "thresholds": dict(self.thresholds),
        }


def encode_cursor(ts: float, event_id: str) -> str:
    """An opaque cursor for the index row ``(ts, event_id)``."""
    raw = json.dumps([ts, event_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The ``(ts, event_id)`` of a cursor; ValueError naming ``cursor`` when malformed."""
    try:
        if not isinstance(cursor, str) or len(cursor) > 2_000:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, event_id = json.loads(raw)
        if not isinstance(event_id, str) or not 0 < len(event_id) <= 256:
            raise ValueError
        return float(ts), event_id
    except (ValueError, TypeError, json.JSONDecodeError):
        raise ValueError("cursor: not a cursor of this explorer") from None


def _text(values: np.ndarray) -> np.ndarray:
    """Values as text for comparing with what a person typed (None stays apart)."""
    out: np.ndarray = values.astype(str).astype(object)
    out[np.asarray(values == None, dtype=bool)] = "\x00none"  # noqa: E711
    return out


def _raw_rows(conn: sa.Connection, query: Any) -> list[Any]:
    """Rows as plain tuples from the driver's cursor: SQLAlchemy's row objects cost more than
    the query on a scan of thousands of index rows (the store's read path does the same)."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if conn.dialect.name == "postgresql":
            cursor.execute(str(compiled), compiled.params)
        else:
            positions = compiled.positiontup or []
            cursor.execute(str(compiled), [compiled.params[k] for k in positions])
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _keyset(
    select: Any,
    table: Any,
    query: SampleQuery,
    after: tuple[float, str] | None,
) -> Any:
    """``select`` on a table keyed by (ts, event_id), restricted to the query's time range and
    version, resumed after the cursor ``after`` and ordered as the query asks: the keyset scan
    shared by the outlier and the index pages."""
    if query.start is not None:
        select = select.where(table.c.ts >= query.start)
    if query.end is not None:
        select = select.where(table.c.ts < query.end)
    if query.version is not None:
        select = select.where(table.c.version == query.version)
    newest = query.order == "newest"
    if after is not None:
        ts0, id0 = after
        if newest:
            select = select.where(table.c.ts <= ts0).where(
                sa.not_(sa.and_(table.c.ts == ts0, table.c.event_id >= id0))
            )
        else:
            select = select.where(table.c.ts >= ts0).where(
                sa.not_(sa.and_(table.c.ts == ts0, table.c.event_id <= id0))
            )
    if newest:
        return select.order_by(table.c.ts.desc(), table.c.event_id.desc())
    return select.order_by(table.c.ts, table.c.event_id)


def _by_chunks(query: SampleQuery) -> bool:
    """Whether a query filters on what the chunks hold and not on labels (kept in the index):
    then scanning chunks whole beats scanning index rows."""
    on_chunks = (
        query.score_min is not None
        or query.score_max is not None
        or query.flagged is not None
        or query.predicted is not None
        or bool(query.tags)
        or bool(query.features)
    )
    on_labels = query.label is not None or query.labelled is not None or query.correct is not None
    return on_chunks and not on_labels


def _positive(labels: np.ndarray) -> np.ndarray:
    """Which labels mean the positive class (1, True, "1", "true", "yes", "positive")."""
    words = {"1", "1.0", "true", "yes", "positive", "pos"}
    return np.array(
        [v is not None and str(v).strip().lower() in words for v in labels.tolist()], dtype=bool
    )


class _Decoded:
    """A chunk decoded into whole columns (one ``frombuffer`` and one ``json.loads``)."""

    def __init__(self, chunk: Chunk, spec: Mapping[str, list[str]]) -> None:
        self.nums: dict[str, np.ndarray] = {}
        self.objs: dict[str, np.ndarray] = {}
        n = chunk.n_rows
        if spec["num"] and chunk.nums is not None:
            matrix = np.frombuffer(chunk.nums, dtype=np.float64).reshape(n, len(spec["num"]))
            for j, name in enumerate(spec["num"]):
                self.nums[name] = matrix[:, j]
        if spec["obj"] and chunk.objs is not None:
            for name, values in zip(spec["obj"], json.loads(chunk.objs), strict=True):
                column = np.empty(n, dtype=object)
                column[:] = values
                self.objs[name] = column
        self.probs: np.ndarray | None = None
        if chunk.probs is not None and chunk.n_classes:
            self.probs = np.frombuffer(chunk.probs, dtype=np.float64).reshape(n, chunk.n_classes)


def _gather(
    chunk_ids: np.ndarray, rows: np.ndarray, decoded: Mapping[int, _Decoded]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Numeric and object columns of a batch of index rows, one fancy index per chunk."""
    n = len(rows)
    nums: dict[str, np.ndarray] = {}
    objs: dict[str, np.ndarray] = {}
    for c in np.unique(chunk_ids).tolist():
        sel = chunk_ids == c
        part = decoded[c]
        for name, column in part.nums.items():
            if name not in nums:
                nums[name] = np.full(n, np.nan)
            nums[name][sel] = column[rows[sel]]
        for name, column in part.objs.items():
            if name not in objs:
                objs[name] = np.full(n, None, dtype=object)
            objs[name][sel] = column[rows[sel]]
        if part.probs is not None and "predicted" not in part.objs:
            if "predicted" not in objs:
                objs["predicted"] = np.full(n, None, dtype=object)
            objs["predicted"][sel] = part.probs[rows[sel]].argmax(axis=1).astype(object)
    return nums, objs


def _range(values: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    keep: np.ndarray = ~np.isnan(values)
    if low is not None:
        keep &= values >= low
    if high is not None:
        keep &= values <= high
    return keep


class ConsoleMixin(StoreBase):
    """Console queries of the :class:`~watchkeeper.store.Store` facade (they read the event
    log's chunks through its helpers)."""

    _fetch_chunks: Any
    _load_specs: Any

    # ---------------------------------------------------------------- sessions
    def token_by_hash(self, token_hash: str) -> tuple[str, frozenset[str]] | None:
        """``(project, scopes)`` of the unrevoked token whose SHA-256 is ``token_hash``."""
        if not isinstance(token_hash, str) or len(token_hash) != 64:
            return None
        query = (
            sa.select(T.projects.c.name, T.api_tokens.c.scopes)
            .join(T.projects, T.projects.c.id == T.api_tokens.c.project_id)
            .where(T.api_tokens.c.token_hash == token_hash)
            .where(T.api_tokens.c.revoked_at.is_(None))
        )
        with self._tx() as conn:
            row = conn.execute(query).first()
        return None if row is None else (str(row[0]), frozenset(json.loads(row[1])))

    # ---------------------------------------------------------------- samples
    def flag_thresholds(self, project: str, model: str, default: float = 0.5) -> dict[str, float]:
        """Score threshold of each version from its operating point (``default`` without)."""
        out: dict[str, float] = {}
        mv = T.model_versions
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            rows = conn.execute(
                sa.select(mv.c.version, mv.c.operating_point).where(mv.c.model_id == mid)
            ).all()
        for version, point in rows:
            threshold = (json.loads(point) if point else {}).get("threshold")
            out[str(version)] = float(threshold) if threshold is not None else default
        return out

    def sample_page(
        self,
        project: str,
        model: str,
        query: SampleQuery | None = None,
        *,
        cursor: str | None = None,
        limit: int = 100,
        max_scan: int = MAX_SCAN,
        default_threshold: float = 0.5,
    ) -> SamplePage:
        """One page of the model's events matching ``query``, by keyset pagination.

        Parameters
        ----------
        query
            Filters and order (:class:`SampleQuery`); default everything, newest first.
        cursor
            ``next_cursor`` of the previous page.
        limit
            Rows per page, 1 to 500.
        max_scan
            Most index rows read for this page (1 to 200,000); a page that stops there has a
            ``next_cursor`` and fewer rows than ``limit``.
        default_threshold
            Flag threshold of versions without an operating point.

        Examples
        --------
        >>> from watchkeeper.store import Store
        >>> from watchkeeper.window import Window
        >>> store = Store("sqlite://")
        >>> store.create_project("p"); store.register_model("p", "m")
        >>> _ = store.log_events("p", "m", Window.from_columns(
        ...     ids=["a", "b", "c"], ts=[1.0, 2.0, 3.0], scores=[0.1, 0.9, 0.7]))
        >>> page = store.sample_page("p", "m", SampleQuery(flagged=True), limit=1)
        >>> [r["id"] for r in page.rows], page.next_cursor is not None
        (['c'], True)
        >>> [r["id"] for r in store.sample_page(
        ...     "p", "m", SampleQuery(flagged=True), cursor=page.next_cursor).rows]
        ['b']
        """
        query = (query or SampleQuery()).validate()
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit: expected an integer in 1..{MAX_PAGE}, got {limit!r}")
        if (
            isinstance(max_scan, bool)
            or not isinstance(max_scan, int)
            or not 1 <= max_scan <= MAX_SCAN
        ):
            raise ValueError(f"max_scan: expected an integer in 1..{MAX_SCAN}, got {max_scan!r}")
        after = None if cursor is None else decode_cursor(cursor)
        thresholds = self.flag_thresholds(project, model, default_threshold)
        if query.outlier_p_max is not None:
            page = self._outlier_page(project, model, query, after, limit, max_scan, thresholds)
        elif _by_chunks(query):
            page = self._chunk_page(project, model, query, after, limit, max_scan, thresholds)
        else:
            page = self._index_page(project, model, query, after, limit, max_scan, thresholds)
        self._with_outlier_p(project, model, page.rows)
        return page

    def _with_outlier_p(self, project: str, model: str, rows: list[dict[str, Any]]) -> None:
        """Add each row's stored outlier p-value and score (None when never scored): one query
        for the page (at most :data:`MAX_PAGE` ids) on the ``(model, ts)`` index."""
        for r in rows:
            r["outlier_p"] = r["outlier_score"] = None
        if not rows:
            return
        o = T.outlier_scores
        by_id = {r["id"]: r for r in rows}
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            found = _raw_rows(
                conn,
                sa.select(o.c.event_id, o.c.p_value, o.c.score)
                .where(o.c.model_id == mid)
                .where(o.c.ts.in_(sorted({r["ts"] for r in rows})))
                .where(o.c.event_id.in_(sorted(by_id)))
                .order_by(o.c.id),
            )
        for event_id, p_value, score in found:  # the newest scoring of an event wins
            row = by_id.get(str(event_id))
            if row is not None:
                row["outlier_p"], row["outlier_score"] = p_value, score

    def _outlier_page(
        self,
        project: str,
        model: str,
        query: SampleQuery,
        after: tuple[float, str] | None,
        limit: int,
        max_scan: int,
        thresholds: Mapping[str, float],
    ) -> SamplePage:
        """A page of events with a stored outlier p-value at most ``query.outlier_p_max``: a
        keyset scan of the outlier scores (``(model, ts)`` index) in batches, each batch's
        events looked up in the event index and filtered by the rest of the query."""
        o = T.outlier_scores
        bound = float(query.outlier_p_max)  # type: ignore[arg-type]
        decoded: dict[int, _Decoded] = {}
        found: list[dict[str, Any]] = []
        scanned = 0
        next_cursor: str | None = None
        rounds = 0
        with self._tx(consistent=True) as conn:
            mid = self._model_id(conn, project, model)
            while True:
                batch = min(FIRST_BATCH * 2**rounds, OUTLIER_BATCH, max_scan - scanned)
                rounds += 1
                select = _keyset(
                    sa.select(o.c.ts, o.c.event_id)
                    .where(o.c.model_id == mid)
                    .where(o.c.p_value <= bound),
                    o,
                    query,
                    after,
                )
                hits = _raw_rows(conn, select.limit(batch))
                if not hits:
                    break
                scanned += len(hits)
                ev = T.events
                wanted = {str(h[1]) for h in hits}
                stored = {
                    str(r[1]): r
                    for r in _raw_rows(
                        conn,
                        sa.select(ev.c.ts, ev.c.event_id, ev.c.version, ev.c.chunk_id,
                                  ev.c.chunk_row, ev.c.label)
                        .where(ev.c.model_id == mid)
                        .where(ev.c.ts.in_(sorted({float(h[0]) for h in hits}))),
                    )
                    if str(r[1]) in wanted
                }  # fmt: skip
                seen: set[str] = set()
                index = []
                for h in hits:  # in scan order; an event scored twice is shown once
                    key = str(h[1])
                    if key in stored and key not in seen:
                        seen.add(key)
                        index.append(stored[key])
                last = hits[-1]
                if index:
                    chunk_ids = np.array([r[3] for r in index], dtype=np.int64)
                    self._decode_chunks(conn, mid, chunk_ids, decoded)
                    rows, stop = self._match(index, chunk_ids, decoded, query, thresholds, limit)
                    room = limit - len(found)
                    found.extend(rows[:room])
                    if len(found) >= limit:
                        last = index[stop - 1]
                        next_cursor = encode_cursor(float(last[0]), str(last[1]))
                        break
                if len(hits) < batch:
                    break
                if scanned >= max_scan:
                    next_cursor = encode_cursor(float(last[0]), str(last[1]))
                    break
        return SamplePage(found, next_cursor, scanned, thresholds)

    def _decode_chunks(
        self, conn: sa.Connection, mid: int, chunk_ids: np.ndarray, decoded: dict[int, _Decoded]
    ) -> None:
        """Decode into ``decoded`` the chunks of ``chunk_ids`` it does not hold yet (a page
        decodes a chunk once however many of its events it shows)."""
        missing = set(np.unique(chunk_ids).tolist()) - set(decoded)
        if not missing:
            return
        chunks = self._fetch_chunks(conn, missing, embeddings=False)
        if any(c.schema_id not in self._specs for c in chunks.values()):
            self._load_specs(conn, mid)
        for cid, chunk in chunks.items():
            decoded[cid] = _Decoded(chunk, self._specs[chunk.schema_id])

    def _index_page(
        self,
        project: str,
        model: str,
        query: SampleQuery,
        after: tuple[float, str] | None,
        limit: int,
        max_scan: int,
        thresholds: Mapping[str, float],
    ) -> SamplePage:
        """A page by a keyset scan of the event index (filters on labels, or none)."""
        ev = T.events
        found: list[dict[str, Any]] = []
        scanned = 0
        next_cursor: str | None = None
        decoded: dict[int, _Decoded] = {}
        rounds = 0
        with self._tx(consistent=True) as conn:
            mid = self._model_id(conn, project, model)
            while True:
                batch = min(max(FIRST_BATCH, 2 * limit) * 4**rounds, SCAN_BATCH, max_scan - scanned)
                rounds += 1
                select = sa.select(
                    ev.c.ts, ev.c.event_id, ev.c.version, ev.c.chunk_id, ev.c.chunk_row, ev.c.label
                ).where(ev.c.model_id == mid)
                if query.labelled is False:
                    select = select.where(ev.c.label.is_(None))
                elif query.labelled or query.label is not None or query.correct is not None:
                    select = select.where(ev.c.label.is_not(None))
                select = _keyset(select, ev, query, after)
                index = _raw_rows(conn, select.limit(batch))
                if not index:
                    next_cursor = None
                    break
                scanned += len(index)
                chunk_ids = np.array([r[3] for r in index], dtype=np.int64)
                self._decode_chunks(conn, mid, chunk_ids, decoded)
                rows, stop = self._match(index, chunk_ids, decoded, query, thresholds, limit)
                found.extend(rows[: limit - len(found)])
                last = index[stop - 1] if stop else index[-1]
                if len(found) >= limit:
                    next_cursor = encode_cursor(float(last[0]), str(last[1]))
                    break
                if len(index) < batch:
                    next_cursor = None
                    break
                if scanned >= max_scan:
                    next_cursor = encode_cursor(float(last[0]), str(last[1]))
                    break
        return SamplePage(found, next_cursor, scanned, thresholds)

    def _chunk_page(
        self,
        project: str,
        model: str,
        query: SampleQuery,
        after: tuple[float, str] | None,
        limit: int,
        max_scan: int,
        thresholds: Mapping[str, float],
    ) -> SamplePage:
        """A page for filters on what chunks hold (score, flags, tags, features, class): the
        chunks are filtered whole, newest (or oldest) first, and only the matches are looked up
        in the index (by primary key), so a rare value costs one decode per chunk, not one
        index row per event.

        Chunks may overlap in time. They are visited by their latest (earliest) time; after a
        chunk, every event later (earlier) than the next chunk's bound has been seen, so the
        matches past that bound are final in order.
        """
        ec = T.event_chunks
        newest = query.order == "newest"
        found: list[dict[str, Any]] = []
        scanned = 0
        pending: list[tuple[float, str, int, int]] = []  # candidates not yet final in order
        next_cursor: str | None = None
        with self._tx(consistent=True) as conn:
            mid = self._model_id(conn, project, model)
            select = sa.select(ec.c.id, ec.c.max_ts, ec.c.min_ts).where(ec.c.model_id == mid)
            if query.start is not None:
                select = select.where(ec.c.max_ts >= query.start)
            if query.end is not None:
                select = select.where(ec.c.min_ts < query.end)
            if after is not None:
                bound_col = ec.c.min_ts if newest else ec.c.max_ts
                select = select.where(bound_col <= after[0] if newest else bound_col >= after[0])
            select = select.order_by(
                *((ec.c.max_ts.desc(), ec.c.id.desc()) if newest else (ec.c.min_ts, ec.c.id))
            )
            chunk_list = _raw_rows(conn, select.limit(100_000))
            for k, (cid, _, _) in enumerate(chunk_list):
                chunk = self._fetch_chunks(conn, {cid}, embeddings=False)[cid]
                if chunk.schema_id not in self._specs:
                    self._load_specs(conn, mid)
                part = _Decoded(chunk, self._specs[chunk.schema_id])
                n = chunk.n_rows
                ts = np.frombuffer(chunk.ts, dtype=np.float64)
                ids = np.empty(n, dtype=object)
                ids[:] = json.loads(chunk.ids)
                raw_versions = json.loads(chunk.versions)
                versions = np.empty(n, dtype=object)
                versions[:] = raw_versions if isinstance(raw_versions, list) else [raw_versions] * n
                keep = np.ones(n, dtype=bool)
                if query.start is not None:
                    keep &= ts >= query.start
                if query.end is not None:
                    keep &= ts < query.end
                if query.version is not None:
                    keep &= versions == query.version
                if after is not None:
                    ts0, id0 = after
                    if newest:
                        keep &= (ts < ts0) | ((ts == ts0) & (ids < id0))
                    else:
                        keep &= (ts > ts0) | ((ts == ts0) & (ids > id0))
                rows = np.flatnonzero(keep)
                scanned += n
                if len(rows):
                    hits, _ = self._match_columns(
                        ts[rows], ids[rows], versions[rows], np.full(len(rows), cid), rows,
                        None, {cid: part}, query, thresholds, len(rows), positions_only=True,
                    )  # fmt: skip
                    at = rows[np.asarray(hits, dtype=np.int64)]
                    pending += zip(ts[at].tolist(), ids[at].tolist(), [cid] * len(at),
                                   at.tolist(), strict=True)  # fmt: skip
                last = k == len(chunk_list) - 1
                bound = None if last else float(chunk_list[k + 1][1 if newest else 2])
                pending.sort(key=lambda c: (c[0], c[1]), reverse=newest)
                ready = [
                    c for c in pending
                    if bound is None or (c[0] > bound if newest else c[0] < bound)
                ]  # fmt: skip
                pending = pending[len(ready) :]
                found += self._verified(conn, mid, ready[: 4 * limit], thresholds)
                if len(found) >= limit:
                    found = found[:limit]
                    next_cursor = encode_cursor(found[-1]["ts"], found[-1]["id"])
                    break
                moved = bound is not None and (
                    after is None or (bound < after[0] if newest else bound > after[0])
                )
                if scanned >= max_scan and moved:
                    # (a page always moves the bound past its cursor, so paging ends)
                    assert bound is not None
                    # everything past the bound is decided: continue from it next time
                    next_cursor = encode_cursor(bound, "\uffff" if newest else "\x00")
                    break
        return SamplePage(found, next_cursor, scanned, thresholds)

    def _verified(
        self,
        conn: sa.Connection,
        mid: int,
        candidates: Sequence[tuple[float, str, int, int]],
        thresholds: Mapping[str, float],
    ) -> list[dict[str, Any]]:
        """The candidates the index holds at that place (a re-sent id's second copy, or an
        event removed by retention, is not shown), with their labels, as output rows."""
        if not candidates:
            return []
        ev = T.events
        wanted = {c[1] for c in candidates}
        # by time, on the (model, ts, ...) index that covers every column needed
        stored = {
            str(r[0]): r
            for r in _raw_rows(
                conn,
                sa.select(ev.c.event_id, ev.c.ts, ev.c.version, ev.c.chunk_id, ev.c.chunk_row,
                          ev.c.label)
                .where(ev.c.model_id == mid)
                .where(ev.c.ts.in_(sorted({c[0] for c in candidates}))),
            )
            if r[0] in wanted
        }  # fmt: skip
        index = [
            (s[1], s[0], s[2], s[3], s[4], s[5])
            for c in candidates
            if (s := stored.get(c[1])) is not None and (s[3], s[4]) == (c[2], c[3])
        ]
        if not index:
            return []
        chunk_ids = np.array([r[3] for r in index], dtype=np.int64)
        decoded: dict[int, _Decoded] = {}
        self._decode_chunks(conn, mid, chunk_ids, decoded)
        rows, _ = self._match(index, chunk_ids, decoded, SampleQuery(), thresholds, len(index))
        return rows

    @staticmethod
    def _match(
        index: Sequence[Any],
        chunk_ids: np.ndarray,
        decoded: Mapping[int, _Decoded],
        query: SampleQuery,
        thresholds: Mapping[str, float],
        limit: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """The matching rows of a batch of index rows ``(ts, id, version, chunk, row, label)``
        (at most ``limit``) and how many index rows that used."""
        columns = list(zip(*index, strict=True))
        ids = np.empty(len(index), dtype=object)
        ids[:] = columns[1]
        versions = np.empty(len(index), dtype=object)
        versions[:] = columns[2]
        return ConsoleMixin._match_columns(
            np.asarray(columns[0], dtype=np.float64), ids, versions, chunk_ids,
            np.array(columns[4], dtype=np.int64), columns[5], decoded, query, thresholds, limit,
        )  # fmt: skip

    @staticmethod
    def _match_columns(
        ts: np.ndarray,
        ids: np.ndarray,
        versions: np.ndarray,
        chunk_ids: np.ndarray,
        rows: np.ndarray,
        label_text: Sequence[str | None] | None,
        decoded: Mapping[int, _Decoded],
        query: SampleQuery,
        thresholds: Mapping[str, float],
        limit: int,
        positions_only: bool = False,
    ) -> tuple[list[Any], int]:
        """Rows of the batch that match (output dicts, or their positions), and how many rows
        of the batch that used."""
        n = len(ts)
        labels = np.full(n, None, dtype=object)
        if label_text is None:
            has_label = np.zeros(n, dtype=bool)
        else:
            has_label = np.array([t is not None for t in label_text], dtype=bool)
            where = np.flatnonzero(has_label).tolist()
            if where:
                labels[where] = json.loads("[" + ",".join(str(label_text[i]) for i in where) + "]")
        nums, objs = _gather(chunk_ids, rows, decoded)
        scores = nums.get("score", np.full(n, np.nan))
        default = 0.5
        names, inverse = np.unique(versions.astype(str), return_inverse=True)
        per_name = np.array([thresholds.get(v, default) for v in names.tolist()], dtype=float)
        limit_of = per_name[inverse] if len(names) else np.full(n, default)
        flagged = scores >= limit_of
        keep = np.ones(n, dtype=bool)
        if query.score_min is not None or query.score_max is not None:
            keep &= _range(scores, query.score_min, query.score_max)
        if query.flagged is not None:
            keep &= (flagged if query.flagged else ~flagged) & ~np.isnan(scores)
        predicted = objs.get("predicted")
        if query.predicted is not None:
            keep &= np.zeros(n, bool) if predicted is None else _text(predicted) == query.predicted
        if query.label is not None:
            keep &= _text(labels) == query.label
        if query.labelled is not None:
            keep &= has_label if query.labelled else ~has_label
        if predicted is not None:
            right = _text(predicted) == _text(labels)
        else:
            right = flagged == _positive(labels)
        if query.correct is not None:
            keep &= has_label & (right if query.correct else ~right)
        for tag, value in query.tags.items():
            column = objs.get(f"t:{tag}")
            keep &= np.zeros(n, bool) if column is None else _text(column) == value
        for name, spec in query.features.items():
            if isinstance(spec, str):
                column = objs.get(f"f:{name}")
                keep &= np.zeros(n, bool) if column is None else _text(column) == spec
            else:
                values = nums.get(f"f:{name}")
                low = _num(spec[0], name)
                high = _num(spec[1], name)
                keep &= np.zeros(n, bool) if values is None else _range(values, low, high)
        hits = np.flatnonzero(keep)[:limit]
        used = n if len(hits) < limit else int(hits[-1]) + 1
        if positions_only:
            return hits.tolist(), used
        out = []
        feature_names = sorted(k[2:] for k in [*nums, *objs] if k.startswith("f:"))
        tag_names = sorted(k[2:] for k in objs if k.startswith("t:"))
        for i in hits.tolist():
            score = float(scores[i])
            out.append(
                {
                    "id": str(ids[i]),
                    "ts": float(ts[i]),
                    "version": versions[i],
                    "score": None if math.isnan(score) else score,
                    "flagged": None if math.isnan(score) else bool(flagged[i]),
                    "predicted": None if predicted is None else predicted[i],
                    "label": labels[i],
                    "correct": bool(right[i]) if has_label[i] else None,
                    "features": {
                        f: _plain(nums[f"f:{f}"][i] if f"f:{f}" in nums else objs[f"f:{f}"][i])
                        for f in feature_names
                    },
                    "tags": {
                        t: objs[f"t:{t}"][i] for t in tag_names if objs[f"t:{t}"][i] is not None
                    },
                }
            )
        return out, used

    # ---------------------------------------------------------------- curated sets
    def create_curated_set(
        self,
        project: str,
        model: str,
        name: str,
        ids: Sequence[str],
        *,
        actor: str | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Store a curated set of event ids (a dataset a person picked in the console).

        Creating a set under an existing name adds the new ids to it (each id once). Returns
        the stored set: ``{"model", "name", "ids", "created_at", "updated_at", "actor",
        "note"}``.

        Examples
        --------
        >>> from watchkeeper.store import Store
        >>> store = Store("sqlite://")
        >>> store.create_project("p"); store.register_model("p", "m")
        >>> store.create_curated_set("p", "m", "faded", ["a", "b"])["ids"]
        ['a', 'b']
        >>> store.create_curated_set("p", "m", "faded", ["b", "c"])["ids"]
        ['a', 'b', 'c']
        >>> store.get_curated_set("p", "m", "faded")["ids"]
        ['a', 'b', 'c']
        """
        check_name(name, "name")
        id_list = check_ids(ids).tolist()
        if not id_list:
            raise ValueError("ids: expected at least one event id")
        if actor is not None and (not isinstance(actor, str) or len(actor) > 256):
            raise ValueError("actor: expected a string of at most 256 characters")
        if note is not None and (not isinstance(note, str) or len(note) > 4096):
            raise ValueError("note: expected a string of at most 4096 characters")
        key = f"{_SET_PREFIX}{model}/{name}"
        now = time.time()
        with self._tx(write=True) as conn:
            self._model_id(conn, project, model)
            pid = conn.execute(
                sa.select(T.projects.c.id).where(T.projects.c.name == project)
            ).scalar_one()
            st = T.states
            row = conn.execute(
                sa.select(st.c.state).where(st.c.project_id == pid).where(st.c.key == key)
            ).first()
            current = json.loads(row[0]) if row is not None else None
            known = [] if current is None else list(current["ids"])
            seen = set(known)
            merged = known + [i for i in dict.fromkeys(id_list) if i not in seen]
            if len(merged) > MAX_SET_IDS:
                raise ValueError(f"ids: a curated set holds at most {MAX_SET_IDS} events")
            data = {
                "model": model,
                "name": name,
                "ids": merged,
                "created_at": now if current is None else current["created_at"],
                "updated_at": now,
                "actor": actor if current is None else current.get("actor"),
                "note": note if note is not None or current is None else current.get("note"),
            }
            text = json.dumps(data)
            if row is None:
                conn.execute(
                    sa.insert(st).values(project_id=pid, key=key, state=text, updated_at=now)
                )
            else:
                conn.execute(
                    sa.update(st)
                    .where(st.c.project_id == pid)
                    .where(st.c.key == key)
                    .values(state=text, updated_at=now)
                )
        return data

    def get_curated_set(self, project: str, model: str, name: str) -> dict[str, Any] | None:
        """The curated set stored under ``name`` (see :meth:`create_curated_set`), or None."""
        check_name(name, "name")
        st = T.states
        with self._tx() as conn:
            self._model_id(conn, project, model)
            row = conn.execute(
                sa.select(st.c.state)
                .join(T.projects, T.projects.c.id == st.c.project_id)
                .where(T.projects.c.name == project)
                .where(st.c.key == f"{_SET_PREFIX}{model}/{name}")
            ).first()
        return None if row is None else dict(json.loads(row[0]))

    def list_curated_sets(self, project: str, model: str) -> list[dict[str, Any]]:
        """The model's curated sets, newest first, as ``{"name", "size", "updated_at"}``."""
        st = T.states
        prefix = f"{_SET_PREFIX}{model}/"
        with self._tx() as conn:
            self._model_id(conn, project, model)
            rows = conn.execute(
                sa.select(st.c.key, st.c.state)
                .join(T.projects, T.projects.c.id == st.c.project_id)
                .where(T.projects.c.name == project)
                .where(st.c.key.startswith(prefix, autoescape=True))
                .order_by(st.c.updated_at.desc())
                .limit(1000)
            ).all()
        out = []
        for _, text in rows:
            data = json.loads(text)
            out.append(
                {"name": data["name"], "size": len(data["ids"]), "updated_at": data["updated_at"]}
            )
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.floating):
        value = float(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def console(store: Any) -> ConsoleMixin:
    """``store`` as what it is, a :class:`ConsoleMixin` (for typed calls from the console)."""
    if not isinstance(store, ConsoleMixin):
        raise TypeError(f"store: expected a watchkeeper.store.Store, got {type(store).__name__}")
    return store
