"""Is the model still working without labels? Operating-point expectations, prior shift,
and label-free performance.

Works on plain numpy arrays; scipy (and scikit-learn, for calibration) load when first used.
"""

from __future__ import annotations

from watchkeeper.estimation._operating import (
    FlagCheck,
    FlagExpectation,
    OperatingPoint,
    PrevalenceEstimate,
    check_flags,
    expect_flags,
    implied_prevalence,
)

__all__ = [
    "FlagCheck",
    "FlagExpectation",
    "OperatingPoint",
    "PrevalenceEstimate",
    "check_flags",
    "expect_flags",
    "implied_prevalence",
]
