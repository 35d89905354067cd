"""Watchkeeper keeps watch over machine-learning models in production.

Importing the package is cheap: heavy modules (scipy, scikit-learn, SQLAlchemy, FastAPI, torch)
load only when the piece that needs them is first used.

>>> import watchkeeper
>>> watchkeeper.__version__
'0.1.0'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watchkeeper.checks import monitor
    from watchkeeper.runner import explain
    from watchkeeper.sdk import Client, LocalClient

__version__ = "0.1.0"

__all__ = ["Client", "LocalClient", "__version__", "explain", "monitor"]

_LAZY = {
    "Client": "watchkeeper.sdk",
    "LocalClient": "watchkeeper.sdk",
    "monitor": "watchkeeper.checks",
    "explain": "watchkeeper.runner",
}


def __getattr__(name: str) -> object:
    # The SDK's clients and monitor() are exported here but imported on first use, to keep
    # this import cheap.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'watchkeeper' has no attribute {name!r}")
