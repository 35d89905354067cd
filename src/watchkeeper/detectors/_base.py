"""The one contract every streaming detector follows.

A detector watches one signal, one value at a time. ``update(x)`` returns the detector;
``drift_detected`` (and ``warning_detected`` where the method has a warning zone) say what the
last value did; ``update_many(values)`` consumes a whole array and returns the positions, in that
array, at which drift was signalled. What a detector accepts is said by the class it inherits:
:class:`RealDetector` takes real values, :class:`BinaryDetector` takes 0/1 errors.

The state is a small dict of numbers and arrays, so ``to_dict()`` is plain JSON and
``from_dict`` restores a detector that continues mid-stream exactly as one that never stopped.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
State = dict[str, Any]

SCHEMA_VERSION = 1
_MAX_BLOCK = 1 << 14


class Detector(abc.ABC):
    """Base class of every streaming change detector.

    Subclasses store their constructor arguments unchanged in ``__init__``; the arguments are
    validated when the first value arrives (or in ``from_dict``), with an error that names the
    parameter. Bad values (NaN, infinities, a non-0/1 value to a binary detector) raise
    ``ValueError`` and leave the detector unchanged: ``update_many`` checks the whole array
    before consuming any of it.

    After a detection, a detector built with ``reset_after_drift=True`` starts afresh with the
    next value (as River does); with ``False`` it carries on from its current state, which for
    ADWIN and KSWIN means the window already shrunk by the detection (as in their papers).
    """

    method: ClassVar[str]
    """Name used in ``to_dict()["method"]``."""
    binary: ClassVar[bool] = False
    """Whether the detector takes 0/1 errors rather than real values."""
    has_warning: ClassVar[bool] = False
    """Whether the method has a warning zone."""
    params: ClassVar[tuple[str, ...]]
    """Names of the constructor arguments, in order."""
    false_alarms_per_100k: ClassVar[float]
    """Stated bound on the expected false alarms per 100,000 values of an unchanging stream
    with the default parameters (see each class; verified by a simulation test)."""

    reset_after_drift: bool

    def __init__(self) -> None:
        self._state: State | None = None
        self._drift = False
        self._warning = False
        self._validated = False

    # -- the contract -------------------------------------------------------------------------

    @property
    def drift_detected(self) -> bool:
        """Whether the last value signalled a change."""
        return self._drift

    def update(self, x: float) -> Self:
        """Consume one value.

        Parameters
        ----------
        x
            The next value of the stream (0 or 1 for a binary detector).

        Returns
        -------
        Detector
            The detector itself, so calls can be chained.
        """
        try:
            value = float(x)
        except (TypeError, ValueError):
            raise ValueError(f"x must be a number; got {x!r}") from None
        if not math.isfinite(value) or (self.binary and value != 0.0 and value != 1.0):
            # The array check words the error (finite / 0 or 1) the same way for both paths.
            self._check_values(np.asarray([value], dtype=np.float64), name="x")
        if not self._validated or self._state is None:
            self._start()
        self._update_one(value)
        return self

    def update_many(self, values: npt.ArrayLike) -> IntArray:
        """Consume an array of values in order, as repeated :meth:`update` calls would.

        Parameters
        ----------
        values
            One-dimensional array of the next values.

        Returns
        -------
        numpy.ndarray
            Positions in ``values`` (0-based, int64) at which drift was signalled.
        """
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("values must be an array of numbers") from None
        if arr.ndim != 1:
            raise ValueError(f"values must be one-dimensional; got shape {arr.shape}")
        arr = self._check_values(np.ascontiguousarray(arr), name="values")
        self._start()
        if arr.size == 0:
            return np.empty(0, dtype=np.int64)
        return self._update_block(arr)

    def reset(self) -> Self:
        """Forget everything seen so far; the parameters stay."""
        self._state = None
        self._drift = False
        self._warning = False
        return self

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, as given."""
        return {name: getattr(self, name) for name in self.params}

    def to_dict(self) -> dict[str, Any]:
        """Parameters and state as plain JSON (no NaN or infinity literals).

        Examples
        --------
        >>> import json
        >>> from watchkeeper.detectors import PageHinkley, from_dict
        >>> ph = PageHinkley().update(0.5)
        >>> clone = from_dict(json.loads(json.dumps(ph.to_dict(), allow_nan=False)))
        >>> clone.to_dict() == ph.to_dict()
        True
        """
        state = None
        if self._state is not None:
            state = {k: _encode(v) for k, v in self._state_for_json(self._state).items()}
        return {
            "method": self.method,
            "version": SCHEMA_VERSION,
            "params": {k: _encode(v) for k, v in self.get_params().items()},
            "state": state,
            "drift_detected": self._drift,
            "warning_detected": self._warning,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- what subclasses provide --------------------------------------------------------------

    @abc.abstractmethod
    def _validate(self) -> None:
        """Check the parameters; raise ``ValueError`` naming the offending one."""

    @abc.abstractmethod
    def _fresh_state(self) -> State:
        """The state before any value."""

    @abc.abstractmethod
    def _update_one(self, x: float) -> None:
        """Consume one checked value (state exists)."""

    @abc.abstractmethod
    def _update_block(self, values: FloatArray) -> IntArray:
        """Consume a checked, non-empty array (state exists); return detection positions."""

    def _state_for_json(self, state: State) -> State:
        """The state as saved; a subclass may trim unused capacity (and restore it on load)."""
        return state

    def _state_from_json(self, state: Mapping[str, Any]) -> State:
        """Turn decoded JSON back into the state's types (arrays where the state has arrays)."""
        fresh = self._fresh_state()
        out: State = {}
        for key, ref in fresh.items():
            if key not in state:
                raise ValueError(f"state is missing {key!r} for {self.method}")
            value = _decode(state[key])
            if isinstance(ref, np.ndarray):
                out[key] = np.asarray(value, dtype=ref.dtype).reshape((-1, *ref.shape[1:]))
            elif isinstance(ref, bool):
                out[key] = bool(value)
            elif isinstance(ref, int):
                out[key] = int(value)
            else:
                out[key] = float(value)
        return out

    # -- shared machinery ---------------------------------------------------------------------

    def _start(self) -> None:
        if not self._validated:
            self._validate()
            _check_bool(self.reset_after_drift, "reset_after_drift")
            self._validated = True
        if self._state is None:
            self._state = self._fresh_state()

    def _check_values(self, arr: FloatArray, *, name: str) -> FloatArray:
        finite = np.isfinite(arr)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            raise ValueError(
                f"{name} must be finite; got {arr[bad]!r} at position {bad} "
                f"({type(self).__name__} keeps its state unchanged)"
            )
        if self.binary:
            ok = (arr == 0.0) | (arr == 1.0)
            if not ok.all():
                bad = int(np.flatnonzero(~ok)[0])
                raise ValueError(
                    f"{name} must be 0 or 1 for {type(self).__name__} (an error indicator); "
                    f"got {arr[bad]!r} at position {bad}"
                )
        return arr

    def _run_blocks(
        self,
        values: FloatArray,
        block: Callable[[State, FloatArray], tuple[IntArray, State, bool]],
    ) -> IntArray:
        """Drive a vectorised ``block`` function, honouring reset-after-drift.

        ``block(state, values)`` returns the positions where drift would be signalled if the
        state were never reset, the state after the last value, and the warning flag after the
        last value. With ``reset_after_drift`` the detector restarts after the first detection,
        so blocks grow geometrically and are cut at each detection: the work wasted per
        detection is bounded by the current block length. Blocks stay at most 16,384 values so
        the dozen temporary arrays of a block stay in cache (larger blocks are memory-bound).
        """
        assert self._state is not None
        found: list[IntArray] = []
        start, size, n = 0, 4096, values.shape[0]
        while start < n:
            if self._drift and self.reset_after_drift:
                self._state = self._fresh_state()
                self._drift = self._warning = False
            stop = min(n, start + size)
            det, state, warning = block(self._state, values[start:stop])
            if self.reset_after_drift and det.size and det[0] < stop - start - 1:
                # Re-run up to the detection only, so the state there is exact.
                first = int(det[0])
                _, state, warning = block(self._state, values[start : start + first + 1])
                found.append(np.asarray([start + first], dtype=np.int64))
                self._state, self._warning, self._drift = state, warning, True
                start += first + 1
                size = 4096
                continue
            self._state, self._warning = state, warning
            self._drift = bool(det.size) and int(det[-1]) == stop - start - 1
            if det.size:
                found.append(det + start)
            start = stop
            size = min(size * 2, _MAX_BLOCK)
        return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


class RealDetector(Detector):
    """A detector of changes in a stream of real values."""

    binary: ClassVar[bool] = False


class BinaryDetector(Detector):
    """A detector of changes in a stream of 0/1 errors (1 = error, 0 = correct)."""

    binary: ClassVar[bool] = True


class WarningMixin:
    """Adds ``warning_detected`` to detectors whose method has a warning zone."""

    has_warning: ClassVar[bool] = True
    _warning: bool

    @property
    def warning_detected(self) -> bool:
        """Whether the last value put the detector in its warning zone."""
        return self._warning


# -- parameter checks: each names the parameter ------------------------------------------------


def _check_bool(value: Any, name: str) -> None:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False; got {value!r}")


def check_int(value: Any, name: str, *, low: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")


def check_float(
    value: Any,
    name: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number in the stated interval."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v)
        ok = ok and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name} must be a finite number in {lo}{low}, {high}{hi}; got {value!r}")


# -- JSON encoding: non-finite floats become strings so the output is strict JSON ---------------


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_encode(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if value in ("inf", "-inf", "nan"):
        return float(value)
    return value
