"""``watchkeeper explain MODEL FINDING_ID``: which features and segments account for a
finding (the id is the first column of ``watchkeeper check`` and ``GET .../findings``)."""

from __future__ import annotations

import json

import typer

from watchkeeper.cli._common import DbOpt, ModelArg, ProjectOpt, fail, model_store


def register(app: typer.Typer) -> None:
    @app.command("explain")
    def explain(
        model: ModelArg,
        finding_id: int = typer.Argument(..., min=1, help="The finding's id."),
        project: ProjectOpt = "default",
        db: DbOpt = None,
        alpha: float = typer.Option(
            0.05, "--alpha", min=0.001, max=0.5, help="Level of the features' null threshold."
        ),
        save: bool = typer.Option(True, "--save/--no-save", help="Keep it in the finding."),
        output: str = typer.Option("table", "--format", help="table or json."),
    ) -> None:
        """Explain FINDING_ID of MODEL: each feature's permutation importance in telling the
        window from the reference (with the null threshold), and each segment's share of the
        drift (or, for a performance finding with labels, of the error change)."""
        from watchkeeper.runner import explain as run_explain

        if output not in ("table", "json"):
            raise fail(f"--format must be table or json, got {output!r}")
        with model_store(db, project, model) as store:
            try:
                result = run_explain(store, project, model, finding_id, save=save, alpha=alpha)
            except KeyError as exc:
                raise fail(f"finding_id: {exc.args[0]}") from exc
            except ValueError as exc:
                raise fail(str(exc)) from exc
        if output == "json":
            typer.echo(json.dumps(result))
            return
        from rich.console import Console
        from rich.table import Table

        console = Console()
        auc = result["auc"]
        head = f"{model} finding {finding_id} ({result['check']}, {result['subject']}): "
        head += "no features to classify" if auc is None else (
            f"domain classifier AUC {auc:.3f} (p = {result['auc_p_value']:.3g}), "
            f"null threshold {result['threshold']:.4f} at alpha {result['alpha']:g}"
        )
        console.print(head)
        features = Table(title="features (permutation importance, held out)")
        for col in ("feature", "importance", "p-value", "above null"):
            features.add_column(col)
        for f in result["features"][:15]:
            features.add_row(
                f["name"], f"{f['importance']:.4f}", f"{f['p_value']:.3g}",
                "yes" if f["above_null"] else "",
            )  # fmt: skip
        console.print(features)
        what = "error change" if result["kind"] == "performance" else (
            f"drift of {result['details'].get('measured')}"
        )
        segments = Table(title=f"segments (share of the {what})")
        for col in ("tag", "value", "share", "of which mix", "n reference", "n window", "p-value"):
            segments.add_column(col)
        for s in result["segments"]:
            segments.add_row(
                s["tag"], str(s["value"]), f"{s['share']:+.2f}", f"{s['mix_share']:+.2f}",
                str(s["n_reference"]), str(s["n_window"]),
                "-" if s["p_value"] is None else f"{s['p_value']:.3g}",
            )  # fmt: skip
        console.print(segments)
