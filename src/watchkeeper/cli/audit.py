"""``watchkeeper audit``: the audit log of admin actions (tokens, monitor changes)."""

from __future__ import annotations

import json

import typer

from watchkeeper.cli._common import DbOpt, fail, open_store


def register(app: typer.Typer) -> None:
    @app.command("audit")
    def audit(
        project: str | None = typer.Option(None, "--project", "-p", help="Only this project."),
        db: DbOpt = None,
        action: str | None = typer.Option(None, "--action", help="Only this action."),
        limit: int = typer.Option(100, "--limit", min=1, max=10_000, help="Newest N entries."),
        output: str = typer.Option("table", "--format", help="table or json."),
    ) -> None:
        """Print the audit log, newest first: who created or revoked tokens and changed monitor
        configurations (the actor is a token's public prefix)."""
        import time

        if output not in ("table", "json"):
            raise fail(f"--format must be table or json, got {output!r}")
        store = open_store(db)
        try:
            rows = store.audit_log(project, action=action, limit=limit)
        except ValueError as exc:
            raise fail(str(exc)) from exc
        finally:
            store.close()
        if output == "json":
            typer.echo(json.dumps(rows))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"audit log: {len(rows)} entr{'y' if len(rows) == 1 else 'ies'}")
        for col in ("time", "project", "actor", "action", "target"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["at"])),
                str(r["project"] or "-"),
                str(r["actor"] or "-"),
                r["action"],
                str(r["target"] or "-"),
            )
        Console().print(table)
