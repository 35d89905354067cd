"""``watchkeeper server``, ``watchkeeper token create|revoke`` (``model register`` is in
:mod:`watchkeeper.cli.model`)."""

from __future__ import annotations

import os
from typing import Any

import typer

from watchkeeper.cli._common import DB_HELP, cli_actor
from watchkeeper.cli._common import open_store as _store


def _tls_options(
    certfile: str | None, keyfile: str | None, password_env: str | None
) -> dict[str, Any]:
    """uvicorn's TLS options, checked before the server starts (a bad path or a missing half
    is an error naming the option, not a stack trace at start-up)."""
    if certfile is None and keyfile is None:
        if password_env is not None:
            raise typer.BadParameter("--ssl-keyfile-password-env needs --ssl-keyfile")
        return {}
    if certfile is None or keyfile is None:
        missing = "--ssl-certfile" if certfile is None else "--ssl-keyfile"
        raise typer.BadParameter(f"{missing}: HTTPS needs both --ssl-certfile and --ssl-keyfile")
    for option, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if not os.path.isfile(path):
            raise typer.BadParameter(f"{option}: no file at {path!r}")
    out: dict[str, Any] = {"ssl_certfile": certfile, "ssl_keyfile": keyfile}
    if password_env is not None:
        if password_env not in os.environ:
            raise typer.BadParameter(
                f"--ssl-keyfile-password-env: the environment has no variable {password_env!r}"
            )
        out["ssl_keyfile_password"] = os.environ[password_env]
    return out


