"""``watchkeeper expect``: expected flags at an operating point, and what a count means."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer


class _Format(StrEnum):
    text = "text"
    json = "json"


_VERDICTS = {
    "as_expected": "as expected: the count is inside what validation promised",
    "prior_shift": (
        "a change in the class mix explains the count (from counts alone a model change can "
        "look the same: run `watchkeeper estimate` or diagnose_shift on the scores)"
    ),
    "model_change": "no class mix explains the count: the model or its inputs changed",
}


def expect(
    tpr: float = typer.Option(..., "--tpr", help="True-positive rate on validation."),
    fpr: float = typer.Option(..., "--fpr", help="False-positive rate on validation."),
    prevalence: float = typer.Option(..., "--prevalence", help="Expected share of positives."),
    volume: float = typer.Option(..., "--volume", help="Events per window."),
    observed: int | None = typer.Option(
        None, "--observed", help="Flags observed in a window: adds a verdict."
    ),
    n_positive: int | None = typer.Option(
        None, "--n-positive", help="Validation positives behind TPR (widens band and interval)."
    ),
    n_negative: int | None = typer.Option(
        None, "--n-negative", help="Validation negatives behind FPR (widens band and interval)."
    ),
    coverage: float = typer.Option(0.95, "--coverage", help="Coverage of band and interval."),
    alpha: float = typer.Option(0.05, "--alpha", help="Level of the test of the observed count."),
    mix: str = typer.Option(
        "random", "--mix", help="random (each event positive with the prevalence) or fixed."
    ),
    dispersion: float | None = typer.Option(
        None, "--dispersion", help="Over-dispersion of windows (intra-window correlation)."
    ),
    history: Path | None = typer.Option(
        None,
        "--history",
        help="CSV of past windows (columns flags,volume): learn the over-dispersion from them.",
    ),
    fmt: _Format = typer.Option(_Format.text, "--format", help="text or json."),
) -> None:
    """Expected flags per window at an operating point, the band, and the verdict on a count.

    Both bands are shown: a random class mix (the default, with the over-dispersion learnt
    from --history) and a fixed one (exactly volume x prevalence positives).

    Example: watchkeeper expect --tpr 0.9 --fpr 0.02 --prevalence 0.1 --volume 1000 --observed 160
    """
    from watchkeeper.estimation import OperatingPoint, check_flags, expect_flags, fit_dispersion

    op = OperatingPoint(None, tpr, fpr, n_positive, n_negative)
    learnt = None
    try:
        if history is not None:
            if dispersion is not None:
                raise ValueError("give --dispersion or --history, not both")
            learnt = fit_dispersion(*_history(history))
        rho = learnt if learnt is not None else dispersion
        if observed is None:
            out = expect_flags(
                op, prevalence, volume, coverage=coverage, mix=mix, dispersion=rho
            ).to_dict()
        else:
            out = check_flags(
                op, prevalence, volume, observed, alpha=alpha, coverage=coverage, mix=mix,
                dispersion=rho,
            ).to_dict()  # fmt: skip
    except ValueError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    if learnt is not None:
        out["history"] = learnt.to_dict()
    if fmt is _Format.json:
        typer.echo(json.dumps(out))
        return
    pct = f"{coverage:.0%}"
    typer.echo(
        f"Expected flags: {out['expected']:.1f} per {volume:g} events (sigma {out['sigma']:.2f},"
        f" {out['mix']} mix, {out['method']})"
    )
    if learnt is not None:
        typer.echo(
            f"Over-dispersion learnt from {learnt.n_windows} past windows: "
            f"{learnt.dispersion:.3g} (p-value of none {learnt.p_value:.3g})"
        )
    typer.echo(f"{pct} band: {out['low']} to {out['high']}")
    alt = out["alternative"]
    typer.echo(
        f"{pct} band with a {alt['mix']} mix: {alt['low']} to {alt['high']}"
        f" (sigma {alt['sigma']:.2f})"
    )
    if observed is not None:
        typer.echo(f"Observed: {observed}, p-value {out['p_value']:.3g}"
                   f" ({alt['mix']} mix: {alt['p_value']:.3g})")  # fmt: skip
        typer.echo(f"Verdict: {out['verdict']}: {_VERDICTS[out['verdict']]}")
        typer.echo(
            f"Implied prevalence: {out['prevalence']:.3f} ({pct} CI {out['prevalence_low']:.3f}"
            f" to {out['prevalence_high']:.3f}; expected {prevalence:g})"
        )


def _history(path: Path) -> tuple[list[float], list[float]]:
    """Flag counts and volumes of past windows from a CSV with columns ``flags,volume``."""
    import csv

    try:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise ValueError(f"--history: cannot read {path}: {exc}") from None
    if not rows or not {"flags", "volume"} <= set(rows[0]):
        raise ValueError("--history: expected a CSV with columns flags,volume")
    try:
        return [float(r["flags"]) for r in rows], [float(r["volume"]) for r in rows]
    except (TypeError, ValueError):
        raise ValueError("--history: flags and volume must be numbers") from None


def register(app: typer.Typer) -> None:
    """Add ``expect`` to the command line."""
    app.command("expect")(expect)
