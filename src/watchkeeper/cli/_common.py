"""What several command modules share: the ``--db`` option's help, opening the store, and
failing with a message (exit code 2, as for any usage error)."""

from __future__ import annotations

from typing import Any

import typer

DB_HELP = "Database URL or SQLite file (default: $WATCHKEEPER_DB, else the embedded SQLite file)."


def open_store(db: str | None) -> Any:
    """The :class:`~watchkeeper.store.Store` at ``db`` (imported here, not at CLI start-up)."""
    from watchkeeper.store import Store

    return Store(db)


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` to standard error; raise the returned exit (code 2)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(2)
