"""One conformance suite over every detector: the contract, state, reset, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest

from watchkeeper.detectors import (
    ADWIN,
    BOCPD,
    CUSUM,
    DDM,
    DETECTORS,
    EDDM,
    HDDM_A,
    HDDM_W,
    KSWIN,
    BernoulliRate,
    BinaryDetector,
    Detector,
    PageHinkley,
    RealDetector,
    SeasonalCUSUM,
    from_dict,
)

# Parameters sensitive enough that a stream of a few thousand values has several detections.
FACTORIES: dict[str, Callable[[], Detector]] = {
    "ADWIN": lambda: ADWIN(delta=0.01),
    "ADWIN-keep": lambda: ADWIN(delta=0.01, reset_after_drift=False),
    "PageHinkley": lambda: PageHinkley(delta=0.05, threshold=15.0),
    "PageHinkley-fading": lambda: PageHinkley(delta=0.05, threshold=10.0, alpha=0.99),
    "PageHinkley-keep": lambda: PageHinkley(threshold=15.0, reset_after_drift=False),
    "CUSUM": lambda: CUSUM(h=4.0, warm_start=50),
    "CUSUM-known": lambda: CUSUM(target=0.0, sigma=1.0, h=4.0),
    "CUSUM-keep": lambda: CUSUM(h=5.0, warm_start=50, reset_after_drift=False),
    "KSWIN": lambda: KSWIN(alpha=0.001, seed=3),
    "KSWIN-keep": lambda: KSWIN(alpha=0.001, seed=3, reset_after_drift=False),
    "BOCPD": lambda: BOCPD(hazard=0.01, lag=12, max_run_length=120),
    "BOCPD-keep": lambda: BOCPD(lag=12, max_run_length=120, reset_after_drift=False),
    "BOCPD-known": lambda: BOCPD(mu=0.0, sigma=1.0, max_run_length=60, lag=12, hazard=0.01),
    "SeasonalCUSUM": lambda: SeasonalCUSUM(h=5.0),
    "SeasonalCUSUM-week": lambda: SeasonalCUSUM(period=7, h=5.0),
    "SeasonalCUSUM-keep": lambda: SeasonalCUSUM(h=5.0, reset_after_drift=False),
    "DDM": lambda: DDM(warm_start=30),
    "DDM-keep": lambda: DDM(warm_start=30, reset_after_drift=False),
    "EDDM": lambda: EDDM(warm_start=30, alpha=0.95, beta=0.9),
    "EDDM-keep": lambda: EDDM(warm_start=30, alpha=0.95, beta=0.9, reset_after_drift=False),
    "HDDM_A": lambda: HDDM_A(drift_confidence=0.01, warning_confidence=0.05, two_sided=True),
    "HDDM_A-keep": lambda: HDDM_A(drift_confidence=0.01, reset_after_drift=False),
    "HDDM_W": lambda: HDDM_W(drift_confidence=0.01, warning_confidence=0.05, two_sided=True),
    "HDDM_W-keep": lambda: HDDM_W(drift_confidence=0.01, reset_after_drift=False),
    "BernoulliRate": lambda: BernoulliRate(warm_start=200, threshold=5.0),
    "BernoulliRate-known": lambda: BernoulliRate(p0=0.1, threshold=5.0),
    "BernoulliRate-keep": lambda: BernoulliRate(p0=0.1, threshold=5.0, reset_after_drift=False),
}
NAMES = sorted(FACTORIES)
KNOWN_LEVEL = {"CUSUM-known": 0.0, "BernoulliRate-known": -1.0, "BernoulliRate-keep": -1.0}


def _stream(det: Detector, seed: int = 0, n: int = 4000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = n // 4
    if isinstance(det, BinaryDetector):
        p = np.r_[np.full(k, 0.1), np.full(k, 0.35), np.full(k, 0.05), np.full(n - 3 * k, 0.3)]
        return (rng.random(n) < p).astype(np.float64)
    mean = np.r_[np.zeros(k), np.full(k, 1.5), np.full(k, -0.5), np.full(n - 3 * k, 1.0)]
    return mean + rng.normal(0, 1, n)


def _one_by_one(det: Detector, values: np.ndarray) -> tuple[list[int], list[bool]]:
    found, warnings = [], []
    for i, x in enumerate(values.tolist()):
        det.update(x)
        if det.drift_detected:
            found.append(i)
        warnings.append(getattr(det, "warning_detected", False))
    return found, warnings


def test_every_detector_is_covered() -> None:
    assert {name.split("-")[0] for name in NAMES} == set(DETECTORS)


@pytest.mark.parametrize("name", NAMES)
def test_update_many_equals_repeated_update(name: str) -> None:
    values = _stream(FACTORIES[name]())
    whole = FACTORIES[name]()
    got = whole.update_many(values)
    single = FACTORIES[name]()
    expected, _ = _one_by_one(single, values)
    assert got.dtype == np.int64
    assert got.tolist() == expected
    assert len(expected) >= 2, "the stream should contain detections"
    assert whole.to_dict() == single.to_dict()
    assert whole.drift_detected == single.drift_detected


@pytest.mark.parametrize("name", NAMES)
def test_chunked_update_many_equals_whole(name: str) -> None:
    values = _stream(FACTORIES[name](), seed=1)
    expected = FACTORIES[name]().update_many(values).tolist()
    det = FACTORIES[name]()
    cuts = np.sort(np.random.default_rng(2).choice(values.size, 12, replace=False))
    got: list[int] = []
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, values.size], strict=True):
        got += (det.update_many(values[lo:hi]) + lo).tolist()
    assert got == expected


@pytest.mark.parametrize("name", NAMES)
def test_warnings_agree_between_paths(name: str) -> None:
    det = FACTORIES[name]()
    if not det.has_warning:
        assert not hasattr(det, "warning_detected")
        return
    values = _stream(det, seed=3)
    _, expected = _one_by_one(FACTORIES[name](), values)
    got = []
    det = FACTORIES[name]()
    for lo in range(0, values.size, 7):
        det.update_many(values[lo : lo + 7])
        got.append(det.warning_detected)
    assert got == expected[6::7] + ([] if (values.size - 1) % 7 == 6 else [expected[-1]])
    if not name.endswith("-keep"):
        assert any(expected), "the stream should enter the warning zone"


@pytest.mark.parametrize("name", NAMES)
def test_json_round_trip_mid_stream_continues_identically(name: str) -> None:
    values = _stream(FACTORIES[name](), seed=4)
    reference = FACTORIES[name]()
    expected = reference.update_many(values)
    # Split anywhere, and right after a detection (the pending reset must survive the trip).
    for split in (1, 777, values.size // 2, int(expected[0]) + 1):
        det = FACTORIES[name]()
        first = det.update_many(values[:split])
        text = json.dumps(det.to_dict(), allow_nan=False)
        restored = from_dict(json.loads(text))
        assert type(restored) is type(det)
        assert restored.get_params() == det.get_params()
        rest = restored.update_many(values[split:]) + split
        assert np.r_[first, rest].tolist() == expected.tolist(), split
        assert restored.to_dict() == reference.to_dict()


@pytest.mark.parametrize("name", NAMES)
def test_reset_returns_to_the_initial_state(name: str) -> None:
    det = FACTORIES[name]()
    det.update_many(_stream(det, seed=5))
    det.reset()
    assert not det.drift_detected
    fresh = FACTORIES[name]()
    values = _stream(det, seed=6)
    assert det.update_many(values).tolist() == fresh.update_many(values).tolist()


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name: str) -> None:
    values = _stream(FACTORIES[name](), seed=7)
    a = FACTORIES[name]().update_many(values)
    b = FACTORIES[name]().update_many(values)
    assert a.tolist() == b.tolist()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("level", [0.0, 1.0, 3.25])
def test_no_detection_on_a_constant_stream(name: str, level: float) -> None:
    det = FACTORIES[name]()
    if isinstance(det, BinaryDetector) and level not in (0.0, 1.0):
        return
    if name in KNOWN_LEVEL and level != KNOWN_LEVEL[name]:
        return  # a constant away from a given baseline is a change, rightly signalled
    assert det.update_many(np.full(20_000, level)).size == 0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_raise_and_leave_the_state_alone(name: str, bad: float) -> None:
    det = FACTORIES[name]()
    values = _stream(det, seed=8)
    det.update_many(values[:500])
    before = det.to_dict()
    with pytest.raises(ValueError, match="must be finite"):
        det.update(bad)
    with pytest.raises(ValueError, match="position 3"):
        det.update_many(np.r_[values[:3], bad, values[3:10]])
    assert det.to_dict() == before


@pytest.mark.parametrize("name", NAMES)
def test_binary_detectors_refuse_other_values(name: str) -> None:
    det = FACTORIES[name]()
    if not isinstance(det, BinaryDetector):
        assert isinstance(det, RealDetector)
        return
    det.update_many([0, 1, True, False])
    before = det.to_dict()
    for bad in (0.5, 2, -1):
        with pytest.raises(ValueError, match="must be 0 or 1"):
            det.update(bad)
    assert det.to_dict() == before


@pytest.mark.parametrize("name", NAMES)
def test_contract_surface(name: str) -> None:
    det = FACTORIES[name]()
    assert det.update(0.0) is det
    with pytest.raises(AttributeError):
        det.drift_detected = True  # type: ignore[misc]
    with pytest.raises(ValueError, match="one-dimensional"):
        det.update_many(np.zeros((2, 2)))
    assert det.update_many([]).tolist() == []
    with pytest.raises(ValueError, match="values must be an array of numbers"):
        det.update_many(["a", "b"])
    with pytest.raises(ValueError, match="x must be a number"):
        det.update("a")  # type: ignore[arg-type]
    assert type(det).__name__ in repr(det)
    params = det.get_params()
    assert type(det)(**params).get_params() == params


BAD_PARAMS = [
    (ADWIN, "delta", 0.0),
    (ADWIN, "delta", 1.5),
    (ADWIN, "clock", 0),
    (ADWIN, "max_buckets", 0),
    (ADWIN, "min_window_length", 2.5),
    (ADWIN, "grace_period", -1),
    (PageHinkley, "min_instances", 0),
    (PageHinkley, "delta", -0.1),
    (PageHinkley, "threshold", float("nan")),
    (PageHinkley, "alpha", 0.0),
    (PageHinkley, "alpha", 1.01),
    (PageHinkley, "mode", "sideways"),
    (PageHinkley, "reset_after_drift", "yes"),
    (CUSUM, "sigma", 0.0),
    (CUSUM, "target", float("inf")),
    (CUSUM, "k", -1.0),
    (CUSUM, "h", 0.0),
    (CUSUM, "warm_start", 1),
    (KSWIN, "alpha", 1.0),
    (KSWIN, "stat_size", 0),
    (KSWIN, "window_size", 50),
    (KSWIN, "seed", -3),
    (BOCPD, "hazard", 0.0),
    (BOCPD, "threshold", 1.0),
    (BOCPD, "lag", -1),
    (BOCPD, "max_run_length", 5),
    (BOCPD, "max_run_length", 10**9),
    (BOCPD, "warm_start", 3),
    (BOCPD, "sigma", 0.0),
    (BOCPD, "mu", float("nan")),
    (BOCPD, "prior_strength", 0.0),
    (SeasonalCUSUM, "period", 0),
    (SeasonalCUSUM, "period", 10**9),
    (SeasonalCUSUM, "window", 3),
    (SeasonalCUSUM, "window", 10**9),
    (SeasonalCUSUM, "level_window", 0),
    (SeasonalCUSUM, "trend", "yes"),
    (SeasonalCUSUM, "autocorrelation", 1),
    (SeasonalCUSUM, "h", 0.0),
    (SeasonalCUSUM, "clip", -1.0),
    (SeasonalCUSUM, "warm_start", 10**6),
    (DDM, "warm_start", -1),
    (DDM, "warning_threshold", -1.0),
    (DDM, "drift_threshold", 1.0),
    (EDDM, "alpha", 1.5),
    (EDDM, "beta", 0.99),
    (EDDM, "warm_start", 1.5),
    (HDDM_A, "drift_confidence", 0.0),
    (HDDM_A, "warning_confidence", 1.0),
    (HDDM_A, "two_sided", 1),
    (HDDM_W, "lambda_", 0.0),
    (HDDM_W, "drift_confidence", 2.0),
    (BernoulliRate, "p0", 1.0),
    (BernoulliRate, "ratio", 1.0),
    (BernoulliRate, "threshold", -2.0),
    (BernoulliRate, "warm_start", 0),
]


@pytest.mark.parametrize(("cls", "param", "value"), BAD_PARAMS)
def test_bad_parameters_are_named_when_work_starts(
    cls: type[Detector], param: str, value: object
) -> None:
    det = cls(**{param: value})  # __init__ stores, does not judge
    assert getattr(det, param) is value
    with pytest.raises(ValueError, match=param):
        det.update(0.0)
    with pytest.raises(ValueError, match=param):
        from_dict({"method": cls.method, "params": {param: value}, "state": None})


def test_from_dict_rejects_unknown_input() -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        from_dict({"method": "Nope"})
    with pytest.raises(ValueError, match="unknown keys"):
        from_dict({"method": "DDM", "params": {"colour": 1}, "state": None})
    with pytest.raises(ValueError, match="missing"):
        from_dict({"method": "DDM", "params": {}, "state": {"n": 3}})


def test_kswin_without_seed_keeps_its_drawn_seed_in_the_state() -> None:
    values = _stream(KSWIN(), seed=9)
    det = KSWIN(alpha=0.001)
    det.update_many(values[:2000])
    restored = from_dict(json.loads(json.dumps(det.to_dict())))
    assert restored.update_many(values[2000:]).tolist() == det.update_many(values[2000:]).tolist()


def test_bernoulli_counts_agree_with_values() -> None:
    rng = np.random.default_rng(10)
    values = (rng.random(50 * 200) < np.repeat([0.05, 0.15], 25 * 200)).astype(np.float64)
    by_value = BernoulliRate(p0=0.05, threshold=8.0).update_many(values)
    counts = values.reshape(-1, 200).sum(axis=1)
    by_window = BernoulliRate(p0=0.05, threshold=8.0).update_counts(counts, np.full(50, 200))
    # Counts see the evidence of a whole window at once: the window holding the first value-level
    # detection is where the count-level detector fires (or before, never after).
    assert by_window.size >= 1 and by_value.size >= 1
    assert by_window[0] <= by_value[0] // 200
    with pytest.raises(ValueError, match="successes must not exceed trials"):
        BernoulliRate().update_counts([3], [2])
    with pytest.raises(ValueError, match="trials must be non-negative integers"):
        BernoulliRate().update_counts([1], [2.5])


def test_adwin_keeps_the_shrunk_window_when_not_resetting() -> None:
    values = _stream(ADWIN(), seed=11)
    det = ADWIN(delta=0.01, reset_after_drift=False)
    first = int(det.update_many(values)[0])
    det = ADWIN(delta=0.01, reset_after_drift=False)
    det.update_many(values[: first + 1])
    assert 0 < det.width < first + 1
    assert det.estimation == pytest.approx(values[first + 1 - det.width : first + 1].mean())


def test_adwin_state_keeps_only_the_levels_in_use() -> None:
    det = ADWIN()
    det.update_many(np.random.default_rng(12).normal(size=5000))
    saved = det.to_dict()["state"]
    assert 5 <= len(saved["totals"]) <= 14
    assert from_dict(det.to_dict()).to_dict() == det.to_dict()


def test_import_loads_numpy_only() -> None:
    import subprocess
    import sys

    code = (
        "import sys, time; t = time.perf_counter(); import watchkeeper.detectors; "
        "t = time.perf_counter() - t; "
        "heavy = [m for m in ('numba', 'scipy', 'pandas', 'llvmlite') if m in sys.modules]; "
        "print(heavy, t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, _seconds = out.stdout.split("]")
    assert heavy == "["


@pytest.mark.parametrize(
    "name", ["ADWIN", "PageHinkley-fading", "KSWIN", "EDDM", "HDDM_A", "HDDM_W"]
)
def test_compiled_kernels_equal_their_python_source(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run each kernel's outer loop as plain Python (numba's py_func) and compare: catches typing
    # surprises of the compiled code (integer division, casts, wrapping).
    from watchkeeper.detectors import _backend, _kernels

    monkeypatch.setattr(_backend, "_chosen", "numba")
    values = _stream(FACTORIES[name](), seed=13, n=1500)
    compiled = FACTORIES[name]()
    expected = compiled.update_many(values)
    for kernel in ("adwin", "page_hinkley", "kswin", "eddm", "hddm_a", "hddm_w"):
        monkeypatch.setattr(_kernels, kernel, getattr(_kernels, kernel).py_func)
    interpreted = FACTORIES[name]()
    assert interpreted.update_many(values).tolist() == expected.tolist()
    assert interpreted.to_dict() == compiled.to_dict()


@pytest.mark.parametrize("name", ["BOCPD", "BOCPD-keep", "SeasonalCUSUM-week"])
def test_change_point_kernels_equal_their_python_source(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from watchkeeper.detectors import _changepoint_kernels as kernels

    values = _stream(FACTORIES[name](), seed=13, n=1200)
    compiled = FACTORIES[name]()
    expected = compiled.update_many(values)
    for kernel in ("bocpd", "seasonal_residual"):
        monkeypatch.setattr(kernels, kernel, getattr(kernels, kernel).py_func)
    interpreted = FACTORIES[name]()
    assert interpreted.update_many(values).tolist() == expected.tolist()
    # lgamma / exp / log of the compiled code may differ from CPython's in the last bits
    a, b = interpreted._state, compiled._state
    assert a is not None and b is not None
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-9, atol=1e-12)


def test_kswin_keeps_its_most_recent_values_when_not_resetting() -> None:
    # The paper's rule after a detection: the window becomes the stat_size most recent values.
    values = _stream(KSWIN(), seed=14)
    params = {"alpha": 0.001, "seed": 3, "window_size": 100, "stat_size": 30}
    first = int(KSWIN(**params, reset_after_drift=False).update_many(values)[0])  # type: ignore[arg-type]
    det = KSWIN(**params, reset_after_drift=False)  # type: ignore[arg-type]
    det.update_many(values[: first + 1])
    assert det._state is not None
    count, head = int(det._state["scalars"][0]), int(det._state["scalars"][1])
    ring = det._state["ring"]
    window = [ring[(head + j) % ring.size] for j in range(count)]
    assert count == 30
    assert window == values[first + 1 - 30 : first + 1].tolist()


def test_bernoulli_rate_learns_its_baseline_on_a_long_stream() -> None:
    """With ``p0=None`` and default warm-up, a stream far longer than one block still runs,
    and ``update_many`` agrees with ``update`` (regression: the warm-up once overran)."""
    rng = np.random.default_rng(5)
    flags = np.r_[rng.random(30_000) < 0.04, rng.random(10_000) < 0.12].astype(float)
    many = BernoulliRate().update_many(flags)
    one = BernoulliRate()
    loop = [i for i, v in enumerate(flags) if one.update(float(v)).drift_detected]
    assert many.tolist() == loop
    assert many.size >= 1 and 30_000 <= int(many[0]) < 31_000
