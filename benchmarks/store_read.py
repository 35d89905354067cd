"""Store: time to read a 100,000-event window, and the driver's bulk-insert limit.

Events carry 20 numeric features, a 128-dimensional float32 embedding, a score, a latency, a
predicted label and a version; a third of them have a label. They are written with
``Store.log_events`` in batches of 1,000 (the in-process ingest rate is reported too), then:

- **read**: ``Store.read_window(start=..., end=...)`` over all 100,000 events into a
  :class:`~watchkeeper.window.Window` (numpy columns, labels joined), and ``last_n=100_000``;
- **naive read** (the layout the store avoids): the same rows from a plain table with one
  ``REAL`` column per feature and the embedding as bytes, fetched with the driver and turned
  into the same arrays; tells what the chunked layout buys;
- **limit**: the physical ingest limit, the same rows bulk-inserted with the database driver
  alone (``watchkeeper.store.raw_insert_rate``).

Run: ``.venv/bin/python -m benchmarks.store_read`` (``--quick`` for a smoke run). PostgreSQL
is measured when ``WATCHKEEPER_TEST_POSTGRES_URL`` (or ``--postgres URL``) is set, in a
scratch schema dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import machine_line, median_time, write_section

N_FEATURES = 20
DIM = 128
BATCH = 1000
T0 = 1_700_000_000.0
HEADER = (
    "| database | events | read time range (s) | read last N (s) | naive wide-table read (s) "
    "| `Store.log_events` (events/s) | driver bulk-insert limit (events/s) | store / limit |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|"
)


def make_window(rng: np.random.Generator, start: int, n: int) -> Any:
    """One batch of ``n`` events with ids ``e{start}..``."""
    from watchkeeper.window import Window

    return Window.from_columns(
        ids=[f"e{i}" for i in range(start, start + n)],
        ts=T0 + np.arange(start, start + n, dtype=np.float64),
        features={f"f{j}": rng.normal(size=n) for j in range(N_FEATURES)},
        scores=rng.random(n),
        predicted=rng.integers(0, 2, n).astype(object),
        latency_ms=rng.gamma(2.0, 5.0, n),
        embeddings=rng.normal(size=(n, DIM)).astype(np.float32),
        versions=np.full(n, "v1", dtype=object),
    )


def naive_read(url: str, window: Any, n_batches: int) -> float:
    """Seconds to read ``n_batches`` copies of ``window`` from a plain wide table."""
    import sqlalchemy as sa

    from watchkeeper.store._store import resolve_url

    parsed = sa.make_url(resolve_url(url))
    table = f"wk_naive_{secrets.token_hex(4)}"
    cols = [f"f{j}" for j in range(N_FEATURES)]
    real = "REAL" if parsed.get_backend_name() == "sqlite" else "DOUBLE PRECISION"
    blob = "BLOB" if parsed.get_backend_name() == "sqlite" else "BYTEA"
    ddl = (
        f"CREATE TABLE {table} (id TEXT PRIMARY KEY, ts {real}, score {real}, "
        + ", ".join(f"{c} {real}" for c in cols)
        + f", embedding {blob})"
    )
    emb = [r.tobytes() for r in window.embeddings]
    feats = [window.features[c].tolist() for c in cols]
    engine = sa.create_engine(parsed)
    with engine.begin() as conn:
        conn.exec_driver_sql(ddl)
        marks = ", ".join(["%s" if real != "REAL" else "?"] * (4 + N_FEATURES))
        sql = f"INSERT INTO {table} VALUES ({marks})"
        raw = conn.connection.driver_connection
        cur = raw.cursor()  # type: ignore[union-attr]
        for b in range(n_batches):
            rows = list(
                zip(
                    [f"{b}-{i}" for i in range(len(window))],
                    (window.ts + b * len(window)).tolist(),
                    window.scores.tolist(),
                    *feats,
                    emb,
                    strict=True,
                )
            )
            cur.executemany(sql, rows)

    def read() -> int:
        with engine.connect() as conn:
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cur.execute(
                f"SELECT id, ts, score, {', '.join(cols)}, embedding FROM {table} ORDER BY ts"
            )
            rows = cur.fetchall()
        columns = list(zip(*rows, strict=True))
        ids = np.array(columns[0], dtype=object)
        numbers = np.array(columns[1 : 3 + N_FEATURES], dtype=np.float64)
        embeddings = np.frombuffer(b"".join(columns[-1]), dtype=np.float32).reshape(-1, DIM)
        return len(ids) + numbers.shape[1] + len(embeddings)

    try:
        seconds, _ = median_time(read)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE {table}")
        engine.dispose()
    return seconds


def bench(name: str, url: str, schema: str | None, n_batches: int, repeats: int) -> dict[str, Any]:
    from watchkeeper.store import Store, raw_insert_rate

    rng = np.random.default_rng(20261122)
    n = n_batches * BATCH
    store = Store(url, schema=schema)
    store.create_project("bench")
    store.register_model("bench", "m")
    windows = [make_window(rng, b * BATCH, BATCH) for b in range(n_batches)]
    start = time.perf_counter()
    for w in windows:
        store.log_events("bench", "m", w)
    ingest = n / (time.perf_counter() - start)
    labelled = [f"e{i}" for i in range(0, n, 3)]
    store.log_labels("bench", "m", labelled, rng.integers(0, 2, len(labelled)).tolist())

    def read_range() -> int:
        w = store.read_window("bench", "m", start=T0, end=T0 + n)
        assert len(w) == n and w.embeddings is not None and len(w.features) == N_FEATURES
        return len(w)

    def read_last() -> int:
        return len(store.read_window("bench", "m", last_n=n))

    read_range()  # warm the page cache, as a server reading its recent windows would be
    t_range, _ = median_time(read_range, repeats)
    t_last, _ = median_time(read_last, repeats)
    t_naive = naive_read(
        url if schema is None else _with_schema(url, schema), windows[0], n_batches
    )
    limit = statistics.median(
        raw_insert_rate(
            url if schema is None else _with_schema(url, schema), windows[0], batches=n_batches
        )
        for _ in range(repeats)
    )
    store.close()
    return {
        "db": name,
        "events": n,
        "read_range_s": t_range,
        "read_last_n_s": t_last,
        "naive_read_s": t_naive,
        "store_ingest": ingest,
        "limit": limit,
    }


def _with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 events, no RESULTS.md")
    parser.add_argument("--postgres", default=os.environ.get("WATCHKEEPER_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    n_batches = 10 if args.quick else 100
    repeats = 3
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(bench("SQLite", str(Path(tmp) / "bench.db"), None, n_batches, repeats))
    if args.postgres:
        import sqlalchemy as sa

        schema = f"wk_bench_{secrets.token_hex(4)}"
        try:
            results.append(bench("PostgreSQL", args.postgres, schema, n_batches, repeats))
        finally:
            engine = sa.create_engine(args.postgres)
            with engine.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            engine.dispose()
    for r in results:
        print(r)
    if args.quick:
        return
    rows = "\n".join(
        f"| {r['db']} | {r['events']:,} | {r['read_range_s']:.3f} | {r['read_last_n_s']:.3f} "
        f"| {r['naive_read_s']:.3f} | {r['store_ingest']:,.0f} | {r['limit']:,.0f} "
        f"| {r['store_ingest'] / r['limit']:.0%} |"
        for r in results
    )
    md = f"""## Store: reading a window, and the bulk-insert limit

{machine_line()} Load average during the run: {os.getloadavg()[0]:.1f} (the machine
is shared; figures on an idle machine are lower).
Command: `.venv/bin/python -m benchmarks.store_read` (PostgreSQL from
`WATCHKEEPER_TEST_POSTGRES_URL`). Events with 20 numeric features, a 128-d float32
embedding, score, latency, predicted label and version; a third labelled.
Medians of {repeats}. Target: a 100,000-event window read in under 1 s on SQLite.

{HEADER}
{rows}

- *read*: `Store.read_window` into a `Window` (numpy columns, labels joined by id).
- *naive*: the same rows from a plain table (one column per feature, embedding bytes),
  fetched with the driver and stacked into the same arrays, no labels: the per-row layout the
  store's per-batch chunks replace.
- *limit*: `watchkeeper.store.raw_insert_rate`, the same rows with the driver alone
  (SQLite `executemany`, PostgreSQL binary `COPY`), one transaction per 1,000, no validation
  or idempotency. `Store.log_events` validates, deduplicates by (model, id) and keeps
  counters, in one transaction per batch of 1,000.
"""
    write_section("store_read", md)


if __name__ == "__main__":
    main()
