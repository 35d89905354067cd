"""Backup and restore of the whole database, for disaster recovery.

A backup is a directory. From SQLite it holds ``database.sqlite``, a copy taken with SQLite's
online backup API (writers keep going while it runs). From any database it also holds a logical
export the tool writes and reads itself, ``tables/<table>.jsonl.gz``: every row of every table,
read in one consistent snapshot, so a PostgreSQL database needs no ``pg_dump`` and a backup
moves between SQLite and PostgreSQL. ``BACKUP.json`` lists the schema revision, each table's
row count and every file's SHA-256, which restore checks before it writes anything.

Restore builds the schema at the backup's revision, loads the rows, resets PostgreSQL's id
sequences, then upgrades to the current revision as opening a store always does.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from watchkeeper.store import _schema as T
from watchkeeper.store._base import MIGRATIONS, StoreBase

FORMAT = 1
INSERT_BATCH = 1_000
_TABLE_NAMES = [t.name for t in T.metadata.sorted_tables]


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "$b64" in value:
        return base64.b64decode(value["$b64"])
    return value


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(4 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return None if row is None else str(row[0])


def backup_database(store: StoreBase, directory: str | Path) -> dict[str, Any]:
    """Write a backup of ``store`` into ``directory`` (created; must be empty or absent) and
    return what ``BACKUP.json`` says."""
    out = Path(directory)
    if out.exists() and any(out.iterdir()):
        raise ValueError(
            f"path: {str(directory)!r} is not empty (a backup goes in a new directory)"
        )
    (out / "tables").mkdir(parents=True, exist_ok=True)
    started = time.time()
    engine = store.engine
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            target = sqlite3.connect(out / "database.sqlite")
            try:
                raw.driver_connection.backup(target)  # type: ignore[union-attr]
            finally:
                target.close()
        finally:
            raw.close()
    counts: dict[str, int] = {}
    with store._tx(consistent=True) as conn:
        revision = _revision(conn)
        for table in T.metadata.sorted_tables:
            n = 0
            with gzip.open(out / "tables" / f"{table.name}.jsonl.gz", "wt", compresslevel=1) as fh:
                result = conn.execution_options(yield_per=INSERT_BATCH).execute(
                    sa.select(table).order_by(*table.primary_key.columns)
                )
                for row in result:
                    fh.write(json.dumps([_encode(v) for v in row]) + "\n")
                    n += 1
            counts[table.name] = n
    info: dict[str, Any] = {
        "format": FORMAT,
        "created_at": started,
        "source": engine.dialect.name,
        "revision": revision,
        "tables": counts,
        "columns": {t.name: [c.name for c in t.columns] for t in T.metadata.sorted_tables},
        "files": {
            p.relative_to(out).as_posix(): _sha256(p) for p in sorted(out.rglob("*")) if p.is_file()
        },
    }
    (out / "BACKUP.json").write_text(json.dumps(info, indent=2))
    return info


def read_backup_info(directory: str | Path) -> dict[str, Any]:
    """``BACKUP.json`` of a backup, after checking every file it lists against its SHA-256."""
    folder = Path(directory)
    try:
        info: dict[str, Any] = json.loads((folder / "BACKUP.json").read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"path: {str(directory)!r} holds no readable BACKUP.json ({exc})"
        ) from None
    if info.get("format") != FORMAT:
        raise ValueError(f"path: backup format {info.get('format')!r} is not {FORMAT}")
    for rel, sha in info.get("files", {}).items():
        path = folder / rel
        if not path.is_file():
            raise ValueError(f"path: the backup lacks {rel}")
        if _sha256(path) != sha:
            raise ValueError(f"path: {rel} in the backup is corrupted (SHA-256 differs)")
    return info


def _rows(path: Path) -> Iterator[list[Any]]:
    with gzip.open(path, "rt") as fh:
        for line in fh:
            yield [_decode(v) for v in json.loads(line)]


def _has_data(conn: sa.Connection) -> bool:
    inspector = sa.inspect(conn)
    for name in ("projects", "models"):
        if (
            inspector.has_table(name)
            and conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar()
        ):
            return True
    return False


def _drop_all(conn: sa.Connection) -> None:
    inspector = sa.inspect(conn)
    for table in reversed(T.metadata.sorted_tables):
        if inspector.has_table(table.name):
            table.drop(conn)
    if inspector.has_table("alembic_version"):
        conn.exec_driver_sql("DROP TABLE alembic_version")


def _load_tables(engine: sa.Engine, folder: Path, info: dict[str, Any], revision: str) -> None:
    """The logical export into a database: schema at the backup's revision, then the rows."""
    from alembic import command
    from alembic.config import Config

    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.execution_options(wk_write=True)
        with conn.begin():
            _drop_all(conn)
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            columns = info.get("columns", {})
            for table in T.metadata.sorted_tables:
                path = folder / "tables" / f"{table.name}.jsonl.gz"
                if not path.is_file():
                    continue  # a table the backup's revision did not have yet
                names = columns.get(table.name) or [c.name for c in table.columns]
                target = sa.table(table.name, *(sa.column(n) for n in names))
                batch: list[dict[str, Any]] = []
                for row in _rows(path):
                    batch.append(dict(zip(names, row, strict=True)))
                    if len(batch) >= INSERT_BATCH:
                        conn.execute(sa.insert(target), batch)
                        batch = []
                if batch:
                    conn.execute(sa.insert(target), batch)
            if conn.dialect.name == "postgresql":
                for table in T.metadata.sorted_tables:
                    if "id" in table.c and table.c.id.autoincrement is True:
                        conn.exec_driver_sql(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
                        )


def restore_database(
    store: StoreBase, directory: str | Path, *, force: bool = False
) -> dict[str, Any]:
    """Load a backup into ``store``'s database, which must hold no project (``force`` drops
    what it holds first). The store is not opened before (opening would create the schema at
    the current revision); it is opened, and so upgraded, after. Returns the backup's info."""
    info = read_backup_info(directory)
    folder = Path(directory)
    revision = info.get("revision")
    if revision is None:
        raise ValueError("path: the backup has no schema revision")
    store.close()
    for cache in (store._models, store._projects, store._specs, store._spec_ids, store._dims):
        cache.clear()  # ids and schemas of the database being replaced
    engine = store._create_engine()
    try:
        with engine.connect() as conn, conn.begin():
            if _has_data(conn) and not force:
                raise ValueError(
                    "the target database already holds projects; restore into an empty "
                    "database, or pass force=True (--force) to replace them"
                )
        copy = folder / "database.sqlite"
        if engine.dialect.name == "sqlite" and copy.is_file():
            # SQLite to SQLite: the online backup API, page by page, replaces the whole file
            raw = engine.raw_connection()
            try:
                source = sqlite3.connect(copy)
                try:
                    source.backup(raw.driver_connection)  # type: ignore[arg-type]
                finally:
                    source.close()
            finally:
                raw.close()
        else:
            _load_tables(engine, folder, info, str(revision))
    finally:
        engine.dispose()
    store.open()  # upgrades a backup of an older revision to HEAD
    return info
