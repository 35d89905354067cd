"""Small value types of the store that need no database library."""

from __future__ import annotations

from typing import NamedTuple

SCOPES: frozenset[str] = frozenset({"ingest", "read", "admin"})
"""Scopes an API token may carry."""


class IngestResult(NamedTuple):
    """What one :meth:`~watchkeeper.store.Store.log_events` call did.

    Attributes
    ----------
    accepted
        Events newly stored.
    duplicates
        Events whose (model, id) was already stored, or repeated within the batch; ignored.
    """

    accepted: int
    duplicates: int
