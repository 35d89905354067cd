"""Event store: projects, tokens, models, references, events, labels and results in SQL.

One code path for the embedded default (SQLite in WAL mode, one file created on first use) and
for PostgreSQL (psycopg 3), through SQLAlchemy 2 Core; the schema is versioned with Alembic
migrations shipped in this package and applied when a :class:`Store` opens.

``import watchkeeper.store`` stays light: SQLAlchemy is imported when :class:`Store` is first
used (``watchkeeper.store.Store`` resolves lazily).

Examples
--------
>>> import numpy as np
>>> from watchkeeper.store import Store
>>> from watchkeeper.window import Window
>>> store = Store("sqlite://")                       # in memory; a path or URL in real use
>>> store.create_project("demo")
>>> store.register_model("demo", "fraud")
>>> batch = Window.from_columns(ids=["a", "b"], ts=[1.0, 2.0], scores=[0.2, 0.9],
...                             features={"x": [1.5, 2.5]})
>>> store.log_events("demo", "fraud", batch)
IngestResult(accepted=2, duplicates=0)
>>> store.log_events("demo", "fraud", batch)       # re-sent: nothing changes
IngestResult(accepted=0, duplicates=2)
>>> store.log_labels("demo", "fraud", ["b"], [1])
1
>>> w = store.read_window("demo", "fraud", last_n=10)
>>> w.ids.tolist(), w.features["x"].tolist(), w.labels.tolist()
(['a', 'b'], [1.5, 2.5], [None, 1])
>>> store.close()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from watchkeeper.store._retention import start_retention
from watchkeeper.store._types import SCOPES, IngestResult

if TYPE_CHECKING:
    from watchkeeper.store._raw import raw_insert_rate
    from watchkeeper.store._store import Store

__all__ = ["SCOPES", "IngestResult", "Store", "raw_insert_rate", "start_retention"]


def __getattr__(name: str) -> Any:
    # Lazy: keeps SQLAlchemy out of ``import watchkeeper.store`` (and of the CLI start-up).
    if name == "Store":
        from watchkeeper.store._store import Store

        return Store
    if name == "raw_insert_rate":
        from watchkeeper.store._raw import raw_insert_rate

        return raw_insert_rate
    raise AttributeError(f"module 'watchkeeper.store' has no attribute {name!r}")
