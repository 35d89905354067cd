"""``watchkeeper drift REFERENCE CURRENT``: per-column drift between two CSV or Parquet files."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer


class _Format(StrEnum):
    table = "table"
    json = "json"


def _parse_methods(pairs: list[str]) -> dict[str, str]:
    methods: dict[str, str] = {}
    for pair in pairs:
        column, sep, method = pair.partition("=")
        if not sep or not column or not method:
            raise ValueError(f"--method expects COLUMN=METHOD, got {pair!r}")
        methods[column] = method
    return methods


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def _note(details: dict[str, Any]) -> str:
    """What a reader should know beyond the numbers: why skipped, what is new, what was dropped."""
    notes = []
    if "skipped" in details:
        notes.append(str(details["skipped"]))
    if details.get("unseen_categories"):
        shown = ", ".join(details["unseen_categories"][:3])
        notes.append(f"new: {shown} ({details['unseen_share']:.0%} of current)")
    if details.get("type_mismatch"):
        notes.append("numeric in reference, text in current")
    dropped = sum(int(details.get(k) or 0) for k in (
        "missing_current", "infinite_current", "missing_reference", "infinite_reference"))
    if dropped:
        notes.append(f"{dropped} missing/inf dropped")
    return "; ".join(notes)


def _print_table(report: dict[str, Any], reference: Path, current: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Drift of {current.name} against {reference.name}")
    for name in ("column", "kind", "method", "statistic", "p-value", "bound", "drift", "note"):
        table.add_column(name, justify="right" if name in ("statistic", "p-value") else "left")
    for name, col in report["columns"].items():
        details = col.get("details", {})
        if col["p_value"] is not None:
            bound = f"p < {col['alpha']:g}"
        elif col["threshold"] is not None:
            bound = f"> {col['threshold']:g}"
        else:
            bound = "-"
        verdict = "[bold red]DRIFT[/]" if col["drift"] else "[green]ok[/]"
        if "skipped" in details:
            verdict = "[yellow]skipped[/]"
        table.add_row(name, str(details.get("kind", "")), col["method"],
                      _fmt(col["statistic"]), _fmt(col["p_value"]), bound, verdict,
                      _note(details))
    console = Console()
    console.print(table)
    n, k = report["n_columns"], report["n_drifted"]
    rule = ("any column" if report["method"] == "any"
            else f"at least {report['drift_share']:.0%} of columns")
    verdict = "[bold red]DRIFT[/]" if report["drift"] else "[green]no drift[/]"
    console.print(f"{k} of {n} columns drifted ({report['correction']} correction, "
                  f"alpha {report['alpha']:g}); dataset rule: {rule} -> {verdict}")
    empty = [f"{name} ({col['details']['no_values']})" for name, col in report["columns"].items()
             if col.get("details", {}).get("no_values")]
    if empty:
        console.print(f"[yellow]Data quality:[/] no values at all in {', '.join(empty)}; "
                      "not compared, and not counted as drift.")


def drift(
    reference: Path = typer.Argument(..., help="Reference data: a CSV or Parquet file."),
    current: Path = typer.Argument(..., help="Current data: a CSV or Parquet file."),
    fmt: _Format = typer.Option(_Format.table, "--format", help="table or json."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Also write the JSON here."),
    method: list[str] = typer.Option(
        [], "--method", "-m", help="Override a column's method: COLUMN=METHOD (repeatable)."
    ),
    alpha: float = typer.Option(0.05, "--alpha", help="Family-wise level of the p-value tests."),
    correction: str = typer.Option(
        "holm", "--correction", help="Multiple testing: holm, bonferroni, bh or none."
    ),
    dataset_rule: str = typer.Option(
        "any", "--dataset-rule", help="any (a drifted column) or share (see --drift-share)."
    ),
    drift_share: float = typer.Option(0.5, "--drift-share", help="Share for --dataset-rule share."),
    large_n: int = typer.Option(
        2000, "--large-n", help="From this many rows on both sides, use effect sizes."
    ),
    fail_on_drift: bool = typer.Option(
        False, "--fail-on-drift", help="Exit with status 1 when the dataset drifted."
    ),
) -> None:
    """Compare every column of CURRENT with REFERENCE and say which ones drifted.

    Small samples are tested (KS for numbers, chi-squared for categories, corrected for
    multiple testing); large ones are judged by an effect size with a threshold (Wasserstein
    in reference standard deviations, Jensen-Shannon distance), so that irrelevant shifts in
    big data do not raise alarms. Example: watchkeeper drift ref.parquet today.parquet
    """
    from watchkeeper.frames import read_table
    from watchkeeper.stats import ColumnDrift

    try:
        ref_cols = read_table(reference)
        cur_cols = read_table(current)
        detector = ColumnDrift(
            methods=_parse_methods(method) or None, alpha=alpha, correction=correction,
            dataset_rule=dataset_rule, drift_share=drift_share, large_n=large_n,
        )
        report = detector.fit(ref_cols).test(cur_cols).to_dict()
    except (FileNotFoundError, ValueError, TypeError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    text = json.dumps(report)
    if output is not None:
        try:
            output.write_text(text + "\n")
        except OSError as exc:
            typer.echo(f"Error: cannot write {output}: {exc}", err=True)
            raise typer.Exit(2) from None
    if fmt is _Format.json:
        typer.echo(text)
    else:
        _print_table(report, reference, current)
    if fail_on_drift and report["drift"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``drift`` to the command line."""
    app.command("drift")(drift)
