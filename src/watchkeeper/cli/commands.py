"""The list of command modules: each entry is a ``register(app)`` function.

Add a command by writing ``watchkeeper/cli/<name>.py`` with ``register(app: typer.Typer)`` and
adding it here. Keep module-level imports in command modules light (typer, rich only), so that
``watchkeeper --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from watchkeeper.cli import (
    audit,
    check,
    check_batch,
    db,
    demo,
    detect,
    drift,
    estimate,
    expect,
    explain,
    loop,
    model,
    monitors,
    outliers,
    plan,
    report,
    segments,
    server,
)

# The order is the order of ``watchkeeper --help``: the day-one commands first.
REGISTRARS: tuple[Callable[[typer.Typer], None], ...] = (
    demo.register,
    drift.register,
    expect.register,
    estimate.register,
    detect.register,
    check.register,
    check_batch.register,
    monitors.register,
    model.register,
    outliers.register,
    explain.register,
    audit.register,
    plan.register,
    report.register,
    segments.register,
    server.register,
    loop.register,
    db.register,
)
