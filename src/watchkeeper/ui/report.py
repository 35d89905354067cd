"""``watchkeeper report``: the model page as one self-contained HTML file that works offline.

The charts, Plotly.js and the style sheet are embedded in the file; no request leaves it, so it
can be attached to an alert, mailed or archived.

Examples
--------
>>> from watchkeeper.store import Store
>>> store = Store("sqlite://")
>>> store.create_project("p"); store.register_model("p", "m")
>>> html = render_report(store, "p", "m")
>>> html.startswith("<!doctype html>"), "Plotly" in html, 'src="http' in html
(True, True, False)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

STATIC = Path(__file__).with_name("static")


def render_report(
    store: Any, project: str, model: str, *, since: float | None = None, now: float | None = None
) -> str:
    """The model page of ``model`` (findings, alerts and metrics since ``since``) as HTML.

    Raises KeyError / ValueError (from the store) when the project or model does not exist.
    """
    from watchkeeper.ui import _views as V
    from watchkeeper.ui._render import render

    if not store.has_model(project, model):
        raise ValueError(f"model: {model!r} is not registered in project {project!r}")
    page = V.model_page(store, project, model, since=since)
    inline = {
        "css": (STATIC / "style.css").read_text(),
        "plotly": (STATIC / "plotly-cartesian.min.js")
        .read_text()
        .replace("</script", "<\\/script"),
        "console": (STATIC / "console.js").read_text(),
    }
    at = time.time() if now is None else now
    html = render("model.html", prefix="", page=page, inline=inline, report=True, iso=V.iso)
    stamp = (
        f'<p class="note">Report of project {_esc(project)}, generated {V.iso(at)} UTC'
        + (f", since {V.iso(since)}" if since is not None else "")
        + ".</p>"
    )
    return html.replace("<main>", "<main>\n" + stamp, 1)


def _esc(text: str) -> str:
    import html

    return html.escape(text)
