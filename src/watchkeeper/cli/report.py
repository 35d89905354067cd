"""``watchkeeper report MODEL --since 7d -o report.html``: the model page as one offline file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from watchkeeper.cli._common import DbOpt, ModelArg, ProjectOpt, fail, model_store


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        model: ModelArg,
        since: Annotated[
            str | None,
            typer.Option("--since", help="Only the last span, e.g. 7d or 24h (default: all)."),
        ] = None,
        output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path(
            "report.html"
        ),
        project: ProjectOpt = "default",
        db: DbOpt = None,
    ) -> None:
        """Write the model's console page (flags against the band, performance, drift,
        alerts) as one self-contained HTML file: charts and Plotly.js inside, works offline."""
        from watchkeeper.checks._config import parse_duration
        from watchkeeper.ui import render_report

        cutoff = None
        if since is not None:
            try:
                cutoff = time.time() - parse_duration(since, "--since")
            except ValueError as exc:
                raise fail(str(exc)) from None
        with model_store(db, project, model) as store:
            html = render_report(store, project, model, since=cutoff)
        try:
            output.write_text(html, encoding="utf-8")
        except OSError as exc:
            raise fail(f"--output: cannot write {output}: {exc.strerror}") from None
        typer.echo(f"wrote {output} ({len(html) / 1e6:.1f} MB)")
