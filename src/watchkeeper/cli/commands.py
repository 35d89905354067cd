"""The list of command modules: each entry is a ``register(app)`` function.

Add a command by writing ``watchkeeper/cli/<name>.py`` with ``register(app: typer.Typer)`` and
appending it here. Keep module-level imports in command modules light (typer, rich only).
"""

from __future__ import annotations

from collections.abc import Callable

import typer

REGISTRARS: list[Callable[[typer.Typer], None]] = []
from watchkeeper.cli.expect import register as _register_expect  # noqa: E402

REGISTRARS.append(_register_expect)
from watchkeeper.cli.server import register as _register_server  # noqa: E402

REGISTRARS.append(_register_server)
from watchkeeper.cli.drift import register as _register_drift  # noqa: E402

REGISTRARS.append(_register_drift)
from watchkeeper.cli.demo import register as _register_demo  # noqa: E402

REGISTRARS.append(_register_demo)
from watchkeeper.cli.estimate import register as _register_estimate  # noqa: E402

REGISTRARS.append(_register_estimate)
from watchkeeper.cli.detect import register as _register_detect  # noqa: E402

REGISTRARS.append(_register_detect)
from watchkeeper.cli.check import register as _register_check  # noqa: E402

REGISTRARS.append(_register_check)
from watchkeeper.cli.db import register as _register_db  # noqa: E402

REGISTRARS.append(_register_db)
