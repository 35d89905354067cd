"""Profiles: schema inference and mergeable summaries of a window.

A :class:`Profile` holds, per column, its inferred type, range, categories, missing rate,
quantiles and frequencies, plus the calibration curve of scores against labels. Profiles merge
(``zero()`` is the identity), so the profile of a day is the merge of its hours.

>>> import numpy as np
>>> from watchkeeper.window import Window
>>> p = profile(Window.from_columns(features={"x": [1.0, 2.0, None]}))
>>> p.features["x"].missing_rate
0.3333333333333333
"""

from __future__ import annotations

from watchkeeper.profiles._compare import (
    EMBEDDINGS,
    bridge_sf,
    compare_embeddings,
    compare_profiles,
)
from watchkeeper.profiles._profile import (
    EmbeddingSummary,
    Profile,
    RFFMap,
    infer_type,
    profile,
    summarise_column,
)
from watchkeeper.profiles._sketch import (
    OTHER,
    CalibrationSketch,
    CategoricalSummary,
    NumericSummary,
    QuantileSketch,
    binary_labels,
    missing_mask,
)

__all__ = [
    "EMBEDDINGS",
    "OTHER",
    "CalibrationSketch",
    "CategoricalSummary",
    "EmbeddingSummary",
    "NumericSummary",
    "Profile",
    "QuantileSketch",
    "RFFMap",
    "binary_labels",
    "bridge_sf",
    "compare_embeddings",
    "compare_profiles",
    "infer_type",
    "missing_mask",
    "profile",
    "summarise_column",
]
