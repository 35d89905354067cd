"""Closing the loop: maintenance plan, validation gate, shadow test, datasets, jobs, promotion.

:func:`loop_step` drives one model's loop (triggers, job, gate, shadow, promotion, watch);
:func:`evaluate_gate` compares a challenger with the champion on the same labelled evaluation
sets with paired tests (:func:`mcnemar`, :func:`delong`, :func:`fpr_at_tpr`) and applies the
plan's rules. :func:`fit_awe` and :func:`register_awe` build an accuracy-weighted ensemble
of recent versions (``retraining.strategy: awe``). docs/loop.md tells the whole cycle.
"""

from __future__ import annotations

from watchkeeper.loop._cycle import (
    LoopDriver,
    approve,
    gate_job,
    gate_report,
    loop_status,
    loop_step,
    promote_version,
    shadow_report_of,
    shadow_step,
)
from watchkeeper.loop._dataset import (
    DATASET_DEFAULTS,
    DatasetManifest,
    build_dataset,
    dataset_config,
)
from watchkeeper.loop._ensemble import (
    STRATEGIES,
    WeightedEnsemble,
    awe_weights,
    ensemble_config,
    fit_awe,
    load_ensemble,
    register_awe,
)
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
from watchkeeper.loop._plan import (
    RETRAINING_DEFAULTS,
    Cron,
    MaintenancePlan,
    retraining_config,
    trainer_config,
)
from watchkeeper.loop._sequential import (
    SequentialPairedTest,
    SequentialState,
    fixed_horizon_discordant,
)
from watchkeeper.loop._shadow import ShadowReport, shadow_report

__all__ = [
    "DATASET_DEFAULTS",
    "RETRAINING_DEFAULTS",
    "STRATEGIES",
    "Cron",
    "DatasetManifest",
    "EvalSet",
    "GateReport",
    "LoopDriver",
    "MaintenancePlan",
    "PairedTest",
    "RuleOutcome",
    "SequentialPairedTest",
    "SequentialState",
    "ShadowReport",
    "WeightedEnsemble",
    "approve",
    "awe_weights",
    "build_dataset",
    "dataset_config",
    "delong",
    "ensemble_config",
    "evaluate_gate",
    "fit_awe",
    "fixed_horizon_discordant",
    "fpr_at_tpr",
    "gate_config",
    "gate_job",
    "gate_report",
    "load_ensemble",
    "loop_status",
    "loop_step",
    "mcnemar",
    "promote_version",
    "register_awe",
    "retraining_config",
    "roc_auc",
    "shadow_report",
    "shadow_report_of",
    "shadow_step",
    "threshold_at_tpr",
    "trainer_config",
]
