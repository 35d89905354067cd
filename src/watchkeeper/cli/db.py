"""``watchkeeper db``: create or upgrade the database, show what it holds, apply retention."""

from __future__ import annotations

import json
import time
from typing import Any

import typer


def parse_age(text: str) -> float:
    """Seconds in ``30d``, ``12h``, ``90m``, ``2w`` or a plain number of seconds.

    Examples
    --------
    >>> parse_age("30d"), parse_age("90m"), parse_age("45")
    (2592000.0, 5400.0, 45.0)
    """
    from watchkeeper.checks._config import parse_duration

    return parse_duration(text, "--older-than")


def _open(db: str | None) -> Any:
    from watchkeeper.store import Store

    return Store(db).open()


DB_OPTION = typer.Option(
    None, "--db", help="Database URL or SQLite path (default $WATCHKEEPER_DB)."
)


def register(app: typer.Typer) -> None:
    """Add ``watchkeeper db upgrade|info|prune|backup|restore`` to ``app``."""
    db_app = typer.Typer(help="The event store: migrations, contents, retention, backup.")
    app.add_typer(db_app, name="db")

    @db_app.command("upgrade")
    def upgrade(db: str | None = DB_OPTION) -> None:
        """Create the database if needed and apply pending migrations."""
        from watchkeeper.store._store import HEAD, resolve_url

        store = _open(db)
        store.close()
        typer.echo(f"{resolve_url(db)}: schema at revision {HEAD}")

    @db_app.command("info")
    def info(db: str | None = DB_OPTION) -> None:
        """Projects, models and how many events each holds, as JSON."""
        store = _open(db)
        try:
            out = {
                project: {m: store.count_events(project, m) for m in store.list_models(project)}
                for project in store.list_projects()
            }
        finally:
            store.close()
        typer.echo(json.dumps(out, indent=2))

    @db_app.command("prune")
    def prune(
        older_than: str = typer.Option(..., "--older-than", help="Age such as 30d or 12h."),
        project: str | None = typer.Option(None, "--project", help="Only this project."),
        model: str | None = typer.Option(None, "--model", help="Only this model (with --project)."),
        batch: int = typer.Option(10_000, "--batch", help="Events deleted per transaction."),
        db: str | None = DB_OPTION,
    ) -> None:
        """Delete raw events older than an age; findings and metric values are kept."""
        try:
            cutoff = time.time() - parse_age(older_than)
            store = _open(db)
            try:
                n = store.delete_events_before(cutoff, batch=batch, project=project, model=model)
            finally:
                store.close()
        except ValueError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"deleted {n} events older than {older_than}")

    artifacts_option = typer.Option(
        None,
        "--artifacts",
        help="Artifact store (default: $WATCHKEEPER_ARTIFACTS, else beside the SQLite file).",
        envvar="WATCHKEEPER_ARTIFACTS",
    )

    @db_app.command("backup")
    def backup(
        path: str = typer.Argument(..., help="A new directory to write the backup into."),
        artifacts: str | None = artifacts_option,
        db: str | None = DB_OPTION,
    ) -> None:
        """Back up the database and the artifact store into PATH (docs/registry.md, the drill).

        SQLite is copied with its online backup API while writers go on; every database is
        also exported table by table, so PostgreSQL needs no pg_dump."""
        from watchkeeper import registry

        try:
            info = registry.backup(db, path, artifacts=artifacts)
        except (ValueError, OSError) as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(
            f"backed up {sum(info['tables'].values())} rows of {len(info['tables'])} tables "
            f"(revision {info['revision']}) and {info['artifacts']['artifacts']} artifacts "
            f"into {path}"
        )

    @db_app.command("restore")
    def restore(
        path: str = typer.Argument(..., help="A directory written by `watchkeeper db backup`."),
        artifacts: str | None = artifacts_option,
        force: bool = typer.Option(False, "--force", help="Replace a database that has data."),
        db: str | None = DB_OPTION,
    ) -> None:
        """Restore a backup into an empty database (--force replaces one) and its artifacts;
        every file of the backup is checked against its SHA-256 first."""
        from watchkeeper import registry

        try:
            info = registry.restore(db, path, artifacts=artifacts, force=force)
        except (ValueError, OSError) as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(
            f"restored {sum(info['tables'].values())} rows and "
            f"{info['artifacts_restored']['artifacts']} artifacts from {path}"
        )
