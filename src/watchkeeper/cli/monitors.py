"""``watchkeeper monitors show|set`` (a model's monitor configuration, as YAML) and
``watchkeeper findings`` (what the monitors found), from the shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from watchkeeper.cli._common import DbOpt, ModelArg, ProjectOpt, cli_actor, fail, model_store


def _config_for(store: Any, project: str, model: str) -> tuple[str, Any]:
    """The stored configuration, else the defaults from the model's reference."""
    from watchkeeper.checks import MonitorConfig
    from watchkeeper.runner import load_context

    stored = store.get_monitor_config(project, model)
    if stored is not None:
        return "stored", MonitorConfig.from_dict(stored)
    ctx = load_context(store, project, model)
    if ctx is None:
        raise fail(
            f"model {model!r} has no monitor configuration and no reference; "
            "register one with `watchkeeper reference register`"
        )
    return "default", ctx.config


def register(app: typer.Typer) -> None:
    """Add ``monitors show`` and ``monitors set`` to the CLI."""
    monitors = typer.Typer(
        help="A model's monitor configuration (docs/monitors.md).", no_args_is_help=True
    )

    @monitors.command("show")
    def show(
        model: ModelArg,
        project: ProjectOpt = "default",
        db: DbOpt = None,
        output: str = typer.Option("yaml", "--format", help="yaml or json."),
    ) -> None:
        """Print MODEL's monitor configuration: the stored one, else the defaults.

        The output is a file `watchkeeper monitors set` reads back: edit it and set it.
        """
        if output not in ("yaml", "json"):
            raise fail(f"--format must be yaml or json, got {output!r}")
        with model_store(db, project, model) as store:
            source, cfg = _config_for(store, project, model)
        if output == "json":
            typer.echo(json.dumps({"source": source, "config": cfg.to_dict()}, indent=2))
        else:
            typer.echo(f"# {source} monitor configuration of {project}/{model}")
            typer.echo(cfg.to_yaml().rstrip())

    @monitors.command("set")
    def set_config(
        model: ModelArg,
        file: Annotated[Path, typer.Argument(help="A YAML (or JSON) monitor configuration.")],
        project: ProjectOpt = "default",
        db: DbOpt = None,
    ) -> None:
        """Validate FILE and store it as MODEL's monitor configuration.

        Every check, rule and sink is validated first; an error names the field and nothing
        is stored. The scheduler and `watchkeeper check` use it from their next run.
        """
        from watchkeeper.alerts import validate_alerting
        from watchkeeper.checks import MonitorConfig

        try:
            text = file.read_text()
        except OSError as exc:
            raise fail(f"cannot read {file}: {exc.strerror or exc}") from exc
        try:
            cfg = MonitorConfig.from_yaml(text).validate()  # JSON is YAML too
            validate_alerting(cfg.rules, cfg.sinks)
        except (ValueError, TypeError) as exc:
            raise fail(f"{file}: {exc}") from exc
        except Exception as exc:  # a YAML syntax error: say where
            raise fail(f"{file}: not valid YAML: {exc}") from exc
        with model_store(db, project, model) as store:
            before = store.get_monitor_config(project, model)
            store.put_monitor_config(project, model, cfg.to_dict())
            store.audit_config_change(
                "monitors.set", project, model, before, cfg.to_dict(), actor=cli_actor()
            )
        enabled = sorted(name for name, opts in cfg.checks.items() if opts.get("enabled", True))
        typer.echo(
            f"stored the monitor configuration of {project}/{model}: window "
            f"{cfg.window.get('kind')} {cfg.window.get('size')}, {len(enabled)} checks, "
            f"{len(cfg.rules)} rules, {len(cfg.sinks)} sinks"
        )

    app.add_typer(monitors, name="monitors")

    @app.command("findings")
    def findings(
        model: ModelArg,
        project: ProjectOpt = "default",
        db: DbOpt = None,
        since: str = typer.Option("7d", "--since", help="How far back, e.g. 24h or 30d."),
        check: str | None = typer.Option(None, "--check", help="Only this check."),
        subject: str | None = typer.Option(None, "--subject", help="Only this subject."),
        show_all: bool = typer.Option(False, "--all", help="Findings without drift too."),
        limit: int = typer.Option(200, "--limit", min=1, help="The newest N at most."),
        output: str = typer.Option("table", "--format", help="table or json."),
    ) -> None:
        """Print the stored findings of MODEL's monitors, oldest window first.

        By default the findings that showed drift in the last 7 days; `--all` adds the rest,
        `--check` and `--subject` narrow them (e.g. `--check feature_drift --subject age`).
        """
        import time

        from watchkeeper.checks._config import parse_duration

        if output not in ("table", "json"):
            raise fail(f"--format must be table or json, got {output!r}")
        try:
            cutoff = time.time() - parse_duration(since, "--since")
        except ValueError as exc:
            raise fail(str(exc)) from exc
        with model_store(db, project, model) as store:
            rows = store.list_findings(
                project, model, since=cutoff, check=check, subject=subject, limit=limit
            )
        rows = [f for f in rows if show_all or f["drift"]]
        if output == "json":
            typer.echo(json.dumps(rows, default=str))
            return
        _print_findings(model, rows, show_all)


def _print_findings(model: str, rows: list[dict[str, Any]], show_all: bool) -> None:
    import datetime as dt

    from rich.console import Console
    from rich.table import Table

    console = Console() if Console().is_terminal else Console(width=160)
    table = Table(
        title=f"{model}: {len(rows)} finding(s)" + ("" if show_all else " with drift")
    )
    for col in ("window end", "check", "subject", "method", "statistic", "p-value", "severity"):
        table.add_column(col)
    for f in rows:
        end = f.get("window_end") or f.get("created_at")
        when = (
            dt.datetime.fromtimestamp(end, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")
            if end is not None
            else "-"
        )
        table.add_row(
            when,
            str(f["check"]),
            str(f["subject"]),
            str(f["method"]),
            "-" if f["statistic"] is None else f"{f['statistic']:.4g}",
            "-" if f["p_value"] is None else f"{f['p_value']:.3g}",
            str(f["severity"]),
        )
    console.print(table)
