"""What the integrations need of a client: the SDK's ``log_batch``, nothing more."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np


class BatchLogger(Protocol):
    """Anything with the SDK's ``log_batch``: :class:`watchkeeper.Client`, ``LocalClient``, or a
    test double."""

    @property
    def log_batch(self) -> Callable[..., Any]:
        """``log_batch(model, *, ids, ...)``: log one batch of events, columns as in the SDK."""
        ...


class IdMaker:
    """Request ids for events whose caller gave none: a per-process prefix and a counter.

    Built with numpy string operations, so a batch of ids costs no Python loop per row.

    Examples
    --------
    >>> make = IdMaker(prefix="run")
    >>> make(3).tolist(), make(2).tolist()
    (['run-0', 'run-1', 'run-2'], ['run-3', 'run-4'])
    """

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix
        self._next = 0

    def __call__(self, n: int) -> np.ndarray:
        prefix = self.prefix if self.prefix is not None else uuid.uuid4().hex[:12]
        self.prefix = prefix
        start = self._next
        self._next += n
        numbers = np.arange(start, start + n).astype(str)
        return np.char.add(f"{prefix}-", numbers).astype(object)
