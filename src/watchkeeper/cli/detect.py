"""``watchkeeper detect METHOD FILE --column C``: run a streaming detector over one column."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer


class _Format(StrEnum):
    text = "text"
    json = "json"


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--param expects NAME=VALUE, got {pair!r}")
        try:
            params[name] = json.loads(raw)  # numbers, true/false, null
        except json.JSONDecodeError:
            params[name] = raw  # plain strings such as mode=up
    return params


def detect(
    method: str = typer.Argument(..., help="ADWIN, PageHinkley, CUSUM, KSWIN, DDM, EDDM, ..."),
    file: Path = typer.Argument(..., help="A CSV or Parquet file."),
    column: str = typer.Option(..., "--column", "-c", help="The column to watch, in row order."),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="A detector parameter: NAME=VALUE (repeatable)."
    ),
    fmt: _Format = typer.Option(_Format.text, "--format", help="text or json."),
    state_in: Path | None = typer.Option(
        None, "--state-in", help="Continue from a state saved by --state-out."
    ),
    state_out: Path | None = typer.Option(
        None, "--state-out", help="Save the detector's state (JSON) after the last row."
    ),
) -> None:
    """Feed COLUMN of FILE to a streaming change detector and print where it signalled drift.

    Binary detectors (DDM, EDDM, HDDM_A, HDDM_W, BernoulliRate) expect 0/1 errors. Indices are
    0-based row numbers of FILE. Example: watchkeeper detect ADWIN scores.csv --column score
    """
    import numpy as np

    from watchkeeper.detectors import DETECTORS, from_dict
    from watchkeeper.frames import read_table

    try:
        if method not in DETECTORS:
            raise ValueError(f"unknown method {method!r}; choose from {', '.join(DETECTORS)}")
        columns = read_table(file)
        if column not in columns:
            raise ValueError(f"no column {column!r} in {file}; columns: {', '.join(columns)}")
        values = columns[column]
        if values.dtype.kind not in "biuf":
            raise ValueError(f"column {column!r} is not numeric (dtype {values.dtype})")
        if state_in is not None:
            saved = json.loads(state_in.read_text())
            if saved.get("method") != method:
                raise ValueError(f"{state_in} holds a {saved.get('method')} state, not {method}")
            det = from_dict(saved)
            if param:
                raise ValueError("--param cannot change the parameters of a saved state")
        else:
            det = DETECTORS[method](**_parse_params(param))
        found = det.update_many(np.asarray(values, dtype=np.float64))
        if state_out is not None:
            state_out.write_text(json.dumps(det.to_dict(), allow_nan=False) + "\n")
    except (OSError, ValueError, TypeError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    note = None
    tested = getattr(det, "tested", None)
    if callable(tested) and not tested():
        note = (
            f"window_size {det.get_params().get('window_size')} exceeds the {values.size} values "
            "seen: no test ran (lower --param window_size)"
        )
    if fmt is _Format.json:
        report = {
            "method": method,
            "params": det.get_params(),
            "column": column,
            "n": int(values.size),
            "detections": found.tolist(),
        }
        if note is not None:
            report["note"] = note
        typer.echo(json.dumps(report))
        return
    if note is not None:
        typer.echo(f"{method}: {note}")
        return
    if found.size:
        shown = ", ".join(str(i) for i in found[:50].tolist())
        more = f" (and {found.size - 50} more)" if found.size > 50 else ""
        typer.echo(f"{method}: drift at {found.size} of {values.size} rows: {shown}{more}")
    else:
        typer.echo(f"{method}: no drift in {values.size} rows")


def register(app: typer.Typer) -> None:
    """Add ``detect`` to the command line."""
    app.command("detect")(detect)
