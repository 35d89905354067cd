"""Is the model still working without labels? Operating-point expectations, prior shift,
and label-free performance.

Works on plain numpy arrays; scipy (and scikit-learn, for calibration) load when first used.
"""

from __future__ import annotations

from watchkeeper.estimation._calibration import Calibrator
from watchkeeper.estimation._multiclass import (
    ClassCountExpectation,
    ClassMixEstimate,
    bbse,
    class_mix_test,
    expect_class_counts,
)
from watchkeeper.estimation._operating import (
    Dispersion,
    FlagCheck,
    FlagExpectation,
    OperatingPoint,
    PrevalenceEstimate,
    check_flags,
    expect_flags,
    fit_dispersion,
    implied_prevalence,
)
from watchkeeper.estimation._performance import (
    ATCEstimator,
    MetricValue,
    MulticlassPerformanceEstimator,
    PerformanceComparison,
    PerformanceEstimate,
    PerformanceEstimator,
    compare_performance,
    realised_performance,
)
from watchkeeper.estimation._prior import (
    ClassShiftDiagnosis,
    ShiftDiagnosis,
    adjust_posteriors,
    diagnose_shift,
    diagnose_shift_multiclass,
    em_prior,
    mixture_prior,
)

__all__ = [
    "ATCEstimator",
    "Calibrator",
    "ClassCountExpectation",
    "ClassMixEstimate",
    "ClassShiftDiagnosis",
    "Dispersion",
    "FlagCheck",
    "FlagExpectation",
    "MetricValue",
    "MulticlassPerformanceEstimator",
    "OperatingPoint",
    "PerformanceComparison",
    "PerformanceEstimate",
    "PerformanceEstimator",
    "PrevalenceEstimate",
    "ShiftDiagnosis",
    "adjust_posteriors",
    "bbse",
    "check_flags",
    "class_mix_test",
    "compare_performance",
    "diagnose_shift",
    "diagnose_shift_multiclass",
    "em_prior",
    "expect_class_counts",
    "expect_flags",
    "fit_dispersion",
    "implied_prevalence",
    "mixture_prior",
    "realised_performance",
]
