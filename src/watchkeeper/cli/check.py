"""``watchkeeper check``, ``watchkeeper alerts ...`` and ``watchkeeper reference register``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from watchkeeper.cli._common import DB_HELP, model_store
from watchkeeper.cli._common import fail as _fail
from watchkeeper.cli._common import open_store as _store


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _print_findings(result: Any, show_all: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        # Piped or captured output: wide enough that check and subject names are not cut.
        console = Console(width=160)
    for start, end, n in result.windows:
        kind = "trailing window (nothing closed yet)" if result.adhoc else "window"
        console.print(f"[bold]{kind}[/bold] {_iso(start)} .. {_iso(end)}: {n} events")
    rows = [f for f in result.findings if show_all or f["drift"]]
    table = Table(
        title=f"{result.model}: {len(rows)} finding(s)"
        + ("" if show_all else " with drift (--all for every one)")
    )
    for col in ("check", "subject", "method", "statistic", "p-value", "bound", "drift", "severity"):
        table.add_column(col)
    for f in rows:
        bound = f["threshold"] if f["threshold"] is not None else f["alpha"]
        table.add_row(
            f["check"],
            f["subject"],
            f["method"],
            _fmt(f["statistic"]),
            _fmt(f["p_value"]),
            _fmt(bound),
            "yes" if f["drift"] else "no",
            f["severity"],
        )
    console.print(table)
    for e in result.events:
        console.print(f"[bold red]{e.kind}[/bold red] {e.alert['summary']}")
    for t in result.transients:
        console.print(
            f"[yellow]transient[/yellow] {t['rule']}: {t['subject']} "
            f"({t['breaches']} of the last {t['n']} windows; {t['k']} needed)"
        )
    for name, err in result.errors.items():
        console.print(f"[red]check {name} failed:[/red] {err}")
    for sink, err in result.sinks.items():
        if err:
            console.print(f"[red]sink {sink} failed:[/red] {err}")


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def register(app: typer.Typer) -> None:
    """Add ``check``, ``alerts`` and ``reference`` to the CLI."""

    @app.command("check")
    def check(
        model: str = typer.Argument(..., help="The model whose monitors to run."),
        project: str = typer.Option("default", "--project", "-p", help="Project of the model."),
        db: str | None = typer.Option(None, "--db", help=DB_HELP, envvar="WATCHKEEPER_DB"),
        now: float | None = typer.Option(None, "--now", help="Run as of (epoch seconds)."),
        output: str = typer.Option("table", "--format", help="table or json."),
        show_all: bool = typer.Option(False, "--all", help="Show findings without drift too."),
        no_send: bool = typer.Option(False, "--no-send", help="Do not notify the sinks."),
        trailing: bool = typer.Option(
            False, "--trailing", help="Evaluate the trailing window only; store nothing."
        ),
    ) -> None:
        """Run MODEL's monitors now and print the findings.

        Windows that closed since the last run are evaluated, stored and alerted as the
        scheduler would; when none has closed, the trailing window (the window's length up to
        now) is evaluated and shown without being stored, as it is with `--trailing`. Exits 1
        when a finding shows drift.
        """
        if output not in ("table", "json"):
            raise _fail(f"--format must be table or json, got {output!r}")
        from watchkeeper.runner import run_monitors

        try:
            with model_store(db, project, model) as store:
                result = run_monitors(
                    store, project, model, now=now, adhoc=True, send=not no_send, trailing=trailing
                )
        except (ValueError, KeyError) as exc:
            raise _fail(str(exc)) from exc
        if result.skipped:
            raise _fail(f"{result.skipped}; register one with `watchkeeper reference register`")
        if output == "json":
            typer.echo(json.dumps(result.to_dict(), default=str))
        else:
            _print_findings(result, show_all)
            if result.windows and not result.adhoc and all(n == 0 for *_, n in result.windows):
                typer.secho(
                    "note: the window(s) that closed held no events; `--trailing` shows the "
                    "events logged since (nothing stored)",
                    err=True,
                    fg=typer.colors.YELLOW,
                )
        if any(f["drift"] for f in result.findings):
            raise typer.Exit(1)

    alerts = typer.Typer(
        help="Alerts raised, and alerting artefacts for Prometheus and Grafana.",
        no_args_is_help=True,
    )

    @alerts.command("export-rules")
    def export_rules(
        directory: Path = typer.Argument(..., help="Where to write the files."),
        dashboard: bool = typer.Option(
            True, "--dashboard/--no-dashboard", help="Also write the Grafana dashboard."
        ),
    ) -> None:
        """Write Prometheus alerting rules, their promtool unit tests and a Grafana dashboard.

        With DIR=deploy the files land in deploy/prometheus and deploy/grafana; otherwise all
        in DIR. Check them with `promtool test rules watchkeeper-rules.test.yml`.
        """
        from watchkeeper.alerts.grafana import export_dashboard
        from watchkeeper.alerts.prometheus import export_rules as write_rules

        nested = directory.name == "deploy"
        written = write_rules(directory / "prometheus" if nested else directory)
        if dashboard:
            written.append(export_dashboard(directory / "grafana" if nested else directory))
        for path in written:
            typer.echo(str(path))

    @alerts.command("list")
    def list_alerts(
        project: str = typer.Option("default", "--project", "-p", help="Project."),
        model: str | None = typer.Option(None, "--model", "-m", help="Only this model."),
        status: str | None = typer.Option(None, "--status", help="firing or resolved."),
        db: str | None = typer.Option(None, "--db", help=DB_HELP, envvar="WATCHKEEPER_DB"),
        output: str = typer.Option("table", "--format", help="table or json."),
    ) -> None:
        """List the alerts the monitors raised: firing ones first, then resolved."""
        if status not in (None, "firing", "resolved"):
            raise _fail(f"--status must be firing or resolved, got {status!r}")
        if output not in ("table", "json"):
            raise _fail(f"--format must be table or json, got {output!r}")
        store = _store(db)
        try:
            if not store.has_project(project):
                raise _fail(f"project {project!r} does not exist")
            if model is not None and not store.has_model(project, model):
                raise _fail(f"model {model!r} is not registered in project {project!r}")
            rows = store.list_alerts(project, model=model, status=status)
        finally:
            store.close()
        rows.sort(key=lambda a: (a.get("status") != "firing", -(a.get("updated_at") or 0)))
        if output == "json":
            typer.echo(json.dumps(rows, default=str))
            return
        if not rows:
            typer.echo("no alerts")
        for a in rows:
            typer.echo(f"{a.get('status', '?'):9} {a.get('summary') or a.get('rule')}")

    app.add_typer(alerts, name="alerts")

    reference = typer.Typer(help="Reference sets of model versions.", no_args_is_help=True)

    @reference.command("register")
    def register_reference(
        model: str = typer.Argument(..., help="Model name."),
        version: str = typer.Argument(..., help="Model version."),
        file: Path = typer.Argument(..., help="CSV or Parquet file of the validation set."),
        score_column: str | None = typer.Option(None, help="Positive-class score column."),
        label_column: str | None = typer.Option(None, help="Ground-truth label column."),
        id_column: str | None = typer.Option(None, help="Request id column (for skew checks)."),
        embedding_prefix: str | None = typer.Option(
            None, help="Columns PREFIX0, PREFIX1, ... hold the embedding."
        ),
        exclude: list[str] = typer.Option([], help="Columns that are not features."),
        threshold: float | None = typer.Option(None, help="Operating threshold on the score."),
        target_tpr: float | None = typer.Option(
            None, help="Choose the threshold reaching this TPR on the reference."
        ),
        expected_prevalence: float | None = typer.Option(None, help="Expected positive share."),
        expected_volume: float | None = typer.Option(None, help="Events per window expected."),
        window: str | None = typer.Option(None, help="Monitoring window, e.g. 1h or 1d."),
        environment: str | None = typer.Option(
            None,
            help="Training environment for the environment-skew check: 'current' (this "
            "Python and its packages) or a JSON file {python, packages: {name: version}}.",
        ),
        project: str = typer.Option("default", "--project", "-p"),
        db: str | None = typer.Option(None, "--db", help=DB_HELP, envvar="WATCHKEEPER_DB"),
    ) -> None:
        """Register FILE as the reference of MODEL VERSION, with its profile and operating point.

        Every column that is not the score, label, id or embedding (or --exclude'd) is a
        feature. With a score and labels, the operating point (threshold, TPR, FPR) is measured
        on the reference at --threshold or --target-tpr (default threshold 0.5).
        """
        env = None
        if environment == "current":
            from watchkeeper.sdk.environment import serving_environment

            env = serving_environment()
        elif environment is not None:
            try:
                env = json.loads(Path(environment).read_text())
            except (OSError, ValueError) as exc:
                raise _fail(f"--environment: cannot read {environment}: {exc}") from exc
            if not isinstance(env, dict) or not isinstance(env.get("packages", {}), dict):
                raise _fail("--environment: expected a JSON object {python, packages: {...}}")
        from watchkeeper.runner import register_reference

        store = _store(db)
        try:
            done = register_reference(
                store,
                project,
                model,
                version,
                file,
                score_column=score_column,
                label_column=label_column,
                id_column=id_column,
                embedding_prefix=embedding_prefix,
                exclude=exclude,
                threshold=threshold,
                target_tpr=target_tpr,
                expected_prevalence=expected_prevalence,
                expected_volume=expected_volume,
                window=window,
                environment=env,
            )
        except FileNotFoundError as exc:
            raise _fail(str(exc)) from exc
        except (ValueError, KeyError, TypeError) as exc:
            message = str(exc)
            for option in ("score_column", "label_column", "id_column", "embedding_prefix"):
                message = message.replace(f"{option}:", f"--{option.replace('_', '-')}:")
            raise _fail(message) from exc
        finally:
            store.close()
        typer.echo(
            f"registered reference of {model} {version}: {done.rows} rows, "
            f"{len(done.features)} feature(s)"
            + (
                f", embeddings of dimension {done.embedding_dim}"
                if done.embedding_dim is not None
                else ""
            )
            + (
                f", operating point {json.dumps(done.operating_point)}"
                if done.operating_point
                else ""
            )
        )

    app.add_typer(reference, name="reference")
