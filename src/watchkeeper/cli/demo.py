"""``watchkeeper demo``: the document-fraud scenario, end to end, with a narrative."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    small: bool = typer.Option(False, "--small", help="The quick version (about a minute)."),
    serve: bool = typer.Option(
        False, "--serve", help="Keep the server running at the end to explore the API."
    ),
    days: int | None = typer.Option(
        None, "--days", help="Simulated days (default 10; 6 with --small).", min=1, max=60
    ),
    db: Path | None = typer.Option(
        None, "--db", help="SQLite file for this run (must not exist). "
        "Default: .watchkeeper/demo.db, recreated on each run.",
    ),
    seed: int = typer.Option(7, "--seed", help="Seed of everything random."),
) -> None:
    """Train a CNN that flags photocopied documents, watch it in production for simulated days.

    Normal days stay inside the expected band; a day with twice the photocopies is told apart
    as a prior shift; a new scanner that fades colour breaks the model: the flag count leaves
    the band, features and embeddings drift, an alert reaches a webhook, late labels confirm it.
    """
    try:
        from watchkeeper.demo.scenario import DemoConfig, run_demo

        run_demo(DemoConfig(days=days, small=small, db=db, serve=serve, seed=seed))
    except (ImportError, ValueError, RuntimeError) as exc:
        typer.secho(f"watchkeeper demo: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc


def register(app: typer.Typer) -> None:
    """Add ``watchkeeper demo`` to the application."""
    app.command("demo")(demo)
