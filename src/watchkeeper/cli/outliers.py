"""``watchkeeper outliers MODEL``: the scored events with the smallest outlier p-values."""

from __future__ import annotations

import json

import typer

from watchkeeper.cli._common import DbOpt, ModelArg, ProjectOpt, fail, model_store


def register(app: typer.Typer) -> None:
    @app.command("outliers")
    def outliers(
        model: ModelArg,
        project: ProjectOpt = "default",
        db: DbOpt = None,
        max_p_value: float = typer.Option(
            0.01, "--max-p-value", help="Events with a p-value at most this."
        ),
        since: str = typer.Option("7d", "--since", help="How far back, e.g. 24h or 30d."),
        limit: int = typer.Option(50, "--limit", min=1, max=1000, help="At most N events."),
        output: str = typer.Option("table", "--format", help="table or json."),
    ) -> None:
        """Print MODEL's most unusual events: their ids, times, outlier scores and conformal
        p-values (the runner scores every event against the version's reference)."""
        import time

        from watchkeeper.checks._config import parse_duration

        if output not in ("table", "json"):
            raise fail(f"--format must be table or json, got {output!r}")
        try:
            cutoff = time.time() - parse_duration(since, "--since")
        except ValueError as exc:
            raise fail(str(exc)) from exc
        with model_store(db, project, model) as store:
            try:
                rows = store.outlier_events(
                    project, model, max_p_value=max_p_value, start=cutoff, limit=limit
                )
            except ValueError as exc:
                raise fail(str(exc)) from exc
        if output == "json":
            typer.echo(json.dumps(rows))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{model}: {len(rows)} event(s) with p-value <= {max_p_value:g}")
        for col in ("id", "time", "version", "method", "score", "p-value"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                str(r["id"]),
                time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["ts"])),
                str(r["version"] or "-"),
                str(r["method"]),
                "-" if r["score"] is None else f"{r['score']:.4g}",
                f"{r['p_value']:.3g}",
            )
        Console().print(table)
