"""The serving environment the SDK reports with each batch: Python and key package versions.

>>> env = serving_environment()
>>> sorted(env)
['packages', 'platform', 'python']
>>> "numpy" in env["packages"]
True
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

KEY_PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "polars",
    "pyarrow",
    "scikit-learn",
    "torch",
    "torchvision",
    "tensorflow",
    "keras",
    "jax",
    "xgboost",
    "lightgbm",
    "catboost",
    "onnxruntime",
    "transformers",
    "sentence-transformers",
    "watchkeeper",
)
"""Distributions whose versions change a model's behaviour; absent ones are left out."""


def serving_environment(packages: tuple[str, ...] = KEY_PACKAGES) -> dict[str, Any]:
    """Python version, platform, and the installed versions of ``packages``."""
    versions: dict[str, str] = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": ".".join(str(v) for v in sys.version_info[:3]),
        "platform": platform.platform(terse=True),
        "packages": versions,
    }
