"""``watchkeeper.spark.profile(df)``: profiles of Spark DataFrames (the ``spark`` extra).

The engine lives in :mod:`watchkeeper.engines.spark`; this module names it where users look.
"""

from __future__ import annotations

from watchkeeper.engines.spark import profile, profile_by, profile_parquet

__all__ = ["profile", "profile_by", "profile_parquet"]
