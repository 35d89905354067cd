"""``watchkeeper segments MODEL``: weak segments of a window, printed or stored as findings."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from watchkeeper.cli._common import DbOpt, ModelArg, ProjectOpt, fail, model_store


def register(app: typer.Typer) -> None:
    @app.command()
    def segments(
        model: ModelArg,
        since: Annotated[
            str, typer.Option("--since", help="The window: the last span, e.g. 24h or 7d.")
        ] = "24h",
        min_support: Annotated[
            int, typer.Option("--min-support", help="Fewest events in a segment.")
        ] = 30,
        alpha: Annotated[
            float, typer.Option("--alpha", help="False discovery rate over the segments tested.")
        ] = 0.05,
        store_findings: Annotated[
            bool,
            typer.Option("--store", help="Store them as findings (check weak_segment)."),
        ] = False,
        output: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
        project: ProjectOpt = "default",
        db: DbOpt = None,
    ) -> None:
        """Find slices of tags and binned features whose error (or flag) rate is higher than
        the rest's: a SliceLine-like search with a minimum support and Benjamini–Hochberg
        control, ranked by effect × √support."""
        from watchkeeper.checks._config import parse_duration
        from watchkeeper.ui.segments import weak_segment_findings

        if output not in ("text", "json"):
            raise fail(f"--format: expected text or json, got {output!r}")
        try:
            span = parse_duration(since, "--since")
        except ValueError as exc:
            raise fail(str(exc)) from None
        now = time.time()
        with model_store(db, project, model) as store:
            window = store.read_window(project, model, start=now - span, end=now, embeddings=False)
            thresholds = store.flag_thresholds(project, model)
            try:
                found = weak_segment_findings(
                    window, thresholds, min_support=min_support, alpha=alpha
                )
            except ValueError as exc:
                raise fail(str(exc)) from None
            if store_findings and found:
                store.add_findings(project, model, found)
        if output == "json":
            typer.echo(json.dumps(found, indent=2))
            return
        if not found:
            typer.echo(f"no weak segment in {len(window):,} events")
            return
        for f in found:
            d = f["details"]
            typer.echo(
                f"{f['subject']}: {d['support']} events, rate {d['rate']:.3f} against "
                f"{d['rest']:.3f} elsewhere (adjusted p {f['p_value']:.2g})"
            )
