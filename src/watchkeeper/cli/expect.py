"""``watchkeeper expect``: expected flags at an operating point, and what a count means."""

from __future__ import annotations

import json
from enum import StrEnum

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
    fmt: _Format = typer.Option(_Format.text, "--format", help="text or json."),
) -> None:
    """Expected flags per window at an operating point, the band, and the verdict on a count.

    Example: watchkeeper expect --tpr 0.9 --fpr 0.02 --prevalence 0.1 --volume 1000 --observed 160
    """
    from watchkeeper.estimation import OperatingPoint, check_flags, expect_flags

    op = OperatingPoint(None, tpr, fpr, n_positive, n_negative)
    try:
        if observed is None:
            out = expect_flags(op, prevalence, volume, coverage=coverage).to_dict()
        else:
            out = check_flags(
                op, prevalence, volume, observed, alpha=alpha, coverage=coverage
            ).to_dict()
    except ValueError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    if fmt is _Format.json:
        typer.echo(json.dumps(out))
        return
    pct = f"{coverage:.0%}"
    typer.echo(
        f"Expected flags: {out['expected']:.1f} per {volume:g} events (sigma {out['sigma']:.2f})"
    )
    typer.echo(f"{pct} band: {out['low']} to {out['high']}")
    if observed is not None:
        typer.echo(f"Observed: {observed}, p-value {out['p_value']:.3g}")
        typer.echo(f"Verdict: {out['verdict']}: {_VERDICTS[out['verdict']]}")
        typer.echo(
            f"Implied prevalence: {out['prevalence']:.3f} ({pct} CI {out['prevalence_low']:.3f}"
            f" to {out['prevalence_high']:.3f}; expected {prevalence:g})"
        )


def register(app: typer.Typer) -> None:
    """Add ``expect`` to the command line."""
    app.command("expect")(expect)
