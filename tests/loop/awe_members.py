"""Members for the AWE tests: a one-feature logistic model whose artifact is its slope."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def save(path: Path, slope: float, offset: float = 0.0) -> Path:
    path.write_text(json.dumps({"slope": slope, "offset": offset}))
    return path


def score(artifact: str, frame: Any) -> np.ndarray:
    """The scorer a plan names: ``score(artifact_path, frame) -> P(positive)``."""
    p = json.loads(Path(artifact).read_text())
    x = frame["feature.x"].to_numpy(np.float64)
    out: np.ndarray = 1.0 / (1.0 + np.exp(-(p["slope"] * x + p["offset"])))
    return out
