"""Small value types of the store that need no database library."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

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


@dataclass(frozen=True)
class IngestReport:
    """What one :meth:`~watchkeeper.store.Store.log_events_report` call did, event by event.

    Attributes
    ----------
    accepted, duplicates
        As in :class:`IngestResult`.
    new
        One boolean per event of the batch, in its order: True for the events this call
        stored (False for an id already stored, or repeated earlier in the batch).
    """

    accepted: int
    duplicates: int
    new: Any

    def result(self) -> IngestResult:
        """The counts alone."""
        return IngestResult(self.accepted, self.duplicates)


@dataclass(frozen=True)
class LabelsReport:
    """What one :meth:`~watchkeeper.store.Store.log_labels_report` call did.

    Attributes
    ----------
    ids
        The distinct ids of the batch (the last label of a repeated id wins).
    stored
        ``len(ids)``: labels written (new, changed or the same again).
    changed
        One boolean per id: True when the id had no label or a different one before.
    """

    ids: list[str]
    stored: int
    changed: Any
