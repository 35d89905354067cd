"""The console's Jinja2 environment (templates shipped in the package, autoescaped)."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("watchkeeper.ui", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: Any) -> str:
    """A template of ``watchkeeper/ui/templates`` rendered with ``context``."""
    context.setdefault("inline", None)
    context.setdefault("report", False)
    context.setdefault("session", None)
    return str(_environment().get_template(template).render(**context))
