"""Small helpers every part of the store shares: the clock, validation of numbers and JSON
fields at the boundary, and the fast row fetch of the read path."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import sqlalchemy as sa

from watchkeeper.store._codec import clean_floats


def timestamp() -> float:
    """Seconds since the epoch, the time every stored row carries."""
    return time.time()


def opt_float(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{what}: expected a number or None, got {value!r}")
    out = float(value)
    return None if math.isnan(out) else out


def finite(value: Any, what: str) -> float | None:
    out = opt_float(value, what)
    if out is not None and not math.isfinite(out):
        raise ValueError(f"{what}: expected a finite number, got {value!r}")
    return out


def opt_dict(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{what}: expected a dict or None, got {type(value).__name__}")
    try:
        return json.dumps(clean_floats(dict(value)), default=jsonable, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: not JSON serialisable ({exc})") from None


def jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return clean_floats(value.tolist())
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


def fetch_rows(conn: sa.Connection, query: sa.Select[Any]) -> list[Any]:
    """All rows of a query as the driver's own tuples (the hot read path).

    Skips SQLAlchemy's row objects, and on PostgreSQL asks for binary results so ``bytea``
    arrives as raw bytes rather than hex text twice its size.
    """
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    dbapi: Any = conn.connection.driver_connection
    cursor = dbapi.cursor()
    try:
        if conn.dialect.name == "postgresql":
            cursor.execute(str(compiled), compiled.params, binary=True)
        else:
            positions = compiled.positiontup or []
            cursor.execute(str(compiled), [compiled.params[k] for k in positions])
        return list(cursor.fetchall())
    finally:
        cursor.close()
