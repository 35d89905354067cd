"""What several command modules share: the ``--db`` option's help, opening the store, and
failing with a message (exit code 2, as for any usage error)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

DB_HELP = "Database URL or SQLite file (default: $WATCHKEEPER_DB, else the embedded SQLite file)."

# The parameters every per-model command takes, declared once (``model: ModelArg``,
# ``project: ProjectOpt = "default"``, ``db: DbOpt = None``).
ModelArg = Annotated[str, typer.Argument(help="The model.")]
ProjectOpt = Annotated[str, typer.Option("--project", "-p", help="Project of the model.")]
DbOpt = Annotated[str | None, typer.Option("--db", help=DB_HELP, envvar="WATCHKEEPER_DB")]


def open_store(db: str | None) -> Any:
    """The :class:`~watchkeeper.store.Store` at ``db`` (imported here, not at CLI start-up)."""
    from watchkeeper.store import Store

    return Store(db)


def cli_actor() -> str:
    """Who the audit log names for a change made with the CLI: ``cli:<login>@<host>``."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` to standard error; raise the returned exit (code 2)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(2)


@contextmanager
def model_store(db: str | None, project: str, model: str) -> Iterator[Any]:
    """The store at ``db``, closed on exit; fails (exit 2) unless ``model`` is registered."""
    store = open_store(db)
    try:
        if not store.has_project(project) or not store.has_model(project, model):
            raise fail(f"model {model!r} is not registered in project {project!r}")
        yield store
    finally:
        store.close()
