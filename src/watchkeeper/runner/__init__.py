"""The runner: evaluate monitors on closed windows, store findings and metrics, alert.

``run_monitors(store, project, model)`` runs one model now; :class:`Scheduler` runs every model
on a tick (the server starts one); :class:`MonitorCollector` exposes the latest figures and
firing alerts to Prometheus; :func:`explain` says which features and segments account for a
stored finding.
"""

from __future__ import annotations

from watchkeeper.runner._collector import MonitorCollector
from watchkeeper.runner._explain import explain
from watchkeeper.runner._reference import (
    RegisteredReference,
    reference_window,
    register_reference,
)
from watchkeeper.runner._run import (
    ModelContext,
    RunResult,
    load_context,
    run_checks,
    run_monitors,
    window_metrics,
)
from watchkeeper.runner._scheduler import Scheduler

__all__ = [
    "ModelContext",
    "MonitorCollector",
    "RegisteredReference",
    "RunResult",
    "Scheduler",
    "explain",
    "load_context",
    "reference_window",
    "register_reference",
    "run_checks",
    "run_monitors",
    "window_metrics",
]
