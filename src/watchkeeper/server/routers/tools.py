"""Stateless calculators over HTTP: the flag band of an operating point, and drift between two
small tables. Thin wrappers of ``watchkeeper.estimation`` and ``watchkeeper.stats``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.server.deps import ReadProject
from watchkeeper.server.routers.models import MAX_VOLUME, _jsonable

router = APIRouter(prefix="/v1/tools", tags=["tools"])

Rate = Annotated[float, Field(ge=0, le=1)]
Count = Annotated[int, Field(ge=0, le=int(MAX_VOLUME))]
MAX_COLUMNS = 1000
MAX_ROWS = 1_000_000
"""Bounds of a drift request (its body is capped too: ``max_tool_body_bytes``)."""


def _body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its body itself (off the event loop)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }


class HistoryIn(BaseModel):
    """Past windows' flag counts and volumes, to learn the over-dispersion from."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    flags: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=3, max_length=10_000)]
    volumes: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=3, max_length=10_000)]


class ExpectIn(BaseModel):
    """An operating point, the expected prevalence and volume, and optionally an observed count."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    tpr: Rate
    fpr: Rate
    prevalence: Rate
    volume: Count
    observed: Count | None = None
    threshold: float | None = None
    n_positive: Annotated[int, Field(ge=1, le=int(MAX_VOLUME))] | None = None
    n_negative: Annotated[int, Field(ge=1, le=int(MAX_VOLUME))] | None = None
    coverage: Annotated[float, Field(gt=0, lt=1)] = 0.95
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    mix: Literal["random", "fixed"] = "random"
    dispersion: Annotated[float, Field(ge=0, lt=1)] | None = None
    history: HistoryIn | None = None


def _expect(body: bytes) -> dict[str, Any]:
    from watchkeeper.estimation import OperatingPoint, check_flags, expect_flags, fit_dispersion

    args = ExpectIn.model_validate_json(body)
    op = OperatingPoint(args.threshold, args.tpr, args.fpr, args.n_positive, args.n_negative)
    learnt = None
    try:
        if args.history is not None:
            if args.dispersion is not None:
                raise ValueError("dispersion: give dispersion or history, not both")
            if len(args.history.flags) != len(args.history.volumes):
                raise ValueError("history.volumes: one volume per flag count expected")
            learnt = fit_dispersion(args.history.flags, args.history.volumes)
        rho = learnt if learnt is not None else args.dispersion
        if args.observed is None:
            result: Any = expect_flags(
                op, args.prevalence, args.volume, coverage=args.coverage, mix=args.mix,
                dispersion=rho,
            )  # fmt: skip
        else:
            result = check_flags(
                op, args.prevalence, args.volume, args.observed,
                alpha=args.alpha, coverage=args.coverage, mix=args.mix, dispersion=rho,
            )  # fmt: skip
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    out: dict[str, Any] = _jsonable(result.to_dict())
    if learnt is not None:
        out["history"] = _jsonable(learnt.to_dict())
    return out


@router.post("/expect", openapi_extra=_body(ExpectIn))
async def expect(request: Request, project: ReadProject) -> dict[str, Any]:
    """Expected flags per window and their band; with ``observed``, the p-value, the verdict
    (``as_expected``, ``prior_shift``, ``model_change``) and the implied prevalence.

    The body is parsed and the band computed in the thread pool; its cost does not grow with
    ``volume`` (an approximation past 200,000 likely values, see docs/estimation.md).
    """
    out: dict[str, Any] = await run_in_threadpool(_expect, await request.body())
    return out


Column = Annotated[list[float | str | None], Field(max_length=MAX_ROWS)]
ColumnName = Annotated[str, Field(min_length=1, max_length=256)]


class DriftIn(BaseModel):
    """Two small tables as columns (same names on both sides) and the test options."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    reference: Annotated[dict[ColumnName, Column], Field(min_length=1, max_length=MAX_COLUMNS)]
    current: Annotated[dict[ColumnName, Column], Field(min_length=1, max_length=MAX_COLUMNS)]
    methods: (
        Annotated[
            dict[ColumnName, Annotated[str, Field(max_length=64)]], Field(max_length=MAX_COLUMNS)
        ]
        | None
    ) = None
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


def _drift(body: bytes) -> dict[str, Any]:
    from watchkeeper.stats import detect_drift

    args = DriftIn.model_validate_json(body)
    missing = sorted(set(args.reference) ^ set(args.current))
    if missing:
        raise HTTPException(422, detail=f"current: columns differ from reference: {missing}")
    for side, table in (("reference", args.reference), ("current", args.current)):
        for name, values in table.items():
            if all(v is None for v in values):  # no rows, or every value null: no data
                raise HTTPException(422, detail=f"{side}.{name}: no values (empty or all null)")
    reference = {k: _column(v) for k, v in args.reference.items()}
    current = {k: _column(v) for k, v in args.current.items()}
    options: dict[str, Any] = {
        "alpha": args.alpha,
        "correction": args.correction,
        "dataset_rule": args.dataset_rule,
        "drift_share": args.drift_share,
        "n_jobs": 1,
    }
    if args.methods:
        options["methods"] = args.methods
    try:
        result = detect_drift(reference, current, **options)
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    out: dict[str, Any] = _jsonable(result.to_dict())
    return out


@router.post("/drift", openapi_extra=_body(DriftIn))
async def drift(request: Request, project: ReadProject) -> dict[str, Any]:
    """Per-column drift tests and the dataset verdict (``watchkeeper.stats.detect_drift``).

    At most 1,000 columns; the body is parsed and the tests run in the thread pool.
    """
    out: dict[str, Any] = await run_in_threadpool(_drift, await request.body())
    return out
