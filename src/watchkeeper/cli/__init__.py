"""The ``watchkeeper`` command line.

Each command lives in its own module with a ``register(app)`` function, so that importing the
CLI for ``--help`` stays cheap: commands import their heavy dependencies inside the function.
"""

from __future__ import annotations

import typer

from watchkeeper import __version__


def _version(value: bool) -> None:
    if value:
        from watchkeeper.detectors import _backend

        # Which kernels the streaming detectors run: "c" (compiled at install, no first-call
        # cost) or "numba" (no compiler at install: the first call in a process loads numba).
        typer.echo(f"watchkeeper {__version__} (detector kernels: {_backend.name()})")
        raise typer.Exit()


def create_app() -> typer.Typer:
    """Build the Typer application with every command registered."""
    app = typer.Typer(
        name="watchkeeper",
        help="Keep watch over machine-learning models in production.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        # Docstrings are wrapped at 100 columns in the source; markdown mode re-flows their
        # paragraphs to the terminal's width instead of keeping the source's line breaks.
        rich_markup_mode="markdown",
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version."
        ),
    ) -> None:
        """Keep watch over machine-learning models in production."""

    from watchkeeper.cli.commands import REGISTRARS

    for register in REGISTRARS:
        register(app)
    return app


def main() -> None:
    """Console-script entry point."""
    create_app()()
