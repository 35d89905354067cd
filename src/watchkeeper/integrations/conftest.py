"""Doctest collection: modules whose optional framework is not installed are skipped."""

from __future__ import annotations

import importlib.util

_NEEDS = {"torch.py": "torch", "tensorboard.py": "tensorboard", "sklearn.py": "sklearn"}

collect_ignore = [f for f, mod in _NEEDS.items() if importlib.util.find_spec(mod) is None]
