"""The :class:`Store`: every table of Watchkeeper behind one object, SQLite or PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from watchkeeper.store import _schema as T
from watchkeeper.store._codec import (
    canonical,
    clean_floats,
    window_from_bytes,
    window_to_bytes,
)
from watchkeeper.store._events import (
    Chunk,
    EncodedBatch,
    check_ids,
    check_name,
    decode_window,
    encode_events,
    encode_labels,
)
from watchkeeper.store._types import SCOPES, IngestResult
from watchkeeper.window import Window

HEAD = "0005"
"""Alembic revision this code expects; opening a store upgrades an older schema to it."""

DEFAULT_PATH = Path(".watchkeeper") / "watchkeeper.db"
MIGRATIONS = Path(__file__).with_name("migrations")
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_LOCK_KEY = 7_271_001  # PostgreSQL advisory lock held while migrating
_IN_CHUNK = 500  # ids per IN (...) list
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


def _now() -> float:
    return time.time()


def _opt_float(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{what}: expected a number or None, got {value!r}")
    out = float(value)
    return None if math.isnan(out) else out


def _finite(value: Any, what: str) -> float | None:
    out = _opt_float(value, what)
    if out is not None and not math.isfinite(out):
        raise ValueError(f"{what}: expected a finite number, got {value!r}")
    return out


def _opt_dict(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{what}: expected a dict or None, got {type(value).__name__}")
    try:
        return json.dumps(clean_floats(dict(value)), default=_jsonable, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: not JSON serialisable ({exc})") from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return clean_floats(value.tolist())
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _fetch_rows(conn: sa.Connection, query: sa.Select[Any]) -> list[Any]:
    """All rows of a query as the driver's own tuples (the hot read path).

    Skips SQLAlchemy's row objects, and on PostgreSQL asks for binary results so ``bytea``
    arrives as raw bytes rather than hex text twice its size.
    """
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    dbapi: Any = conn.connection.driver_connection
    cursor = dbapi.cursor()
    try:
        if conn.dialect.name == "postgresql":
            cursor.execute(str(compiled), compiled.params, binary=True)
        else:
            positions = compiled.positiontup or []
            cursor.execute(str(compiled), [compiled.params[k] for k in positions])
        return list(cursor.fetchall())
    finally:
        cursor.close()


class Store:
    """Watchkeeper's database: SQLite (embedded default) or PostgreSQL, same code.

    Parameters
    ----------
    url
        SQLAlchemy URL (``sqlite:///path.db``, ``postgresql+psycopg://user@host/db``), a plain
        file path (SQLite), or None for ``$WATCHKEEPER_DB`` or else the SQLite file
        ``./.watchkeeper/watchkeeper.db``. ``sqlite://`` is an in-memory database.
    schema
        PostgreSQL only: a schema to hold the tables (created if missing), e.g. one per test run
        or per tenant database. None uses the connection's ``search_path``.
    synchronous
        SQLite only: ``"FULL"`` (default; a commit is on disk before it returns, even through a
        power cut) or ``"NORMAL"`` (in WAL mode: safe against a crash of the process, but the
        last commits may be lost if the machine loses power; fewer fsyncs).

    Notes
    -----
    The database is opened (and created and migrated) on first use; :meth:`open` does it
    eagerly. One instance is safe to share between threads: each call runs in its own
    transaction on a pooled connection; on SQLite, write transactions start with
    ``BEGIN IMMEDIATE`` and wait up to 30 s for another writer (process or thread).

    Examples
    --------
    >>> store = Store("sqlite://")
    >>> store.create_project("p")
    >>> token = store.create_token("p", {"ingest", "read"})
    >>> project, scopes = store.authenticate(token)
    >>> project, sorted(scopes)
    ('p', ['ingest', 'read'])
    >>> store.authenticate("wk_wrong") is None
    True
    >>> store.close()
    """

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

    def open(self) -> Store:
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

    def __enter__(self) -> Store:
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

    # ------------------------------------------------------------------ projects, tokens
    def _project_id(self, conn: sa.Connection, project: str, *, create: bool = False) -> int:
        check_name(project, "project")
        hit = self._projects.get(project)
        if hit is not None:
            return hit
        if create:
            conn.execute(
                self._insert(T.projects)
                .values(name=project, created_at=_now())
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

    def create_project(self, name: str) -> None:
        """Create a project (a tenant); doing it again is a no-op."""
        with self._tx(write=True) as conn:
            pid = self._project_id(conn, name, create=True)
        self._remember_project(name, pid)

    def has_project(self, name: str) -> bool:
        """Whether the project exists."""
        check_name(name, "project")
        with self._tx() as conn:
            found = conn.execute(
                sa.select(T.projects.c.id).where(T.projects.c.name == name)
            ).scalar()
        return found is not None

    def list_projects(self) -> list[str]:
        """Names of every project."""
        with self._tx() as conn:
            return list(conn.execute(sa.select(T.projects.c.name).order_by("name")).scalars())

    @staticmethod
    def _hash_token(token: str) -> str:
        # Tokens are 256 random bits, so a plain SHA-256 is enough: there is no dictionary to
        # guess from, and a slow KDF would cost every authenticated request.
        return hashlib.sha256(token.encode()).hexdigest()

    def create_token(self, project: str, scopes: Iterable[str]) -> str:
        """A new API token of the project with these scopes, returned once (stored hashed)."""
        if isinstance(scopes, str) or not isinstance(scopes, Iterable):
            raise ValueError(f"scopes: expected a set of scope names, got {scopes!r}")
        wanted = set(scopes)
        if not wanted or not wanted <= SCOPES:
            raise ValueError(
                f"scopes: expected a non-empty subset of {sorted(SCOPES)}, "
                f"got {sorted(map(str, wanted))}"
            )
        token = "wk_" + secrets.token_urlsafe(32)
        with self._tx(write=True) as conn:
            pid = self._project_id(conn, project)
            conn.execute(
                sa.insert(T.api_tokens).values(
                    project_id=pid,
                    token_hash=self._hash_token(token),
                    prefix=token[:10],
                    scopes=json.dumps(sorted(wanted)),
                    created_at=_now(),
                )
            )
        return token

    def authenticate(self, token: str) -> tuple[str, frozenset[str]] | None:
        """``(project, scopes)`` of a valid, unrevoked token, else None."""
        if not isinstance(token, str) or not token:
            return None
        query = (
            sa.select(T.projects.c.name, T.api_tokens.c.scopes)
            .join(T.projects, T.projects.c.id == T.api_tokens.c.project_id)
            .where(T.api_tokens.c.token_hash == self._hash_token(token))
            .where(T.api_tokens.c.revoked_at.is_(None))
        )
        with self._tx() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return str(row[0]), frozenset(json.loads(row[1]))

    def revoke_token(self, token: str) -> bool:
        """Revoke a token; True if it existed and was active."""
        if not isinstance(token, str) or not token:
            raise ValueError("token: expected the token string")
        with self._tx(write=True) as conn:
            result = conn.execute(
                sa.update(T.api_tokens)
                .where(T.api_tokens.c.token_hash == self._hash_token(token))
                .where(T.api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
        return bool(result.rowcount)

    # ------------------------------------------------------------------ models
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
                .values(project_id=pid, name=model, created_at=_now())
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

    def register_model(self, project: str, model: str) -> None:
        """Register a model (and its project if new); doing it again is a no-op."""
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model, create=True)
        self._committed_model(project, model, mid)

    def has_model(self, project: str, model: str) -> bool:
        """Whether the project has this model."""
        check_name(project, "project")
        check_name(model, "model")
        if (project, model) in self._models:
            return True
        try:
            with self._tx() as conn:
                mid = self._model_id(conn, project, model)
        except ValueError:
            return False
        self._committed_model(project, model, mid)
        return True

    def list_models(self, project: str) -> list[str]:
        """Names of the project's models."""
        with self._tx() as conn:
            pid = self._project_id(conn, project)
            return list(
                conn.execute(
                    sa.select(T.models.c.name).where(T.models.c.project_id == pid).order_by("name")
                ).scalars()
            )

    def register_model_version(
        self,
        project: str,
        model: str,
        version: str,
        *,
        artifact_uri: str | None = None,
        sha256: str | None = None,
        data_fingerprint: str | None = None,
        environment: dict[str, Any] | None = None,
        operating_point: dict[str, Any] | None = None,
        expected_prevalence: float | None = None,
        expected_volume: float | None = None,
        window: str | None = None,
    ) -> None:
        """Record a model version (registering the model if new).

        Registering an existing version again updates the fields given (not None) and keeps
        the others.
        """
        check_name(version, "version")
        if artifact_uri is not None and not isinstance(artifact_uri, str):
            raise ValueError(f"artifact_uri: expected a string, got {artifact_uri!r}")
        if sha256 is not None and (
            not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256)
        ):
            raise ValueError(f"sha256: expected 64 hex digits, got {sha256!r}")
        if data_fingerprint is not None and not isinstance(data_fingerprint, str):
            raise ValueError(f"data_fingerprint: expected a string, got {data_fingerprint!r}")
        if window is not None and not isinstance(window, str):
            raise ValueError(f"window: expected a string such as '1h', got {window!r}")
        prevalence = _finite(expected_prevalence, "expected_prevalence")
        if prevalence is not None and not 0.0 <= prevalence <= 1.0:
            raise ValueError(f"expected_prevalence: expected a share in [0, 1], got {prevalence}")
        volume = _finite(expected_volume, "expected_volume")
        if volume is not None and volume < 0:
            raise ValueError(f"expected_volume: expected a count >= 0, got {volume}")
        fields = {
            "artifact_uri": artifact_uri,
            "sha256": None if sha256 is None else sha256.lower(),
            "data_fingerprint": data_fingerprint,
            "environment": _opt_dict(environment, "environment"),
            "operating_point": _opt_dict(operating_point, "operating_point"),
            "expected_prevalence": prevalence,
            "expected_volume": volume,
            "window": window,
        }
        given = {k: v for k, v in fields.items() if v is not None}
        mv = T.model_versions
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model, create=True)
            existing = conn.execute(
                sa.select(mv.c.id).where(mv.c.model_id == mid).where(mv.c.version == version)
            ).scalar()
            if existing is None:
                conn.execute(
                    sa.insert(mv).values(model_id=mid, version=version, created_at=_now(), **fields)
                )
            elif given:
                conn.execute(sa.update(mv).where(mv.c.id == existing).values(**given))
        self._committed_model(project, model, mid)

    @staticmethod
    def _version_dict(model: str, row: Any) -> dict[str, Any]:
        return {
            "model": model,
            "version": row.version,
            "artifact_uri": row.artifact_uri,
            "sha256": row.sha256,
            "data_fingerprint": row.data_fingerprint,
            "environment": _loads(row.environment),
            "operating_point": _loads(row.operating_point),
            "expected_prevalence": row.expected_prevalence,
            "expected_volume": row.expected_volume,
            "window": row.window,
            "created_at": row.created_at,
        }

    def get_model_version(self, project: str, model: str, version: str) -> dict[str, Any]:
        """The version's record as a dict; KeyError when the version is unknown."""
        check_name(version, "version")
        mv = T.model_versions
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            row = conn.execute(
                sa.select(mv).where(mv.c.model_id == mid).where(mv.c.version == version)
            ).first()
        if row is None:
            raise KeyError(f"model {model!r} has no version {version!r}")
        return self._version_dict(model, row)

    def list_model_versions(self, project: str, model: str) -> list[dict[str, Any]]:
        """Every version of the model, oldest first."""
        mv = T.model_versions
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            rows = conn.execute(
                sa.select(mv).where(mv.c.model_id == mid).order_by(mv.c.created_at, mv.c.id)
            ).all()
        return [self._version_dict(model, r) for r in rows]

    # ------------------------------------------------------------------ references
    def put_reference(
        self,
        project: str,
        model: str,
        version: str | None,
        reference: Window,
        profile: dict[str, Any] | None = None,
    ) -> None:
        """Store the reference set of a model version (replacing an earlier one).

        ``version=None`` stores a reference of the model as a whole. The window is stored as
        one compact binary blob (numeric columns as raw bytes, embeddings as ``float32``).
        """
        if version is not None:
            check_name(version, "version")
        if not isinstance(reference, Window):
            raise ValueError(
                f"reference: expected a watchkeeper.window.Window, got {type(reference).__name__}"
            )
        data = window_to_bytes(reference)
        profile_text = _opt_dict(profile, "profile")
        rs = T.reference_sets
        key = version or ""
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model, create=True)
            conn.execute(sa.delete(rs).where(rs.c.model_id == mid).where(rs.c.version == key))
            conn.execute(
                sa.insert(rs).values(
                    model_id=mid,
                    version=key,
                    n_rows=len(reference),
                    data=data,
                    profile=profile_text,
                    created_at=_now(),
                )
            )
        self._committed_model(project, model, mid)

    def _reference_row(
        self, project: str, model: str, version: str | None, columns: Sequence[Any]
    ) -> Any:
        rs = T.reference_sets
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            query = sa.select(*columns).where(rs.c.model_id == mid)
            if version is not None:
                check_name(version, "version")
                query = query.where(rs.c.version == version)
            return conn.execute(query.order_by(rs.c.created_at.desc(), rs.c.id.desc())).first()

    def get_reference(self, project: str, model: str, version: str | None = None) -> Window:
        """The reference of a version (``None``: the most recently stored one); KeyError if
        there is none."""
        row = self._reference_row(project, model, version, [T.reference_sets.c.data])
        if row is None:
            raise KeyError(
                f"model {model!r} has no reference"
                + ("" if version is None else f" for version {version!r}")
            )
        return window_from_bytes(bytes(row[0]))

    def get_reference_profile(
        self, project: str, model: str, version: str | None = None
    ) -> dict[str, Any] | None:
        """The profile stored with the reference, or None."""
        row = self._reference_row(project, model, version, [T.reference_sets.c.profile])
        if row is None:
            return None
        out: dict[str, Any] | None = _loads(row[0])
        return out

    # ------------------------------------------------------------------ events
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
        """
        received = _now()
        batch = encode_events(events)  # validates the whole batch: indices in errors are its own
        parts = [batch]
        if len(events) > CHUNK_ROWS:
            # big batches are stored as several chunks, so a small window never decodes a
            # million-row chunk; ids repeated across parts are caught by the primary key
            parts = [
                encode_events(events.take(np.arange(i, min(i + CHUNK_ROWS, len(events)))))
                for i in range(0, len(events), CHUNK_ROWS)
            ]
        env_text = _opt_dict(environment, "environment")
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model)
            self._label_lock(conn, mid, shared=True)
            self._check_dims(conn, mid, batch.embedding_dim, batch.n_classes)
            sid = self._schema_id(conn, mid, batch.spec_hash, batch.spec)
            accepted = 0
            for part in parts:
                new = self._insert_events(conn, part, mid, sid, received) if len(part) else 0
                if new:
                    self._copy_early_labels(conn, mid, part.ids)
                accepted += new
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
        return IngestResult(accepted=accepted, duplicates=duplicates)

    def _insert_events(
        self, conn: sa.Connection, batch: EncodedBatch, model_id: int, schema_id: int, now: float
    ) -> int:
        """Write the batch's chunk, then its index rows skipping ids already stored; returns
        how many events were new. A chunk none of whose events were new is removed again."""
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
            accepted = len(cursor.fetchall())
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
        if accepted == 0:
            conn.execute(sa.delete(ec).where(ec.c.id == chunk_id))
        return accepted

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
            self._count(conn, mid, _now(), rejected=int(n))

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
        be None or NaN.
        """
        id_list, texts = encode_labels(ids, labels)
        now = _now()
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model)
            self._label_lock(conn, mid, shared=False)
            if id_list:
                stmt = self._insert(T.labels)
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
        return len(id_list)

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
            for row in _fetch_rows(conn, query):
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
        lo = _finite(start, "start")
        hi = _finite(end, "end")
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
            groups = _fetch_rows(
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
                for c, row in _fetch_rows(conn, query):
                    rows_of[int(c)].append(int(row))
            labelled = _fetch_rows(
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
        cutoff = _finite(since, "since")
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
        cutoff = _finite(since, "since")
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

    # ------------------------------------------------------------------ retention
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
        cutoff = _finite(ts, "ts")
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
        age = _finite(age_seconds, "age_seconds")
        if age is None or age < 0:
            raise ValueError(f"age_seconds: expected a duration >= 0, got {age_seconds!r}")
        return self.delete_events_before(_now() - age, **kwargs)

    # ------------------------------------------------------------------ findings, metrics
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
        now = _now()
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
                row[key] = _opt_float(f.get(key), f"{what}.{key}")
            drift = f.get("drift")
            if drift is not None and not isinstance(drift, bool | np.bool_):
                raise ValueError(f"{what}.drift: expected a bool or None, got {drift!r}")
            row["drift"] = None if drift is None else bool(drift)
            details = dict(f.get("details") or {})
            extra = {k: v for k, v in f.items() if k not in self._FINDING_KEYS}
            if extra:
                details.setdefault("extra", {}).update(extra)
            row["details"] = _opt_dict(details, f"{what}.details")
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
        cutoff = _finite(since, "since")
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
        return [
            {
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
                "details": _loads(r.details) or {},
                "created_at": r.created_at,
            }
            for r in rows
        ]

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
        at = _finite(ts, "ts")
        if at is None:
            raise ValueError("ts: expected a time (seconds since the epoch)")
        if not isinstance(values, Mapping):
            raise ValueError(
                f"values: expected a dict of name -> number, got {type(values).__name__}"
            )
        rows = []
        for name, value in values.items():
            check_name(name, "values (a metric name)", 256)
            number = _opt_float(value, f"values.{name}")
            if number is not None and not math.isfinite(number):
                number = None
            rows.append({"name": name, "ts": at, "value": number})
        label_text = _opt_dict(labels, "labels")
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
        lo, hi = _finite(since, "since"), _finite(until, "until")
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
                "value": _nan(r.value),
                "labels": _loads(r.labels) or {},
                "model": model,
            }
            for r in rows
        ]

    # ------------------------------------------------------------------ alerts, config, state
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
        _opt_dict(alert, "alert")
        al = T.alerts
        now = _now()
        with self._tx(write=True) as conn:
            pid = self._project_id(conn, project)
            row = conn.execute(
                sa.select(al).where(al.c.project_id == pid).where(al.c.key == key)
            ).first()
            data = {} if row is None else json.loads(row.data)
            data.update(json.loads(_opt_dict(alert, "alert") or "{}"))
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
        cutoff = _finite(since, "since")
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

    def put_monitor_config(self, project: str, model: str, config: Mapping[str, Any]) -> None:
        """Store the model's monitor configuration (a JSON-ready dict), replacing the last."""
        text = _opt_dict(config, "config")
        if text is None:
            raise ValueError("config: expected a dict")
        mc = T.monitor_configs
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model)
            stmt = self._insert(mc).values(model_id=mid, config=text, updated_at=_now())
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
        out: dict[str, Any] | None = _loads(text)
        return out

    def put_state(self, project: str, key: str, state: Mapping[str, Any]) -> None:
        """Store opaque JSON state (a streaming detector, an alert rule's memory) under a key."""
        check_name(key, "key", 512)
        text = _opt_dict(state, "state")
        if text is None:
            raise ValueError("state: expected a dict")
        st = T.states
        with self._tx(write=True) as conn:
            pid = self._project_id(conn, project)
            stmt = self._insert(st).values(project_id=pid, key=key, state=text, updated_at=_now())
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
        out: dict[str, Any] | None = _loads(text)
        return out

    def acquire_lease(self, project: str, key: str, holder: str, ttl: float) -> bool:
        """Take (or renew) the lease ``key`` for ``holder`` for ``ttl`` seconds.

        True when ``holder`` now holds it: nobody held it, its holder let it lapse (did not
        renew it within the ttl the holder asked for), or ``holder`` held it already. One
        statement decides, in one transaction, so two processes sharing a database (server
        replicas on one PostgreSQL, a cron job beside a server) never both hold it.

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
        now = _now()
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
