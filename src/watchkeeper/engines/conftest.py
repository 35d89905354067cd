"""Doctest collection: modules whose optional engine is not installed are skipped."""

from __future__ import annotations

import importlib.util

_NEEDS = {"spark.py": "pyspark", "dask.py": "dask"}

collect_ignore = [f for f, mod in _NEEDS.items() if importlib.util.find_spec(mod) is None]
