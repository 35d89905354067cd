"""Helpers of the server tests (a module with a unique name, so tests can import it)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any


@dataclass
class Api:
    client: Any
    store: Any
    project: str
    ingest: str
    read: str
    admin: str

    def h(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def unique_project() -> str:
    return f"p{secrets.token_hex(4)}"
