"""``watchkeeper model``: versions, artifacts, aliases, rollback, verification, lineage and the
MLflow import (docs/registry.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from watchkeeper.cli._common import (
    DbOpt,
    ModelArg,
    ProjectOpt,
    cli_actor,
    fail,
    model_store,
    open_store,
)

ArtifactsOpt = Annotated[
    str | None,
    typer.Option(
        "--artifacts",
        help="Artifact store: a directory or fsspec URL (default: $WATCHKEEPER_ARTIFACTS, else "
        "'artifacts' beside the SQLite file).",
        envvar="WATCHKEEPER_ARTIFACTS",
    ),
]
ReasonOpt = Annotated[str | None, typer.Option("--reason", "-m", help="Why (kept in the history).")]
ActorOpt = Annotated[
    str | None, typer.Option("--actor", help="Who moves it (default: cli:<user>@<host>).")
]
FormatOpt = Annotated[str, typer.Option("--format", help="table or json.")]


def _actor(actor: str | None) -> str:
    return actor or cli_actor()


def _pairs(values: list[str] | None, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise fail(f"{what}: expected KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return out


def _when(ts: float | None) -> str:
    import datetime as dt

    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if Console().is_terminal else Console(width=160)
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*r)
    console.print(table)


def _message(exc: Exception) -> str:
    """The text of an error (a KeyError's without the quotes its str adds)."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc)


def _check_format(output: str) -> None:
    if output not in ("table", "json"):
        raise fail(f"--format must be table or json, got {output!r}")


def register(app: typer.Typer) -> None:
    """Add ``watchkeeper model ...`` to the CLI."""
    model_app = typer.Typer(
        help="The model registry: versions, artifacts, aliases, rollback, lineage "
        "(docs/registry.md).",
        no_args_is_help=True,
    )

    @model_app.command("register")
    def model_register(
        project: str = typer.Argument(..., help="Project (created when missing)."),
        model: str = typer.Argument(..., help="Model name."),
        version: str | None = typer.Option(None, "--version", help="Also register a version."),
        threshold: float | None = typer.Option(None, help="Operating point: score threshold."),
        tpr: float | None = typer.Option(None, help="Operating point: true-positive rate."),
        fpr: float | None = typer.Option(None, help="Operating point: false-positive rate."),
        prevalence: float | None = typer.Option(None, help="Expected prevalence."),
        volume: float | None = typer.Option(None, help="Expected events per window."),
        db: DbOpt = None,
    ) -> None:
        """Register a model (and optionally a version with its operating point)."""
        store = open_store(db)
        from watchkeeper.sdk.client import _ensure_project

        _ensure_project(store, project)
        store.register_model(project, model)
        if version is not None:
            op = {
                k: v
                for k, v in {"threshold": threshold, "tpr": tpr, "fpr": fpr}.items()
                if v is not None
            }
            store.register_model_version(
                project,
                model,
                version,
                operating_point=op or None,
                expected_prevalence=prevalence,
                expected_volume=volume,
            )
        typer.echo(f"registered {project}/{model}" + (f" version {version}" if version else ""))

    @model_app.command("versions")
    def versions(
        model: ModelArg, project: ProjectOpt = "default", db: DbOpt = None,
        output: FormatOpt = "table",
    ) -> None:  # fmt: skip
        """List MODEL's versions, oldest first, with their aliases and artifact digests."""
        _check_format(output)
        with model_store(db, project, model) as store:
            records = store.list_model_versions(project, model)
            aliases = store.list_aliases(project, model)
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(version, []).append(alias)
        if output == "json":
            for r in records:
                r["aliases"] = sorted(by_version.get(r["version"], []))
            typer.echo(json.dumps(records, default=str))
            return
        rows = [
            [
                r["version"],
                ", ".join(sorted(by_version.get(r["version"], []))),
                (r["sha256"] or "")[:16],
                "yes" if r.get("signature") else "",
                ((r.get("lineage") or {}).get("parent")) or "",
                _when(r["created_at"]),
            ]
            for r in records
        ]
        _table(
            f"{project}/{model}",
            ["version", "aliases", "digest", "signed", "parent", "created (UTC)"],
            rows,
        )

    @model_app.command("publish")
    def publish(
        model: ModelArg,
        version: Annotated[str, typer.Argument(help="The version.")],
        artifact: Annotated[
            Path | None, typer.Option("--artifact", help="A file or a directory: the model.")
        ] = None,
        sign_key: Annotated[
            Path | None, typer.Option("--sign-key", help="ed25519 private key (PEM) to sign with.")
        ] = None,
        parent: Annotated[
            str | None, typer.Option("--parent", help="The version it derives from.")
        ] = None,
        train_data: Annotated[
            list[Path] | None, typer.Option("--train-data", help="Training data files or folders.")
        ] = None,
        val_data: Annotated[
            list[Path] | None, typer.Option("--val-data", help="Validation data files or folders.")
        ] = None,
        time_column: Annotated[
            str | None, typer.Option("--time-column", help="Parquet column of event times.")
        ] = None,
        param: Annotated[
            list[str] | None, typer.Option("--param", help="KEY=VALUE, repeatable.")
        ] = None,
        metric: Annotated[
            list[str] | None,
            typer.Option("--metric", help="KEY=VALUE validation metric, repeatable."),
        ] = None,
        project: ProjectOpt = "default",
        db: DbOpt = None,
        artifacts: ArtifactsOpt = None,
    ) -> None:
        """Publish VERSION of MODEL: its artifact (stored content-addressed, hashed, optionally
        signed) and its lineage (data fingerprints, git commit, parent, params, metrics)."""
        from watchkeeper import registry

        params, metrics = _pairs(param, "--param"), _pairs(metric, "--metric")
        store = open_store(db)
        try:
            if parent is not None and store.has_model(project, model):
                store.get_model_version(project, model, parent)  # before anything is stored
            elif parent is not None:
                raise ValueError(f"parent: model {model!r} has no version {parent!r}")
            if artifact is not None:
                record = registry.register_artifact(
                    store, project, model, version, artifact, artifacts=artifacts, sign_key=sign_key
                )
                typer.echo(
                    f"stored the artifact of {model} {version}: {len(record['manifest']['files'])} "
                    f"file(s), digest {record['sha256']}"
                    + (" (signed)" if record.get("signature") else "")
                )
            else:
                store.register_model_version(project, model, version)
            lineage = registry.record_lineage(
                store, project, model, version,
                training_data=train_data or None, validation_data=val_data or None,
                time_column=time_column, parent=parent,
                params=params or None, metrics=metrics or None,
            )  # fmt: skip
        except KeyError:
            raise fail(f"parent: model {model!r} has no version {parent!r}") from None
        except (ValueError, OSError) as exc:
            raise fail(str(exc)) from exc
        finally:
            store.close()
        code = lineage.get("code") or {}
        typer.echo(
            f"registered {project}/{model} {version}"
            + (f", parent {parent}" if parent else "")
            + (f", git {code['git_commit'][:12]}" if code.get("git_commit") else "")
        )

    @model_app.command("alias")
    def alias(
        model: ModelArg,
        name: Annotated[
            str | None, typer.Argument(help="The alias (champion, challenger, ...).")
        ] = None,
        version: Annotated[
            str | None, typer.Argument(help="Move the alias to this version.")
        ] = None,
        reason: ReasonOpt = None,
        actor: ActorOpt = None,
        project: ProjectOpt = "default",
        db: DbOpt = None,
    ) -> None:
        """Show MODEL's aliases, show one, or move NAME to VERSION (the move is recorded)."""
        with model_store(db, project, model) as store:
            try:
                if name is None:
                    typer.echo(json.dumps(store.list_aliases(project, model), indent=2))
                    return
                if version is None:
                    target = store.get_alias(project, model, name)
                    if target is None:
                        raise fail(f"model {model!r} has no alias {name!r}")
                    typer.echo(target)
                    return
                move = store.set_alias(
                    project, model, name, version, actor=_actor(actor), reason=reason
                )
            except ValueError as exc:
                raise fail(str(exc)) from exc
        if not move["changed"]:
            typer.echo(f"{model} {name} already points at {version}")
        else:
            typer.echo(f"{model} {name}: {move['from'] or '(unset)'} -> {move['to']}")

    @model_app.command("history")
    def history(
        model: ModelArg,
        name: Annotated[str | None, typer.Argument(help="Only this alias.")] = None,
        project: ProjectOpt = "default",
        db: DbOpt = None,
        output: FormatOpt = "table",
    ) -> None:
        """Every move of MODEL's aliases: from, to, when, who, why."""
        _check_format(output)
        with model_store(db, project, model) as store:
            try:
                moves = store.alias_history(project, model, name)
            except ValueError as exc:
                raise fail(str(exc)) from exc
        if output == "json":
            typer.echo(json.dumps(moves))
            return
        rows = [
            [
                _when(m["at"]),
                m["alias"],
                m["kind"],
                m["from"] or "",
                m["to"],
                m["actor"] or "",
                m["reason"] or "",
            ]
            for m in moves
        ]
        _table(
            f"alias moves of {project}/{model}",
            ["at (UTC)", "alias", "kind", "from", "to", "actor", "reason"],
            rows,
        )

    @model_app.command("rollback")
    def rollback(
        model: ModelArg,
        name: Annotated[str, typer.Argument(help="The alias to move back.")] = "champion",
        reason: ReasonOpt = None,
        actor: ActorOpt = None,
        project: ProjectOpt = "default",
        db: DbOpt = None,
    ) -> None:
        """Move alias NAME (default champion) back to where it pointed before its last move;
        monitoring follows from its next window."""
        with model_store(db, project, model) as store:
            try:
                move = store.rollback_alias(
                    project, model, name, actor=_actor(actor), reason=reason
                )
            except ValueError as exc:
                raise fail(str(exc)) from exc
        typer.echo(f"{model} {name}: rolled back {move['from']} -> {move['to']}")

    @model_app.command("verify")
    def verify(
        model: ModelArg,
        version: Annotated[
            str | None, typer.Argument(help="The version (default: --alias).")
        ] = None,
        alias: Annotated[
            str, typer.Option("--alias", help="Verify this alias's version.")
        ] = "champion",
        public_key: Annotated[
            Path | None,
            typer.Option(
                "--public-key",
                help="ed25519 public key (PEM) the signature must match.",
                envvar="WATCHKEEPER_SIGNING_PUBLIC_KEY",
            ),
        ] = None,
        project: ProjectOpt = "default",
        db: DbOpt = None,
        artifacts: ArtifactsOpt = None,
        output: FormatOpt = "table",
    ) -> None:
        """Re-read every byte of a version's artifact and compare with what was registered.

        Exit code 1 when it does not match (an integrity finding and a critical alert are
        stored), 0 when it does."""
        from watchkeeper import registry

        _check_format(output)
        with model_store(db, project, model) as store:
            try:
                result = registry.verify(
                    store, project, model, version, alias=None if version else alias,
                    artifacts=artifacts, public_key=public_key,
                )  # fmt: skip
            except (ValueError, KeyError) as exc:
                raise fail(_message(exc)) from exc
        if output == "json":
            typer.echo(json.dumps(result.to_dict()))
        else:
            mb = result.bytes / 1e6
            rate = mb / result.seconds if result.seconds > 0 else float("inf")
            verdict = "OK" if result.ok else "FAILED"
            typer.echo(
                f"{model} {result.extra['version']}: {verdict} ({result.files} files, {mb:.1f} MB "
                f"in {result.seconds:.2f} s, {rate:.0f} MB/s; signature {result.signature})"
            )
            for p in result.problems:
                typer.echo(f"  {p}")
        if not result.ok:
            raise typer.Exit(1)

    @model_app.command("load")
    def load(
        model: ModelArg,
        alias: Annotated[str, typer.Option("--alias", help="The alias to resolve.")] = "champion",
        version: Annotated[
            str | None, typer.Option("--version", help="This version instead.")
        ] = None,
        project: ProjectOpt = "default",
        db: DbOpt = None,
        artifacts: ArtifactsOpt = None,
    ) -> None:
        """Print the verified local path of MODEL's artifact (the fallback alias's when the
        champion fails verification), for serving scripts."""
        from watchkeeper import registry

        with model_store(db, project, model) as store:
            try:
                loaded = registry.load_version(
                    store, project, model, alias, version=version, artifacts=artifacts
                )
            except registry.IntegrityError as exc:
                typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
                raise typer.Exit(1) from exc
            except (ValueError, KeyError) as exc:
                raise fail(_message(exc)) from exc
        if loaded.fell_back_from:
            typer.secho(
                f"warning: {loaded.fell_back_from} failed ({loaded.failure}); "
                f"loaded the fallback {loaded.version}",
                err=True, fg=typer.colors.YELLOW,
            )  # fmt: skip
        typer.echo(str(loaded.path))

    @model_app.command("lineage")
    def lineage(
        model: ModelArg,
        version: Annotated[str, typer.Argument(help="The version.")],
        project: ProjectOpt = "default",
        db: DbOpt = None,
        output: FormatOpt = "table",
    ) -> None:
        """Show VERSION's lineage and its parents': data, code, params, metrics."""
        from watchkeeper import registry

        _check_format(output)
        with model_store(db, project, model) as store:
            try:
                chain = registry.lineage_chain(store, project, model, version)
            except (ValueError, KeyError) as exc:
                raise fail(_message(exc)) from exc
        if output == "json":
            typer.echo(
                json.dumps(
                    [
                        {"version": r["version"], "sha256": r["sha256"], "lineage": r["lineage"]}
                        for r in chain
                    ],
                    default=str,
                )
            )
            return
        for i, r in enumerate(chain):
            lin = r.get("lineage") or {}
            data = lin.get("data") or {}
            typer.echo(("  " * i) + f"{r['version']}  (artifact {(r['sha256'] or 'none')[:16]})")
            pad = "  " * i + "  "
            code = lin.get("code") or {}
            if code.get("git_commit"):
                typer.echo(
                    pad
                    + f"code: git {code['git_commit'][:12]}"
                    + (" (dirty)" if code.get("dirty") else "")
                )
            for part in ("training", "validation"):
                fp = data.get(part)
                if fp:
                    span = fp.get("time_range")
                    typer.echo(
                        pad + f"{part} data: {len(fp['files'])} file(s), {fp.get('rows')} rows, "
                        f"digest {fp['digest'][:16]}"
                        + (f", {_when(span[0])} to {_when(span[1])}" if span else "")
                    )
            if lin.get("params"):
                typer.echo(pad + "params: " + json.dumps(lin["params"]))
            if lin.get("metrics"):
                typer.echo(pad + "metrics: " + json.dumps(lin["metrics"]))

    @model_app.command("import-mlflow")
    def import_mlflow(
        tracking_uri: Annotated[
            str,
            typer.Option("--tracking-uri", help="MLflow tracking URI, e.g. sqlite:///mlflow.db."),
        ],
        name: Annotated[str, typer.Option("--name", help="The registered model in MLflow.")],
        model: Annotated[
            str | None, typer.Option("--model", help="Name in Watchkeeper (default: --name).")
        ] = None,
        project: ProjectOpt = "default",
        db: DbOpt = None,
        artifacts: ArtifactsOpt = None,
    ) -> None:
        """Bring an MLflow registered model in: versions, aliases, params, metrics and the
        artifacts (hashed into the artifact store)."""
        from watchkeeper import registry

        store = open_store(db)
        try:
            report = registry.import_mlflow(
                store, project, tracking_uri=tracking_uri, name=name, model=model,
                artifacts=artifacts, actor=_actor(None),
            )  # fmt: skip
        except ImportError as exc:
            raise fail(str(exc)) from exc
        except (ValueError, KeyError) as exc:
            raise fail(_message(exc)) from exc
        finally:
            store.close()
        typer.echo(
            f"imported {report['versions']} version(s) of {name} as {report['model']} "
            f"({report['artifacts']} with artifacts); aliases: {json.dumps(report['aliases'])}"
        )

    @model_app.command("keygen")
    def keygen(
        private: Annotated[Path, typer.Argument(help="Where to write the private key (PEM).")],
        public: Annotated[Path, typer.Argument(help="Where to write the public key (PEM).")],
    ) -> None:
        """Make an ed25519 key pair to sign artifacts with (--sign-key) and check them
        (--public-key)."""
        from watchkeeper.registry._signing import generate_key

        for p in (private, public):
            if p.exists():
                raise fail(f"{p} exists; not overwriting a key")
        try:
            kid = generate_key(private, public)
        except ImportError as exc:
            raise fail(str(exc)) from exc
        typer.echo(f"wrote {private} and {public} (key id {kid})")

    app.add_typer(model_app, name="model")
