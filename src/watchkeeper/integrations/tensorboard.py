"""Monitor metrics as TensorBoard scalars, for teams that already look there.

:class:`TensorBoardWriter` turns Watchkeeper's results into scalar time series, one step per
window (a day, an hour):

- the flag check: ``flags/observed`` with ``flags/expected``, ``flags/low`` and ``flags/high``
  (the band), ``flags/p_value`` and the implied ``flags/prevalence``;
- drift findings: ``drift/<check>/<subject>/statistic``, ``.../p_value`` and ``.../drift``
  (1 when it drifted);
- performance: ``performance/estimated/<metric>`` and ``performance/realised/<metric>`` with
  their ``_low`` and ``_high`` bounds, so the two can be overlaid.

It writes with TensorBoard's own event writer (``tensorboard.summary.Writer``), so PyTorch is
not needed; ``tensorboard`` is imported on the first write (``pip install
'watchkeeper[tensorboard]'``). Open the result with ``tensorboard --logdir <log_dir>``.

Examples
--------
>>> import tempfile
>>> with TensorBoardWriter(tempfile.mkdtemp()) as tb:
...     n_flag = tb.add_flag_check({"observed": 160, "expected": 108.0, "low": 98, "high": 119,
...                        "p_value": 1e-9, "verdict": "prior_shift"}, step=3)
...     n_drift = tb.add_findings([{"check": "feature_drift", "subject": "colourfulness",
...                       "statistic": 0.41, "p_value": 1e-12, "drift": True}], step=3)
>>> n_flag, n_drift
(5, 3)
>>> sorted(tb.written)[:3]
['drift/feature_drift/colourfulness/drift', 'drift/feature_drift/colourfulness/p_value', \
'drift/feature_drift/colourfulness/statistic']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["TensorBoardWriter"]


def _as_dict(obj: Any) -> Mapping[str, Any]:
    if isinstance(obj, Mapping):
        return obj
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        result = to_dict()
        if isinstance(result, Mapping):
            return result
    raise TypeError(f"expected a mapping or an object with to_dict(), got {type(obj).__name__}")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value) if math.isfinite(float(value)) else None
    if hasattr(value, "item"):
        return _number(value.item())
    return None


def _clean(part: Any) -> str:
    return str(part).replace(" ", "_").strip("/") or "_"


class TensorBoardWriter:
    """Write monitor metrics to a TensorBoard log directory.

    Parameters
    ----------
    log_dir
        Directory of the event files (created on the first write).
    prefix
        Optional first part of every tag, e.g. the model's name when several share a directory.
    """

    def __init__(self, log_dir: str | Path, *, prefix: str = "") -> None:
        self.log_dir = log_dir
        self.prefix = prefix
        self.written: set[str] = set()
        self._writer: Any = None

    def _get_writer(self) -> Any:
        if self._writer is None:
            try:
                from tensorboard.summary import Writer
            except ImportError as exc:
                raise ImportError(
                    "TensorBoard output needs tensorboard: pip install 'watchkeeper[tensorboard]'"
                ) from exc
            path = Path(self.log_dir)
            path.mkdir(parents=True, exist_ok=True)
            self._writer = Writer(str(path))
        return self._writer

    def add_scalar(
        self, tag: str, value: Any, step: int, *, wall_time: float | None = None
    ) -> bool:
        """Write one scalar; returns False (and writes nothing) when it is not a finite number."""
        number = _number(value)
        if number is None:
            return False
        if step < 0:
            raise ValueError(f"step: must be non-negative, got {step}")
        full = f"{_clean(self.prefix)}/{tag}" if self.prefix else tag
        self._get_writer().add_scalar(full, number, int(step), wall_time=wall_time)
        self.written.add(full)
        return True

    def add_scalars(
        self, values: Mapping[str, Any], step: int, *, wall_time: float | None = None
    ) -> int:
        """Write every finite number of ``values`` under its key; returns how many were written."""
        return sum(self.add_scalar(k, v, step, wall_time=wall_time) for k, v in values.items())

    def add_flag_check(self, check: Any, step: int, *, wall_time: float | None = None) -> int:
        """The flag count and its band, from a ``FlagCheck`` (or its ``to_dict()``)."""
        d = _as_dict(check)
        keys = ("observed", "expected", "low", "high", "sigma", "p_value", "prevalence",
                "prevalence_low", "prevalence_high")
        return self.add_scalars({f"flags/{k}": d.get(k) for k in keys}, step, wall_time=wall_time)

    def add_findings(
        self, findings: Iterable[Any], step: int, *, wall_time: float | None = None
    ) -> int:
        """Drift statistics, p-values and verdicts of findings (dicts or ``Finding`` objects)."""
        count = 0
        for item in findings:
            f = _as_dict(item)
            base = f"drift/{_clean(f.get('check', 'check'))}/{_clean(f.get('subject', 'all'))}"
            count += self.add_scalars(
                {f"{base}/statistic": f.get("statistic"), f"{base}/p_value": f.get("p_value"),
                 f"{base}/drift": f.get("drift")},
                step,
                wall_time=wall_time,
            )
        return count

    def add_performance(
        self, estimate: Any, step: int, *, kind: str = "estimated",
        wall_time: float | None = None,
    ) -> int:
        """Performance metrics with their intervals: ``kind`` is ``estimated`` or ``realised``.

        Accepts a ``PerformanceEstimate`` or a mapping of metric to either a number or a mapping
        with ``value``, ``low`` and ``high``.
        """
        if kind not in ("estimated", "realised"):
            raise ValueError(f"kind: {kind!r} is not 'estimated' or 'realised'")
        d = _as_dict(estimate)
        metrics = d.get("metrics", d)
        values: dict[str, Any] = {}
        for name, entry in metrics.items():
            if isinstance(entry, Mapping):
                values[f"performance/{kind}/{name}"] = entry.get("value")
                values[f"performance/{kind}/{name}_low"] = entry.get("low")
                values[f"performance/{kind}/{name}_high"] = entry.get("high")
            else:
                values[f"performance/{kind}/{name}"] = entry
        return self.add_scalars(values, step, wall_time=wall_time)

    def flush(self) -> None:
        """Flush buffered events to disk."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file (a later write opens a new one)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> TensorBoardWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_scalars(log_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in ``log_dir`` as ``{tag: [(step, value), ...]}`` (for tests and checks).

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with TensorBoardWriter(d) as tb:
    ...     _ = tb.add_scalars({"flags/observed": 110, "flags/expected": 108.5}, step=1)
    >>> read_scalars(d)["flags/observed"]
    [(1, 110.0)]
    """
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    acc.Reload()
    out: dict[str, list[tuple[int, float]]] = {}
    for tag in acc.Tags().get("tensors", []):
        out[tag] = [
            (int(e.step), float(e.tensor_proto.float_val[0]) if e.tensor_proto.float_val
             else float(_tensor_value(e.tensor_proto)))
            for e in acc.Tensors(tag)
        ]
    for tag in acc.Tags().get("scalars", []):
        out[tag] = [(int(e.step), float(e.value)) for e in acc.Scalars(tag)]
    return out


def _tensor_value(proto: Any) -> float:
    from tensorboard.util import tensor_util

    return float(tensor_util.make_ndarray(proto).item())