def register(app: typer.Typer) -> None:
    """Add the server, token and model commands to ``app``."""

    @app.command("server")
    def server(
        db: str | None = typer.Option(None, "--db", help=DB_HELP, envvar="WATCHKEEPER_DB"),
        host: str | None = typer.Option(None, "--host", help="Interface (default 127.0.0.1)."),
        port: int | None = typer.Option(None, "--port", help="Port (default 8000)."),
        auto_register: bool | None = typer.Option(
            None, "--auto-register/--no-auto-register", help="Register unknown models."
        ),
        scheduler: bool | None = typer.Option(
            None, "--scheduler/--no-scheduler", help="Run the monitors' scheduler."
        ),
        workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
        access_log: bool = typer.Option(True, "--access-log/--no-access-log"),
        ssl_certfile: str | None = typer.Option(
            None, "--ssl-certfile", envvar="WATCHKEEPER_SSL_CERTFILE",
            help="Serve HTTPS with this certificate chain (PEM); needs --ssl-keyfile.",
        ),
        ssl_keyfile: str | None = typer.Option(
            None, "--ssl-keyfile", envvar="WATCHKEEPER_SSL_KEYFILE",
            help="The certificate's private key (PEM).",
        ),
        ssl_keyfile_password_env: str | None = typer.Option(
            None, "--ssl-keyfile-password-env",
            help="Environment variable holding the key's password, when it has one.",
        ),
        proxy_headers: bool = typer.Option(
            False, "--proxy-headers/--no-proxy-headers",
            help="Trust X-Forwarded-For/-Proto from --forwarded-allow-ips (behind a proxy).",
        ),
        forwarded_allow_ips: str = typer.Option(
            "127.0.0.1", "--forwarded-allow-ips",
            help="Proxies whose X-Forwarded-* headers are trusted (comma-separated).",
        ),
    ) -> None:  # fmt: skip
        """Run the ingestion and query API (FastAPI on uvicorn).

        Every option also comes from a WATCHKEEPER_* environment variable (docs/server.md).
        With --ssl-certfile and --ssl-keyfile it serves HTTPS itself (docs/security.md).
        """
        import uvicorn

        from watchkeeper.server import Settings, create_app

        try:
            settings = Settings.from_env(
                db=db,
                host=host,
                port=port,
                auto_register_models=auto_register,
                run_scheduler=scheduler,
            )
            settings.validate()
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        options: dict[str, Any] = {
            "host": settings.host,
            "port": settings.port,
            "log_level": "info",
            "access_log": access_log,
            "timeout_graceful_shutdown": 10,
            "proxy_headers": proxy_headers,
            "forwarded_allow_ips": forwarded_allow_ips,
        }
        options.update(_tls_options(ssl_certfile, ssl_keyfile, ssl_keyfile_password_env))
        if workers == 1:
            uvicorn.run(create_app(settings), **options)
            return
        if settings.run_scheduler:
            raise typer.BadParameter(
                "--scheduler with --workers > 1 would run one scheduler per worker; run it in "
                "a separate single-worker server"
            )
        # Each worker process builds its own app from the environment.
        given = {"db": db, "auto_register_models": auto_register}
        for name, value in given.items():
            if value is not None:
                os.environ[f"WATCHKEEPER_{name.upper()}"] = str(value)
        uvicorn.run("watchkeeper.server.app:create_app", factory=True, workers=workers, **options)

    token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
    app.add_typer(token_app, name="token")

    @token_app.command("create")
    def token_create(
        project: str = typer.Argument(..., help="Project (created when missing)."),
        scope: list[str] = typer.Option(
            ["ingest"], "--scope", help="ingest, read or admin; repeat for several."
        ),
        expires: str | None = typer.Option(
            None, "--expires", help="Lifetime, e.g. 90d, 12h, 2w (default: until revoked)."
        ),
        db: str | None = typer.Option(None, "--db", help=DB_HELP, envvar="WATCHKEEPER_DB"),
    ) -> None:
        """Create a token and print it (it is stored hashed: this is the only time it shows)."""
        import time

        from watchkeeper.checks import parse_duration

        bad = [s for s in scope if s not in ("ingest", "read", "admin")]
        if bad:
            raise typer.BadParameter(f"--scope: unknown scope(s) {bad}; use ingest, read, admin")
        expires_at = None
        if expires is not None:
            try:
                expires_at = time.time() + parse_duration(expires, "--expires")
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from None
        store = _store(db)
        from watchkeeper.sdk.client import _ensure_project

        _ensure_project(store, project)
        token = store.create_token(project, set(scope), expires_at=expires_at)
        store.audit(
            "token.create", project=project, actor=cli_actor(), target=f"token:{token[:10]}",
            details={"scopes": sorted(set(scope)), "expires_at": expires_at},
        )
        typer.echo(token)

    @token_app.command("list")
    def token_list(
        project: str = typer.Argument(..., help="Project."),
        db: str | None = typer.Option(None, "--db", help=DB_HELP, envvar="WATCHKEEPER_DB"),
    ) -> None:
        """The project's tokens: prefix, scopes, created, expires, last used, revoked."""
        import datetime as dt

        def when(t: float | None) -> str:
            if t is None:
                return "-"
            return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M")

        store = _store(db)
        if not store.has_project(project):
            raise typer.BadParameter(f"project: no project named {project!r}")
        typer.echo("prefix      scopes              created           expires           "
                   "last used         revoked")  # fmt: skip
        for t in store.list_tokens(project):
            typer.echo(
                f"{t['prefix']:<11} {','.join(t['scopes']):<19} {when(t['created_at']):<17} "
                f"{when(t['expires_at']):<17} {when(t['last_used_at']):<17} "
                f"{when(t['revoked_at'])}"
            )

    @token_app.command("revoke")
    def token_revoke(
        token: str = typer.Argument(..., help="The token to revoke."),
        db: str | None = typer.Option(None, "--db", help=DB_HELP, envvar="WATCHKEEPER_DB"),
    ) -> None:
        """Revoke a token (other replicas stop accepting it within WATCHKEEPER_TOKEN_CACHE_SECONDS,
        5 by default)."""
        store = _store(db)
        found = store.authenticate(token)
        if not store.revoke_token(token):
            typer.echo("no active token matches", err=True)
            raise typer.Exit(1)
        store.audit(
            "token.revoke", project=found[0] if found else None, actor=cli_actor(),
            target=f"token:{token[:10]}",
        )
        typer.echo("revoked")

