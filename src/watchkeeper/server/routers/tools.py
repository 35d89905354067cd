"""Stateless calculators over HTTP: the flag band of an operating point, and drift between two
small tables. Thin wrappers of ``watchkeeper.estimation`` and ``watchkeeper.stats``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.server.deps import ReadProject
from watchkeeper.server.routers.models import _jsonable

router = APIRouter(prefix="/v1/tools", tags=["tools"])

Rate = Annotated[float, Field(ge=0, le=1)]


class ExpectIn(BaseModel):
    """An operating point, the expected prevalence and volume, and optionally an observed count."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    tpr: Rate
    fpr: Rate
    prevalence: Rate
    volume: Annotated[int, Field(ge=0)]
    observed: Annotated[int, Field(ge=0)] | None = None
    threshold: float | None = None
    n_positive: Annotated[int, Field(ge=1)] | None = None
    n_negative: Annotated[int, Field(ge=1)] | None = None
    coverage: Annotated[float, Field(gt=0, lt=1)] = 0.95
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05


@router.post("/expect")
async def expect(body: ExpectIn, project: ReadProject) -> dict[str, Any]:
    """Expected flags per window and their band; with ``observed``, the p-value, the verdict
    (``as_expected``, ``prior_shift``, ``model_change``) and the implied prevalence."""
    from watchkeeper.estimation import OperatingPoint, check_flags, expect_flags

    op = OperatingPoint(body.threshold, body.tpr, body.fpr, body.n_positive, body.n_negative)
    try:
        if body.observed is None:
            result: Any = expect_flags(op, body.prevalence, body.volume, coverage=body.coverage)
        else:
            result = check_flags(
                op, body.prevalence, body.volume, body.observed,
                alpha=body.alpha, coverage=body.coverage,
            )  # fmt: skip
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    out: dict[str, Any] = _jsonable(result.to_dict())
    return out


Column = list[float | str | None]


class DriftIn(BaseModel):
    """Two small tables as columns (same names on both sides) and the test options."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    reference: Annotated[dict[str, Column], Field(min_length=1)]
    current: Annotated[dict[str, Column], Field(min_length=1)]
    methods: dict[str, str] | None = None
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    correction: Literal["holm", "bonferroni", "bh", "none"] = "holm"
    dataset_rule: Literal["any", "share"] = "any"
    drift_share: Annotated[float, Field(gt=0, le=1)] = 0.5


def _column(values: Column) -> np.ndarray:
    if all(v is None or isinstance(v, int | float) for v in values):
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    out = np.empty(len(values), dtype=object)
    out[:] = [None if v is None else str(v) for v in values]
    return out


@router.post("/drift")
async def drift(body: DriftIn, project: ReadProject) -> dict[str, Any]:
    """Per-column drift tests and the dataset verdict (``watchkeeper.stats.detect_drift``)."""
    from watchkeeper.stats import detect_drift

    missing = sorted(set(body.reference) ^ set(body.current))
    if missing:
        raise HTTPException(422, detail=f"current: columns differ from reference: {missing}")
    for side, table in (("reference", body.reference), ("current", body.current)):
        for name, values in table.items():
            if all(v is None for v in values):  # no rows, or every value null: no data
                raise HTTPException(422, detail=f"{side}.{name}: no values (empty or all null)")
    reference = {k: _column(v) for k, v in body.reference.items()}
    current = {k: _column(v) for k, v in body.current.items()}
    options: dict[str, Any] = {
        "alpha": body.alpha,
        "correction": body.correction,
        "dataset_rule": body.dataset_rule,
        "drift_share": body.drift_share,
        "n_jobs": 1,
    }
    if body.methods:
        options["methods"] = body.methods
    try:
        result = await run_in_threadpool(detect_drift, reference, current, **options)
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    out: dict[str, Any] = _jsonable(result.to_dict())
    return out
