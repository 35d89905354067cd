"""``watchkeeper plan show|set|validate``: a model's maintenance plan (monitors + retraining)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from watchkeeper.cli._common import DbOpt, ModelArg, ProjectOpt, cli_actor, fail, model_store

FileArg = Annotated[Path, typer.Argument(help="A YAML (or JSON) maintenance plan.")]


def _read(file: Path) -> Any:
    from watchkeeper.loop import MaintenancePlan

    try:
        text = file.read_text()
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from exc
    try:
        return MaintenancePlan.from_yaml(text).validate()
    except (ValueError, TypeError) as exc:
        raise fail(f"{file}: {exc}") from exc


def register(app: typer.Typer) -> None:
    """Add ``plan show``, ``plan set`` and ``plan validate`` to the CLI."""
    plan = typer.Typer(
        help="A model's maintenance plan: monitors and retraining (docs/loop.md).",
        no_args_is_help=True,
    )

    @plan.command("show")
    def show(
        model: ModelArg,
        project: ProjectOpt = "default",
        db: DbOpt = None,
        output: str = typer.Option("yaml", "--format", help="yaml or json."),
    ) -> None:
        """Print MODEL's maintenance plan: the stored one, else the defaults.

        The output is a file `watchkeeper plan set` reads back: edit it and set it.
        """
        from watchkeeper.loop._plan import get_plan

        if output not in ("yaml", "json"):
            raise fail(f"--format must be yaml or json, got {output!r}")
        with model_store(db, project, model) as store:
            found = get_plan(store, project, model)
        if found is None:
            raise fail(
                f"model {model!r} has no monitor configuration and no reference; "
                "register one with `watchkeeper reference register`"
            )
        source, p = found
        if output == "json":
            typer.echo(json.dumps({"source": source, "plan": p.to_dict()}, indent=2))
        else:
            typer.echo(f"# {source} maintenance plan of {project}/{model}")
            typer.echo(p.to_yaml().rstrip())

    @plan.command("validate")
    def validate(model: ModelArg, file: FileArg) -> None:
        """Check FILE as MODEL's plan without storing it; exit 2 naming the first bad field."""
        p = _read(file)
        r = p.retraining
        what = "no retraining section" if r is None else (
            f"retraining triggers: {_triggers(r)}; promotion {r['promotion']}"
        )
        typer.echo(f"{file}: a valid plan for {model} ({what})")

    @plan.command("set")
    def set_plan(
        model: ModelArg, file: FileArg, project: ProjectOpt = "default", db: DbOpt = None
    ) -> None:
        """Validate FILE and store it as MODEL's plan (its monitors and retraining policy).

        Every field is validated first; an error names it and nothing is stored.
        """
        from watchkeeper.loop._plan import get_plan, put_plan

        p = _read(file)
        with model_store(db, project, model) as store:
            found = get_plan(store, project, model)
            put_plan(store, project, model, p)
            store.audit_config_change(
                "plan.set", project, model, found and found[1].to_dict(), p.to_dict(),
                actor=cli_actor(),
            )
        r = p.retraining or {}
        typer.echo(
            f"stored the maintenance plan of {project}/{model}: {len(p.monitors.rules)} rules, "
            f"retraining triggers: {_triggers(r) if r else 'defaults'}"
        )

    app.add_typer(plan, name="plan")


def _triggers(r: dict[str, Any]) -> str:
    t = r["triggers"]
    parts = [f"alerts {', '.join(t['alerts'])}" if t["alerts"] else ""]
    parts.append(f"verdicts {', '.join(t['verdicts'])}" if t["verdicts"] else "")
    if t["realised_performance"]:
        rp = t["realised_performance"]
        parts.append(f"{rp['metric']} below {rp['below']}")
    if t["schedule"]:
        parts.append(f"schedule '{t['schedule']}'")
    if t["new_labels"]:
        parts.append(f"{t['new_labels']} new labels")
    return "; ".join(p for p in parts if p) or "none"
