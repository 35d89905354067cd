"""Two-sample tests, distances, multiple-testing corrections and kernels (numpy, scipy)."""

from __future__ import annotations

from watchkeeper.stats._result import DriftResult

__all__ = ["DriftResult"]
