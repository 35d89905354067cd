"""``watchkeeper estimate REFERENCE CURRENT``: label-free performance per chunk, and whether a
change looks like a new class mix or a model that stopped working."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer


class _Format(StrEnum):
    table = "table"
    json = "json"


def _column(cols: dict[str, Any], name: str, path: Path, option: str) -> Any:
    if name not in cols:
        raise ValueError(
            f"{path.name}: no column {name!r} (use {option}); columns are {sorted(cols)[:20]}"
        )
    return cols[name]


def _run(
    reference: Path,
    current: Path,
    score_column: str,
    label_column: str,
    threshold: float,
    chunk_size: int | None,
    calibration: str,
    prior_correction: bool,
    diagnose: bool,
    alpha: float,
    use_features: bool,
) -> dict[str, Any]:
    import numpy as np

    from watchkeeper.estimation import (
        PerformanceEstimator,
        compare_performance,
        diagnose_shift,
        realised_performance,
    )
    from watchkeeper.frames import read_table

    ref = read_table(reference)
    cur = read_table(current)
    ref_s = np.asarray(_column(ref, score_column, reference, "--score-column"), dtype=float)
    ref_y = _column(ref, label_column, reference, "--label-column")
    cur_s = np.asarray(_column(cur, score_column, current, "--score-column"), dtype=float)
    cur_y = cur.get(label_column)
    size = len(cur_s) if chunk_size is None else int(chunk_size)
    if size < 1:
        raise ValueError(f"--chunk-size must be positive, got {chunk_size}")
    names: list[str] = []
    if use_features:
        names = [
            k
            for k, v in ref.items()
            if k not in (score_column, label_column) and np.asarray(v).dtype.kind in "fiub"
        ]
        missing = [k for k in names if k not in cur]
        if not names or missing:
            raise ValueError(
                f"--features: numeric columns beside the score are needed in both files "
                f"(missing in {current.name}: {missing})"
                if missing
                else f"--features: {reference.name} has no numeric column beside the score"
            )
    ref_f = np.column_stack([ref[k] for k in names]).astype(float) if names else None
    cur_f = np.column_stack([cur[k] for k in names]).astype(float) if names else None
    est = PerformanceEstimator(
        threshold=threshold, calibration=calibration, prior_correction=prior_correction
    ).fit(ref_s, ref_y, features=ref_f)
    ref_real = realised_performance(ref_s, ref_y, threshold)
    chunks = []
    for i, start in enumerate(range(0, len(cur_s), size)):
        s = cur_s[start : start + size]
        row: dict[str, Any] = {"chunk": i, "start": start, "end": start + len(s)}
        e = est.estimate(s, None if cur_f is None else cur_f[start : start + size])
        row["estimate"] = e.to_dict()
        if diagnose:
            row["shift"] = diagnose_shift(ref_s, ref_y, s, alpha=alpha).to_dict()
        if cur_y is not None:
            r = realised_performance(s, cur_y[start : start + size], threshold)
            if r.n > 0:
                row["realised"] = r.to_dict()
                row["comparison"] = compare_performance(e, r).to_dict()["metrics"]
        chunks.append(row)
    return {
        "reference": {
            "n": len(ref_s),
            "calibration": est.calibrator_.method_,
            "prevalence": est.reference_prior_,
            "realised": ref_real.to_dict(),
        },
        "threshold": threshold,
        "prior_correction": prior_correction,
        "features": names,
        "chunks": chunks,
    }


_SHORT = {"accuracy": "acc", "precision": "prec", "recall": "rec", "f1": "f1", "roc_auc": "auc"}


def _cell(metric: dict[str, Any]) -> str:
    return "-" if metric["value"] is None else f"{metric['value']:.3f}"


def _half(metric: dict[str, Any]) -> str:
    lo, hi = metric["low"], metric["high"]
    return "-" if lo is None or hi is None else f"±{(hi - lo) / 2:.3f}"


def _print_table(report: dict[str, Any]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    ref = report["reference"]
    console = Console()
    console.print(
        f"Reference: {ref['n']} events, prevalence {ref['prevalence']:.3f}, "
        f"calibration {ref['calibration']}, threshold {report['threshold']:g}"
    )
    names = list(report["chunks"][0]["estimate"]["metrics"]) if report["chunks"] else []
    table = Table(
        title="Estimated performance per chunk (--format json gives every interval)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 0),
        collapse_padding=True,
    )
    heads = [_SHORT.get(n, n) for n in names]
    if "accuracy" in names:
        heads.insert(names.index("accuracy") + 1, "±")
    for col in ["#", "n", "prev", *heads]:
        table.add_column(col, justify="right", no_wrap=True)
    has_shift = bool(report["chunks"]) and "shift" in report["chunks"][0]
    has_real = any("realised" in c for c in report["chunks"])
    if has_shift:
        table.add_column("shift", no_wrap=True)
    if has_real:
        table.add_column("acc*", justify="right", no_wrap=True)
        table.add_column("f1*", justify="right", no_wrap=True)
    for c in report["chunks"]:
        e = c["estimate"]
        prev = e["details"].get("estimated_prevalence")
        shown = "-" if prev is None else f"{prev:.3f}"
        if e["details"].get("shift") == "covariate":
            shown = "cov"
        cells = [str(c["chunk"]), str(e["n"]), shown]
        for n in names:
            cells.append(_cell(e["metrics"][n]))
            if n == "accuracy":
                cells.append(_half(e["metrics"][n]))
        if has_shift:
            v = c["shift"]["verdict"]
            colour = {"as_expected": "green", "prior_shift": "yellow"}.get(v, "bold red")
            label = {"as_expected": "ok", "prior_shift": "prior", "model_change": "MODEL"}[v]
            cells.append(f"[{colour}]{label}[/]")
        if has_real:
            r = c.get("realised", {}).get("metrics", {})
            for name in ("accuracy", "f1"):
                value = r.get(name, {}).get("value")
                cells.append("-" if value is None else f"{value:.3f}")
        table.add_row(*cells)
    console.print(table)
    console.print(
        "prev: estimated share of positives (cov: covariate shift, reweighted); "
        "±: half the 95% interval of acc"
    )
    if has_real:
        console.print("acc*, f1*: realised on the labelled events of the chunk")
    if has_shift:
        console.print(
            "shift: ok = as validated; prior = the class mix changed (the model is fine); "
            "MODEL = no class mix explains the scores (the model or its inputs changed)"
        )


def estimate(
    reference: Path = typer.Argument(..., help="Labelled reference: CSV or Parquet."),
    current: Path = typer.Argument(..., help="Production scores: CSV or Parquet."),
    score_column: str = typer.Option("score", "--score-column", help="Positive-class score."),
    label_column: str = typer.Option("label", "--label-column", help="0/1 label (reference)."),
    threshold: float = typer.Option(0.5, "--threshold", help="Flag when score >= threshold."),
    chunk_size: int | None = typer.Option(
        None, "--chunk-size", help="Events per chunk (default: the whole file is one chunk)."
    ),
    calibration: str = typer.Option("auto", "--calibration", help="auto, isotonic or platt."),
    prior_correction: bool = typer.Option(
        True, "--prior-correction/--no-prior-correction", help="Correct for a new class mix."
    ),
    diagnose: bool = typer.Option(
        True, "--diagnose/--no-diagnose", help="Tell prior shift from model change per chunk."
    ),
    alpha: float = typer.Option(0.05, "--alpha", help="False-alarm level of the diagnosis."),
    use_features: bool = typer.Option(
        False,
        "--features/--no-features",
        help="Use the other numeric columns to detect covariate shift and reweight for it.",
    ),
    fmt: _Format = typer.Option(_Format.table, "--format", help="table or json."),
) -> None:
    """Estimate accuracy, precision, recall, F1 and ROC AUC of CURRENT without its labels.

    Calibrates the reference scores, estimates each chunk's class mix, and reports the expected
    confusion-matrix metrics with intervals; with --diagnose, says whether a change is a prior
    shift or a model change. If CURRENT has the label column, realised metrics are shown beside.
    Example: watchkeeper estimate validation.csv today.csv --chunk-size 1000
    """
    try:
        report = _run(
            reference, current, score_column, label_column, threshold, chunk_size,
            calibration, prior_correction, diagnose, alpha, use_features,
        )  # fmt: skip
    except (FileNotFoundError, ValueError, TypeError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    if fmt is _Format.json:
        typer.echo(json.dumps(report))
    else:
        _print_table(report)


def register(app: typer.Typer) -> None:
    """Add ``estimate`` to the command line."""
    app.command("estimate")(estimate)
