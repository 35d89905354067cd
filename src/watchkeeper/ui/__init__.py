"""The web console under ``/ui`` of the server, and the offline HTML report.

Server-rendered pages (Jinja2, htmx) in the same FastAPI app as the HTTP API, on the same store
and the same tokens; Plotly.js and htmx are vendored in ``watchkeeper/ui/static`` so it works
offline. :func:`install` adds it to an app (the server's factory does); :func:`render_report`
writes the model page as one self-contained HTML file. docs/console.md is the tour.

``import watchkeeper.ui`` is light: FastAPI, Jinja2 and numpy load when a function needs them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["install", "render_report"]


def install(app: Any, settings: Any) -> None:
    """Add the console's routes (``/ui``), static files and session secret to ``app``."""
    from watchkeeper.ui._routes import install as _install

    _install(app, settings)


def render_report(store: Any, project: str, model: str, **kwargs: Any) -> str:
    """The model page as one self-contained HTML document (see :mod:`watchkeeper.ui.report`)."""
    from watchkeeper.ui.report import render_report as _render

    return _render(store, project, model, **kwargs)
