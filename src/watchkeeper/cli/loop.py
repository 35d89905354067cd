"""``watchkeeper retrain``, ``watchkeeper jobs`` and ``watchkeeper model promote``."""

from __future__ import annotations

import json
from typing import Any

import typer

from watchkeeper.cli._common import DbOpt, ModelArg, ProjectOpt, fail, model_store, open_store


def _job_line(j: dict[str, Any]) -> str:
    fired = ", ".join(f.get("kind", "?") for f in (j.get("trigger") or {}).get("fired", []))
    extra = j.get("error") or (j.get("outputs") or {}).get("artifact") or ""
    return f"job {j['id']:>4}  {j['model']:<20} {j['state']:<10} {fired or '-':<24} {extra}"


def _model_group(app: typer.Typer) -> typer.Typer:
    """The ``model`` command group (registered by cli/server.py), or a new one."""
    for info in app.registered_groups:
        if info.name == "model" and info.typer_instance is not None:
            return info.typer_instance
    group = typer.Typer(help="Models.", no_args_is_help=True)
    app.add_typer(group, name="model")
    return group


def register(app: typer.Typer) -> None:
    """Add ``retrain``, ``jobs`` and ``model promote`` to the CLI."""

    @app.command("retrain")
    def retrain(
        model: ModelArg,
        project: ProjectOpt = "default",
        db: DbOpt = None,
        now: bool = typer.Option(False, "--now", help="Run the job here and now, not queued."),
        workdir: str = typer.Option(".watchkeeper/jobs", "--workdir", help="Where jobs write."),
    ) -> None:
        """Queue a retraining of MODEL with its plan's dataset recipe and trainer.

        The server's scheduler runs queued jobs; `--now` runs it in this process (the trainer
        in a subprocess) and prints how it ended. Exit 1 when the job failed.
        """
        from watchkeeper.loop._jobs import run_job
        from watchkeeper.loop._triggers import maybe_retrain

        with model_store(db, project, model) as store:
            job = maybe_retrain(store, project, model, force=True)
            if job is None:
                active = store.list_jobs(project, model, limit=1)
                raise fail(
                    f"no job queued: {_job_line(active[0]) if active else 'no retraining plan'}"
                )
            typer.echo(f"queued {_job_line(job)}")
            if now:
                done = run_job(store, project, job["id"], workdir=workdir)
                typer.echo(_job_line(done))
                if done["state"] != "succeeded":
                    typer.echo(done.get("log", "")[-2000:], err=True)
                    raise typer.Exit(1)

    @app.command("jobs")
    def jobs(
        model: str | None = typer.Argument(None, help="Only this model's jobs."),
        project: ProjectOpt = "default",
        db: DbOpt = None,
        state: str | None = typer.Option(None, "--state", help="queued, running, succeeded..."),
        limit: int = typer.Option(50, "--limit", min=1, max=10_000),
        output: str = typer.Option("table", "--format", help="table or json."),
    ) -> None:
        """List training jobs, newest first."""
        if output not in ("table", "json"):
            raise fail(f"--format must be table or json, got {output!r}")
        store = open_store(db)
        try:
            rows = store.list_jobs(project, model, state=state, limit=limit)
        except (ValueError, KeyError) as exc:
            raise fail(str(exc)) from exc
        finally:
            store.close()
        if output == "json":
            typer.echo(json.dumps(rows, default=str))
            return
        for j in rows:
            typer.echo(_job_line(j))
        if not rows:
            typer.echo("no jobs")

    group = _model_group(app)

    @group.command("promote")
    def promote_cmd(
        model: ModelArg,
        version: str = typer.Argument(..., help="The version to make the champion."),
        project: ProjectOpt = "default",
        db: DbOpt = None,
        reason: str = typer.Option("approved", "--reason", help="Kept in the alias history."),
        actor: str = typer.Option("cli", "--actor", help="Who promotes (alias history)."),
    ) -> None:
        """Make VERSION the champion of MODEL and start the plan's watch period."""
        from watchkeeper.loop._promote import promote

        with model_store(db, project, model) as store:
            try:
                move = promote(store, project, model, version, actor=actor, reason=reason)
            except ValueError as exc:
                raise fail(str(exc)) from exc
        typer.echo(f"champion of {project}/{model}: {move['from']} -> {move['to']}")
