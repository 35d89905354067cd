"""``watchkeeper retrain``, ``jobs``, ``loop step|status|job|cancel`` and ``model
promote|approve|gate|shadow``: the retraining loop from the command line."""

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

        The server's scheduler (or `watchkeeper loop step`) runs queued jobs; `--now` runs it
        in this process (the trainer in a subprocess), then the gate and what follows, and
        prints how it ended. Exit 1 when the job failed.
        """
        from watchkeeper.alerts import SinkPolicy
        from watchkeeper.loop._cycle import loop_step
        from watchkeeper.loop._jobs import run_job
        from watchkeeper.loop._promote import notify
        from watchkeeper.loop._triggers import maybe_retrain

        policy = SinkPolicy.parse(None, None)

        with model_store(db, project, model) as store:
            job = maybe_retrain(store, project, model, force=True)
            if job is None:
                active = store.list_jobs(project, model, limit=1)
                raise fail(
                    f"no job queued: {_job_line(active[0]) if active else 'no retraining plan'}"
                )
            typer.echo(f"queued {_job_line(job)}")
            notify(store, project, model, "job_queued", f"job {job['id']} queued by hand (CLI)",
                   details={"job": job["id"], "actor": "cli"}, policy=policy)  # fmt: skip
            if now:
                done = run_job(store, project, job["id"], workdir=workdir)
                typer.echo(_job_line(done))
                # the rest of the loop: the job's end notified, the gate, what follows
                for st in loop_step(store, project, model, workdir=workdir, run_jobs=False,
                                    policy=policy):  # fmt: skip
                    typer.echo(f"{st['step']:<18} {st.get('version') or st.get('job') or ''}")
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

    def _move_champion(step: str, model: str, version: str | None, project: str,
                       db: str | None, actor: str, reason: str) -> None:  # fmt: skip
        """Promote VERSION, or approve the pending promotion, and say what moved."""
        from watchkeeper.loop._cycle import approve, promote_version

        with model_store(db, project, model) as store:
            try:
                if step == "promote":
                    move = promote_version(store, project, model, str(version), actor=actor,
                                           reason=reason)  # fmt: skip
                else:
                    move = approve(store, project, model, version, actor=actor, reason=reason)
            except ValueError as exc:
                raise fail(str(exc)) from exc
        done = "champion" if step == "promote" else "approved: champion"
        typer.echo(f"{done} of {project}/{model}: {move['from']} -> {move['to']}")

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
        _move_champion("promote", model, version, project, db, actor, reason)

    @group.command("approve")
    def approve_cmd(
        model: ModelArg,
        version: str | None = typer.Argument(None, help="The pending version (a check)."),
        project: ProjectOpt = "default",
        db: DbOpt = None,
        reason: str = typer.Option("approved", "--reason", help="Kept in the alias history."),
        actor: str = typer.Option("cli", "--actor", help="Who approves (alias history, audit)."),
    ) -> None:
        """Approve MODEL's pending promotion (a plan with `promotion: approval`)."""
        _move_champion("approve", model, version, project, db, actor, reason)

    def _report(kind: str, model: str, version: str, project: str, db: str | None,
                as_json: bool) -> None:  # fmt: skip
        from watchkeeper.loop._cycle import gate_report, shadow_report_of

        with model_store(db, project, model) as store:
            try:
                get = gate_report if kind == "gate" else shadow_report_of
                report = get(store, project, model, version)
            except KeyError as exc:
                raise fail(str(exc.args[0])) from exc
        if report is None:
            raise fail(f"version {version!r} of {model!r} has no stored {kind} report")
        if as_json:
            typer.echo(json.dumps(report, indent=2, default=str))
            return
        typer.echo(f"{kind} report of {project}/{model} {version} (job {report.get('job', '-')})")
        for line in report.get("summary") or []:
            typer.echo(line)
        if kind == "gate":
            _gate_table(report)

    @group.command("gate")
    def gate_cmd(
        model: ModelArg,
        version: str = typer.Argument(..., help="The challenger version."),
        project: ProjectOpt = "default",
        db: DbOpt = None,
        as_json: bool = typer.Option(False, "--json", help="The whole report as JSON."),
    ) -> None:
        """Print the stored gate report of a challenger VERSION (rules, metrics per set)."""
        _report("gate", model, version, project, db, as_json)

    @group.command("shadow")
    def shadow_cmd(
        model: ModelArg,
        version: str = typer.Argument(..., help="The challenger version."),
        project: ProjectOpt = "default",
        db: DbOpt = None,
        as_json: bool = typer.Option(False, "--json", help="The whole report as JSON."),
    ) -> None:
        """Print the latest stored shadow report of a challenger VERSION."""
        _report("shadow", model, version, project, db, as_json)

    loop_app = typer.Typer(
        help="The retraining loop: one step, its state, a job, a cancellation (docs/loop.md).",
        no_args_is_help=True,
    )

    @loop_app.command("step")
    def step_cmd(
        model: ModelArg,
        project: ProjectOpt = "default",
        db: DbOpt = None,
        workdir: str | None = typer.Option(
            None, "--workdir", help="Where jobs write (default: jobs/ beside a SQLite file)."
        ),
        at: float | None = typer.Option(None, "--at", help="The step's time (epoch s)."),
    ) -> None:
        """Do what is due for MODEL's loop once (for cron): watch, triggers, a queued job (run
        here), gate, shadow, promotion. Prints each step; nothing due prints nothing."""
        from watchkeeper.alerts import SinkPolicy
        from watchkeeper.loop._cycle import jobs_root, loop_step

        with model_store(db, project, model) as store:
            steps = loop_step(store, project, model, now=at, workdir=jobs_root(db, workdir),
                              policy=SinkPolicy.parse(None, None))  # fmt: skip
        for st in steps:
            rest = ", ".join(f"{k} {v}" for k, v in st.items()
                             if k != "step" and not isinstance(v, dict))  # fmt: skip
            typer.echo(f"{st['step']:<18} {rest}")

    @loop_app.command("status")
    def status_cmd(
        model: ModelArg,
        project: ProjectOpt = "default",
        db: DbOpt = None,
        limit: int = typer.Option(20, "--limit", min=1, max=200, help="Newest steps shown."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """MODEL's loop: the challenger in progress, the watch period, the newest steps."""
        from watchkeeper.loop._cycle import loop_status

        with model_store(db, project, model) as store:
            status = loop_status(store, project, model, limit=limit)
        if as_json:
            typer.echo(json.dumps(status, indent=2, default=str))
            return
        c = status["cycle"]
        typer.echo("cycle: " + (f"job {c['job']} -> {c['version']}: {c['stage']}"
                                + (f" ({c['outcome']})" if c.get("outcome") else "")
                                if c else "none"))  # fmt: skip
        w = status["watch"]
        typer.echo("watch: " + (f"{w['version']} until {w['until']:.0f}" if w else "none"))
        for e in status["events"]:
            typer.echo(f"{e['at']:.0f}  {e['step']:<18} {e['summary'][:160]}")

    @loop_app.command("job")
    def job_cmd(
        job_id: int = typer.Argument(..., min=1, help="The job's id."),
        project: ProjectOpt = "default",
        db: DbOpt = None,
        tail: int = typer.Option(40, "--tail", min=0, max=10_000, help="Log lines shown."),
    ) -> None:
        """One job: its state, trigger, outputs and the tail of its log."""
        store = open_store(db)
        try:
            job = store.get_job(project, job_id)
        except KeyError as exc:
            raise fail(str(exc.args[0])) from exc
        finally:
            store.close()
        typer.echo(_job_line(job))
        outputs = {k: v for k, v in (job.get("outputs") or {}).items()
                   if k not in ("gate", "shadow", "dataset")}  # fmt: skip
        typer.echo(f"outputs: {json.dumps(outputs, default=str)}")
        if tail:
            typer.echo("\n".join((job.get("log") or "").splitlines()[-tail:]))

    @loop_app.command("cancel")
    def cancel_cmd(
        job_id: int = typer.Argument(..., min=1, help="The job's id."),
        project: ProjectOpt = "default",
        db: DbOpt = None,
    ) -> None:
        """Cancel a queued or running job (its runner stops the trainer at its next heartbeat)."""
        store = open_store(db)
        try:
            job = store.get_job(project, job_id)
            if job["state"] not in ("queued", "running"):
                raise fail(f"job {job_id} is {job['state']}: only a queued or running job "
                           "can be cancelled")  # fmt: skip
            job = store.cancel_job(project, job_id)
            store.audit("job.cancel", project=project, actor="cli", target=job["model"],
                        details={"job": job_id})  # fmt: skip
        except KeyError as exc:
            raise fail(str(exc.args[0])) from exc
        finally:
            store.close()
        typer.echo(_job_line(job))

    app.add_typer(loop_app, name="loop")


def _gate_table(report: dict[str, Any]) -> None:
    """Each set's key metrics, champion against challenger, then each rule's outcome."""
    if not report.get("sets"):
        return
    typer.echo(f"{'set':<12} {'metric':<22} {'champion':>9} {'challenger':>11} {'p':>9}")
    for name, s in report["sets"].items():
        for metric, label in (("accuracy", "accuracy (op. point)"), ("auc", "AUC"),
                              ("fpr_at_tpr", "FPR at target TPR")):  # fmt: skip
            t = s["tests"][metric]
            p = t.get("p_value")
            typer.echo(f"{name:<12} {label:<22} {t['champion']:>9.4f} {t['challenger']:>11.4f} "
                       f"{'-' if p is None else format(p, '.3g'):>9}")  # fmt: skip
    for o in report.get("outcomes") or []:
        mark = "pass" if o["passed"] else "FAIL"
        typer.echo(f"{mark}  {o['rule']} on {o['set']}: {o['reason']}")
