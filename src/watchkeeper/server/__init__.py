"""The ingestion service: ``create_app(Settings.from_env())`` builds the FastAPI app.

Run it with ``watchkeeper server`` (see docs/server.md). Importing this package loads FastAPI;
the top-level ``watchkeeper`` package never imports it.
"""

from __future__ import annotations

from watchkeeper.server.app import create_app
from watchkeeper.server.settings import Settings

__all__ = ["Settings", "create_app"]
