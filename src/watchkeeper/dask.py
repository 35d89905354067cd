"""``watchkeeper.dask.profile(ddf)``: profiles of Dask DataFrames (the ``dask`` extra).

The engine lives in :mod:`watchkeeper.engines.dask`; this module names it where users look.
"""

from __future__ import annotations

from watchkeeper.engines.dask import profile, profile_by

__all__ = ["profile", "profile_by"]
