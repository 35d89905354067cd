"""The core every part of the :class:`~watchkeeper.store.Store` shares: the engine (SQLite or
PostgreSQL), one transaction per call, migrations, and the cached lookup of project and model
names to their row ids."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa

from watchkeeper.store import _schema as T
from watchkeeper.store._events import check_name
from watchkeeper.store._helpers import timestamp

HEAD = "0008"
"""Alembic revision this code expects; opening a store upgrades an older schema to it."""

DEFAULT_PATH = Path(".watchkeeper") / "watchkeeper.db"
MIGRATIONS = Path(__file__).with_name("migrations")
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_LOCK_KEY = 7_271_001  # PostgreSQL advisory lock held while migrating


def resolve_url(url: str | None) -> str:
    """The SQLAlchemy URL for ``url``: None → ``$WATCHKEEPER_DB`` or the default SQLite file;
    a plain path → SQLite file; ``postgresql://`` → the psycopg 3 driver.

    Examples
    --------
    >>> resolve_url("runs/wk.db")
    'sqlite:///runs/wk.db'
    >>> resolve_url("postgresql://u@db:5432/wk")
    'postgresql+psycopg://u@db:5432/wk'
    """
    if url is None:
        url = os.environ.get("WATCHKEEPER_DB") or None
    if url is None:
        return f"sqlite:///{DEFAULT_PATH}"
    if not isinstance(url, str) or not url:
        raise ValueError(f"url: expected a database URL or a file path, got {url!r}")
    if "://" not in url:
        return f"sqlite:///{url}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class StoreBase:
    """Connection, transactions, migrations and name lookups; the parts of
    :class:`~watchkeeper.store.Store` build on it (see that class for the parameters)."""

    def __init__(
        self, url: str | None = None, *, schema: str | None = None, synchronous: str = "FULL"
    ) -> None:
        self.url = url
        self.schema = schema
        self.synchronous = synchronous
        self._engine: sa.Engine | None = None
        self._open_lock = threading.Lock()
        self._serial: threading.RLock | None = None
        self._models: dict[tuple[str, str], int] = {}
        self._projects: dict[str, int] = {}
        self._specs: dict[int, dict[str, list[str]]] = {}
        self._spec_ids: dict[tuple[int, str], int] = {}
        self._dims: dict[int, tuple[int | None, int | None]] = {}

    def __repr__(self) -> str:
        # never print a password that is part of the URL
        try:
            shown = sa.make_url(resolve_url(self.url)).render_as_string(hide_password=True)
        except (ValueError, sa.exc.ArgumentError):
            shown = "<invalid url>"
        return f"Store({shown!r})"

    # ------------------------------------------------------------------ connection
    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (the database is opened and migrated on first access)."""
        if self._engine is None:
            self.open()
        assert self._engine is not None
        return self._engine

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return str(self.engine.dialect.name)

    def open(self) -> Self:
        """Connect, create the database if needed and apply pending migrations; returns self."""
        with self._open_lock:
            if self._engine is None:
                engine = self._create_engine()
                try:
                    self._engine = engine
                    self._migrate()
                except BaseException:
                    self._engine = None
                    engine.dispose()
                    raise
        return self

    def close(self) -> None:
        """Release every pooled connection (the store reopens on next use)."""
        with self._open_lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _create_engine(self) -> sa.Engine:
        url = sa.make_url(resolve_url(self.url))
        backend = url.get_backend_name()
        if backend == "sqlite":
            return self._sqlite_engine(url)
        if backend == "postgresql":
            return self._postgres_engine(url)
        raise ValueError(f"url: unsupported database {backend!r} (use sqlite or postgresql)")

    def _sqlite_engine(self, url: sa.URL) -> sa.Engine:
        if self.synchronous not in _SYNCHRONOUS:
            raise ValueError(
                f"synchronous: expected one of {_SYNCHRONOUS}, got {self.synchronous!r}"
            )
        memory = url.database in (None, "", ":memory:")
        if memory:
            # One shared connection, so every thread sees the same in-memory database;
            # the lock keeps them from interleaving statements on it.
            engine = sa.create_engine(
                url,
                poolclass=sa.pool.StaticPool,
                connect_args={"check_same_thread": False},
            )
            self._serial = threading.RLock()
        else:
            Path(str(url.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(
                url, connect_args={"check_same_thread": False, "timeout": 30.0}
            )
        synchronous = self.synchronous

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            # The driver's own transaction handling is off: we send BEGIN ourselves (below).
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            # A write takes the database's write lock up front: a deferred transaction that
            # reads first and writes later can fail with SQLITE_BUSY instead of waiting.
            write = conn.get_execution_options().get("wk_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def _postgres_engine(self, url: sa.URL) -> sa.Engine:
        connect_args: dict[str, Any] = {}
        if self.schema is not None:
            if not isinstance(self.schema, str) or not _SCHEMA_NAME.match(self.schema):
                raise ValueError(f"schema: expected an identifier, got {self.schema!r}")
            with sa.create_engine(url, poolclass=sa.pool.NullPool).begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            connect_args["options"] = f"-csearch_path={self.schema}"
        return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)

    @contextmanager
    def _tx(self, *, write: bool = False, consistent: bool = False) -> Iterator[sa.Connection]:
        """One transaction; ``write`` takes SQLite's write lock at BEGIN, ``consistent`` gives
        a read of several statements one snapshot on PostgreSQL (SQLite reads always do)."""
        engine = self.engine
        with self._serial or nullcontext(), engine.connect() as conn:
            if write:
                conn.execution_options(wk_write=True)
            if consistent and conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def _migrate(self) -> None:
        with self._tx(write=True) as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
            if self._revision(conn) == HEAD:
                return
            from alembic import command
            from alembic.config import Config

            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    @staticmethod
    def _revision(conn: sa.Connection) -> str | None:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
        return None if row is None else str(row[0])

    def ping(self) -> bool:
        """True when the database answers (for readiness probes)."""
        with self._tx() as conn:
            conn.exec_driver_sql("SELECT 1")
        return True

    def _insert(self, table: sa.Table) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    # ------------------------------------------------------------------ names to ids
    def _project_id(self, conn: sa.Connection, project: str, *, create: bool = False) -> int:
        check_name(project, "project")
        hit = self._projects.get(project)
        if hit is not None:
            return hit
        if create:
            conn.execute(
                self._insert(T.projects)
                .values(name=project, created_at=timestamp())
                .on_conflict_do_nothing(index_elements=["name"])
            )
        found = conn.execute(
            sa.select(T.projects.c.id).where(T.projects.c.name == project)
        ).scalar()
        if found is None:
            raise ValueError(f"project: {project!r} does not exist (create it first)")
        return int(found)

    def _remember_project(self, project: str, project_id: int) -> None:
        # Cached only after the transaction that found or made it has committed.
        self._projects[project] = project_id

    def _model_id(
        self, conn: sa.Connection, project: str, model: str, *, create: bool = False
    ) -> int:
        check_name(model, "model")
        hit = self._models.get((project, model))
        if hit is not None:
            return hit
        pid = self._project_id(conn, project, create=create)
        if create:
            conn.execute(
                self._insert(T.models)
                .values(project_id=pid, name=model, created_at=timestamp())
                .on_conflict_do_nothing(index_elements=["project_id", "name"])
            )
        found = conn.execute(
            sa.select(T.models.c.id)
            .where(T.models.c.project_id == pid)
            .where(T.models.c.name == model)
        ).scalar()
        if found is None:
            raise ValueError(f"model: {model!r} is not registered in project {project!r}")
        return int(found)

    def _committed_model(self, project: str, model: str, model_id: int) -> None:
        self._models[(project, model)] = model_id
