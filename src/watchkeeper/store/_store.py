"""The :class:`Store`: every table of Watchkeeper behind one object, SQLite or PostgreSQL.

The class is assembled from one part per aggregate, each in its own module:

====================  ==============================================================
``_base``             engine, transactions, migrations, project/model name → row id
``_projects``         projects and API tokens
``_models``           models, versions and each version's reference set
``_event_log``        events and labels, windows, ingest counters, retention
``_findings``         findings and metric values
``_alerts``           alerts
``_monitoring``       monitor configuration, runner state and leases
``_aliases``          aliases, their history and rollback; a version's artifact and lineage
``_console``          the console's pages of samples, curated sets, session tokens
``_outliers``         per-event outlier scores; the audit log of admin actions
``_jobs``             training jobs: state, trigger, logs, outputs, heartbeats
====================  ==============================================================
"""

from __future__ import annotations

from watchkeeper.store._alerts import AlertsMixin
from watchkeeper.store._aliases import AliasesMixin
from watchkeeper.store._base import DEFAULT_PATH, HEAD, MIGRATIONS, resolve_url
from watchkeeper.store._console import ConsoleMixin
from watchkeeper.store._event_log import CHUNK_ROWS, EventLogMixin
from watchkeeper.store._findings import FindingsMixin
from watchkeeper.store._jobs import JobsMixin
from watchkeeper.store._models import ModelsMixin
from watchkeeper.store._monitoring import MonitoringMixin
from watchkeeper.store._outliers import OutliersMixin
from watchkeeper.store._projects import ProjectsMixin

__all__ = ["CHUNK_ROWS", "DEFAULT_PATH", "HEAD", "MIGRATIONS", "Store", "resolve_url"]


class Store(
    ProjectsMixin,
    ModelsMixin,
    EventLogMixin,
    FindingsMixin,
    AlertsMixin,
    MonitoringMixin,
    AliasesMixin,
    ConsoleMixin,
    OutliersMixin,
    JobsMixin,
):
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
