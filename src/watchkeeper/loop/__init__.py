"""Closing the loop: maintenance plan, validation gate, shadow test, datasets, jobs, promotion.

:func:`evaluate_gate` compares a challenger with the champion on the same labelled evaluation
sets with paired tests (:func:`mcnemar`, :func:`delong`, :func:`fpr_at_tpr`) and applies the
plan's rules. docs/loop.md tells the whole cycle.
"""

from __future__ import annotations

from watchkeeper.loop._gate import (
    EvalSet,
    GateReport,
    RuleOutcome,
    evaluate_gate,
    gate_config,
)
from watchkeeper.loop._paired import (
    PairedTest,
    delong,
    fpr_at_tpr,
    mcnemar,
    roc_auc,
    threshold_at_tpr,
)
from watchkeeper.loop._sequential import (
    SequentialPairedTest,
    SequentialState,
    fixed_horizon_discordant,
)
from watchkeeper.loop._shadow import ShadowReport, shadow_report

__all__ = [
    "EvalSet",
    "GateReport",
    "PairedTest",
    "RuleOutcome",
    "SequentialPairedTest",
    "SequentialState",
    "ShadowReport",
    "delong",
    "evaluate_gate",
    "fixed_horizon_discordant",
    "fpr_at_tpr",
    "gate_config",
    "mcnemar",
    "roc_auc",
    "shadow_report",
    "threshold_at_tpr",
]
