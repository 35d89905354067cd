"""The physical limit of ingest: the same rows bulk-inserted with the database driver alone.

Benchmarks compare :meth:`Store.log_events <watchkeeper.store.Store.log_events>` and the HTTP
ingest against this figure: no validation, no idempotency check, no SQLAlchemy, one plain
relational row per event (id, time, version, score, latency, one ``REAL`` column per numeric
feature, the embedding as ``float32`` bytes), one transaction per batch with the same
durability as the store (SQLite WAL with ``synchronous=FULL``; PostgreSQL's default commit).
SQLite uses ``executemany``; PostgreSQL uses ``COPY ... FROM STDIN (FORMAT BINARY)``, the
fastest bulk path the driver has.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import numpy as np

from watchkeeper.window import Window


def _rows(window: Window, batch: int, tag: str) -> list[tuple[Any, ...]]:
    n = len(window)
    numeric = [v for v in window.features.values() if v.dtype.kind == "f"]
    columns: list[list[Any]] = [
        [f"{tag}-{batch}-{i}" for i in range(n)],
        window.ts.tolist(),
        (window.versions if window.versions is not None else np.full(n, None)).tolist(),
        (window.scores if window.scores is not None else np.full(n, np.nan)).tolist(),
        (window.latency_ms if window.latency_ms is not None else np.full(n, np.nan)).tolist(),
        *(v.tolist() for v in numeric),
    ]
    if window.embeddings is not None:
        emb = np.ascontiguousarray(window.embeddings, dtype=np.float32)
        columns.append([row.tobytes() for row in emb])
    return list(zip(*columns, strict=True))


def raw_insert_rate(url: str, window: Window, *, batches: int = 100) -> float:
    """Events per second bulk-inserting ``window``'s rows ``batches`` times (fresh ids each
    time) into a scratch table with the driver alone; the table is dropped afterwards.

    Parameters
    ----------
    url
        A database URL or SQLite path, as for :class:`~watchkeeper.store.Store`.
    window
        One batch of events; its numeric features, score, latency, version and embedding are
        inserted.
    batches
        How many transactions of ``len(window)`` rows to time.
    """
    import sqlalchemy as sa

    from watchkeeper.store._base import resolve_url

    if not isinstance(window, Window) or not len(window):
        raise ValueError("window: expected a non-empty watchkeeper.window.Window")
    if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
        raise ValueError(f"batches: expected a positive integer, got {batches!r}")
    parsed = sa.make_url(resolve_url(url))
    tag = secrets.token_hex(4)
    table = f"wk_raw_insert_{tag}"
    n_num = sum(1 for v in window.features.values() if v.dtype.kind == "f")
    has_emb = window.embeddings is not None
    payload = [_rows(window, b, tag) for b in range(batches)]
    if parsed.get_backend_name() == "sqlite":
        return _sqlite(str(parsed.database), table, n_num, has_emb, payload)
    if parsed.get_backend_name() == "postgresql":
        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        return _postgres(dsn, table, n_num, has_emb, payload)
    raise ValueError(f"url: unsupported database {parsed.get_backend_name()!r}")


def _ddl(table: str, n_num: int, has_emb: bool, real: str, blob: str) -> tuple[str, list[str]]:
    names = ["id", "ts", "version", "score", "latency_ms"]
    names += [f"f{j}" for j in range(n_num)] + (["embedding"] if has_emb else [])
    types = ["TEXT PRIMARY KEY", real, "TEXT", real, real] + [real] * n_num
    types += [blob] if has_emb else []
    cols = ", ".join(f"{c} {t}" for c, t in zip(names, types, strict=True))
    return f"CREATE TABLE {table} ({cols})", names


def _sqlite(
    path: str, table: str, n_num: int, has_emb: bool, payload: list[list[tuple[Any, ...]]]
) -> float:
    import sqlite3

    ddl, names = _ddl(table, n_num, has_emb, "REAL", "BLOB")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(ddl)
        sql = f"INSERT INTO {table} VALUES ({', '.join('?' * len(names))})"
        start = time.perf_counter()
        for rows in payload:
            conn.execute("BEGIN")
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.close()
    return sum(map(len, payload)) / elapsed


def _postgres(
    dsn: str, table: str, n_num: int, has_emb: bool, payload: list[list[tuple[Any, ...]]]
) -> float:
    import psycopg

    ddl, names = _ddl(table, n_num, has_emb, "DOUBLE PRECISION", "BYTEA")
    types = ["text", "float8", "text", "float8", "float8"] + ["float8"] * n_num
    types += ["bytea"] if has_emb else []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(ddl)
        try:
            start = time.perf_counter()
            for rows in payload:
                with conn.transaction(), conn.cursor() as cur:
                    copy_sql = f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)"
                    with cur.copy(copy_sql) as copy:
                        copy.set_types(types)
                        for row in rows:
                            copy.write_row(row)
            elapsed = time.perf_counter() - start
        finally:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    return sum(map(len, payload)) / elapsed
