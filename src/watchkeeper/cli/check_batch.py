"""``watchkeeper check-batch``: data quality and drift of a large Parquet table, per day.

The table is profiled on an engine (pandas via Arrow in this process, Spark or Dask), one
profile per value of ``--partition-by``, in one pass; each profile is compared with the model's
reference profile and the findings are stored like any window's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

from watchkeeper.cli._common import DbOpt, ModelArg, ProjectOpt, model_store
from watchkeeper.cli._common import fail as _fail

ENGINES = ("pandas", "spark", "dask")
MAX_PARTITIONS = 10_000


def _day_range(key: str) -> tuple[float | None, float | None]:
    """A partition key that is a date (``2026-11-02``) becomes that UTC day's range."""
    try:
        day = dt.date.fromisoformat(key[:10]) if len(key) == 10 else None
    except ValueError:
        day = None
    if day is None:
        return None, None
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
    return start, start + 86_400.0


def profile_table(path: str, engine: str, by: str | None, columns: list[str] | None,
                  spark_master: str) -> dict[str, Any]:
    """Profiles of the Parquet table at ``path``, one per value of ``by``."""
    if engine == "pandas":
        import pyarrow.dataset as ds

        from watchkeeper.engines import profile_batches

        dataset = ds.dataset(path, format="parquet", partitioning="hive")
        wanted = None if columns is None else [*columns, *([by] if by else [])]
        return profile_batches(dataset.to_batches(columns=wanted), by=by, columns=columns)
    if engine == "dask":
        from watchkeeper.engines._missing import require

        dd = require("dask.dataframe", "dask")
        from watchkeeper.engines.dask import profile_by as dask_profile_by

        return dask_profile_by(dd.read_parquet(path), by, columns=columns)
    from watchkeeper.engines._missing import require

    require("pyspark", "spark")
    from pyspark.sql import SparkSession

    from watchkeeper.engines.spark import profile_parquet

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master(spark_master).appName("watchkeeper check-batch")
               .config("spark.ui.enabled", "false").getOrCreate())
    # The workers read the files themselves: no row crosses from the JVM to Python.
    return profile_parquet(session, path, by=by, columns=columns)


def register(app: typer.Typer) -> None:
    """Add ``check-batch`` to the CLI."""

    @app.command("check-batch")
    def check_batch(
        model: ModelArg,
        path: str = typer.Argument(..., help="Parquet file or directory (hive partitions too)."),
        engine: str = typer.Option("pandas", "--engine", help="pandas, spark or dask."),
        partition_by: str | None = typer.Option(
            None, "--partition-by", help="Column whose values are checked apart (e.g. day)."
        ),
        columns: str | None = typer.Option(
            None, "--columns", help="Comma-separated features (default: the reference's)."
        ),
        spark_master: str = typer.Option("local[*]", "--spark-master", help="Spark master."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print; store no finding."),
        output: str = typer.Option("table", "--format", help="table or json."),
        project: ProjectOpt = "default",
        db: DbOpt = None,
    ) -> None:
        """Profile PATH on an engine, check each partition against MODEL's reference profile.

        Data quality (types, ranges, new categories, missing rates, stuck columns) and feature
        drift with the model's monitor options, per value of --partition-by (a date value
        dates the findings to that UTC day). Findings are stored unless --dry-run. Exits 1
        when a finding shows drift.
        """
        if engine not in ENGINES:
            raise _fail(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if output not in ("table", "json"):
            raise _fail(f"--format must be table or json, got {output!r}")
        if not Path(path).exists():
            raise _fail(f"PATH: {path} does not exist")
        from watchkeeper.checks.batch import check_profile
        from watchkeeper.profiles import Profile, profile

        with model_store(db, project, model) as store:
            stored = store.get_reference_profile(project, model)
            if stored is not None:
                reference = Profile.from_dict(stored)
            else:
                try:
                    reference = profile(store.get_reference(project, model))
                except (KeyError, ValueError, LookupError) as exc:
                    raise _fail(f"no reference for {model!r}: {exc}") from exc
            chosen = ([c.strip() for c in columns.split(",") if c.strip()] if columns
                      else sorted(reference.features))
            unknown = [c for c in chosen if c not in reference.features]
            if unknown:
                raise _fail(f"--columns: not features of the reference: {unknown}")
            config = store.get_monitor_config(project, model) or {}
            checks = dict(config.get("checks") or {})
            options = {k: checks.get(k) or {} for k in ("data_quality", "feature_drift")}
            try:
                profiles = profile_table(path, engine, partition_by, chosen, spark_master)
            except ImportError as exc:
                raise _fail(str(exc)) from exc
            except ValueError as exc:
                raise _fail(str(exc)) from exc
            if len(profiles) > MAX_PARTITIONS:
                raise _fail(f"--partition-by: {len(profiles)} values, more than "
                            f"{MAX_PARTITIONS}; choose a coarser column")
            report = []
            for key, prof in profiles.items():
                start, end = _day_range(key)
                found = check_profile(reference, prof, options, start=start, end=end)
                rows = [f.to_dict() for f in found]
                if partition_by is not None:
                    for r in rows:
                        r["details"] = {**r["details"], partition_by: key}
                if not dry_run and rows:
                    store.add_findings(project, model, rows)
                report.append({"partition": key, "rows": prof.n, "findings": rows})
        _print(report, output, partition_by, dry_run)
        if any(f["drift"] for r in report for f in r["findings"]):
            raise typer.Exit(1)


def _print(report: list[dict[str, Any]], output: str, by: str | None, dry_run: bool) -> None:
    if output == "json":
        typer.echo(json.dumps(report, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=160)
    table = Table(title=f"check-batch: {len(report)} partition(s)"
                  + (" (dry run: nothing stored)" if dry_run else ""))
    for col in (by or "partition", "rows", "drifted features", "quality findings"):
        table.add_column(col)
    for r in report:
        drifted = [f["subject"] for f in r["findings"]
                   if f["check"] == "feature_drift" and f["drift"] and f["subject"] != "*"]
        quality = [f"{f['check'].split('.')[-1]}:{f['subject']}" for f in r["findings"]
                   if f["check"].startswith("data_quality") and f["drift"]]
        table.add_row(r["partition"] or "-", f"{r['rows']:,}", ", ".join(drifted) or "-",
                      ", ".join(quality) or "-")
    console.print(table)
