"""Doctest collection: modules that need PyTorch are skipped where it is not installed."""

from __future__ import annotations

import importlib.util

collect_ignore = (
    [] if importlib.util.find_spec("torch") is not None else ["torch.py", "model.py"]
)
