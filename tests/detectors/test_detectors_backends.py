"""The two kernel backends, ahead-of-time C and numba, give identical detections and states."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from watchkeeper.detectors import (
    ADWIN,
    EDDM,
    HDDM_A,
    HDDM_W,
    KSWIN,
    Detector,
    PageHinkley,
    _backend,
    from_dict,
)

needs_c = pytest.mark.skipif(
    "c" not in _backend.available(), reason="the C kernels are not built here"
)

CASES: dict[str, tuple[Callable[[], Detector], str]] = {
    "ADWIN": (lambda: ADWIN(), "gauss"),
    "ADWIN-sensitive": (lambda: ADWIN(delta=0.05, clock=1, max_buckets=2), "gauss"),
    "ADWIN-keep": (lambda: ADWIN(delta=0.01, reset_after_drift=False), "gauss"),
    "ADWIN-errors": (lambda: ADWIN(delta=0.01, clock=4), "bern"),
    "PageHinkley-fading": (lambda: PageHinkley(threshold=10.0, alpha=0.99), "gauss"),
    "PageHinkley-fading-up": (
        lambda: PageHinkley(threshold=8.0, alpha=0.999, mode="up", reset_after_drift=False),
        "gauss",
    ),
    "KSWIN": (lambda: KSWIN(alpha=0.001, seed=3), "gauss"),
    "KSWIN-river": (lambda: KSWIN(alpha=0.005, window_size=100, stat_size=30, seed=9), "gauss"),
    "KSWIN-keep-ties": (
        lambda: KSWIN(alpha=0.001, window_size=90, stat_size=30, reset_after_drift=False),
        "round",
    ),
    "EDDM": (lambda: EDDM(warm_start=30, alpha=0.95, beta=0.9), "bern"),
    "EDDM-keep": (lambda: EDDM(warm_start=30, beta=0.9, reset_after_drift=False), "bern"),
    "HDDM_A": (lambda: HDDM_A(drift_confidence=0.01, two_sided=True), "bern"),
    "HDDM_A-keep": (lambda: HDDM_A(reset_after_drift=False), "bern"),
    "HDDM_W": (lambda: HDDM_W(drift_confidence=0.01, two_sided=True), "bern"),
    "HDDM_W-river": (
        lambda: HDDM_W(drift_confidence=0.001, warning_confidence=0.005, lambda_=0.05), "bern"
    ),
}


def _stream(kind: str, seed: int, n: int = 20_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = n // 4
    if kind == "bern":
        p = np.r_[np.full(k, 0.1), np.full(k, 0.35), np.full(k, 0.05), np.full(n - 3 * k, 0.3)]
        return (rng.random(n) < p).astype(np.float64)
    x = np.r_[rng.normal(0, 1, k), rng.normal(1, 1, k), rng.normal(-0.5, 2, k),
              rng.normal(0.3, 0.5, n - 3 * k)]
    return np.round(x * 2.0) if kind == "round" else x


@pytest.fixture
def restore_backend() -> Iterator[None]:
    yield
    _backend.use(None)


def _run(backend: str, make: Callable[[], Detector], values: np.ndarray,
         ) -> tuple[list[int], dict[str, object], list[bool]]:
    _backend.use(backend)
    det = make()
    # Uneven chunks, so states are carried between calls as well as within one.
    found: list[int] = []
    start = 0
    for size in (1, 7, 500, 3000, values.size):
        part = values[start : start + size]
        found += (det.update_many(part) + start).tolist()
        start += part.size
        if start >= values.size:
            break
    one = make()
    flags = [bool(one.update(x).drift_detected) for x in values[:3000].tolist()]
    return found, det.to_dict(), flags


@needs_c
@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_c_and_numba_kernels_agree(name: str, seed: int, restore_backend: None) -> None:
    make, kind = CASES[name]
    values = _stream(kind, seed)
    c = _run("c", make, values)
    numba = _run("numba", make, values)
    assert c[0] == numba[0]
    assert json.dumps(c[1]) == json.dumps(numba[1])
    assert c[2] == numba[2]
    assert c[0], "the stream should contain detections, or the comparison proves little"


@needs_c
def test_c_kernels_refuse_a_corrupted_state(restore_backend: None) -> None:
    _backend.use("c")
    det = ADWIN()
    det.update_many(_stream("gauss", 3, 2000))
    saved = det.to_dict()
    saved["state"]["counts"][0] = 99  # more entries than a level holds
    with pytest.raises(ValueError, match="ADWIN state is inconsistent"):
        from_dict(saved).update_many(np.zeros(10))
    ks = KSWIN(window_size=60, stat_size=20)
    ks.update_many(_stream("gauss", 3, 200))
    saved = ks.to_dict()
    saved["state"]["scalars"][1] = 1e9  # the ring's head far outside the ring
    with pytest.raises(ValueError, match="KSWIN state is inconsistent"):
        from_dict(saved).update_many(np.zeros(10))


def test_backend_choice_is_checked(restore_backend: None) -> None:
    assert _backend.use("numba") == "numba"
    assert _backend.name() == "numba"
    with pytest.raises(ValueError, match="must be 'c' or 'numba'"):
        _backend.use("fortran")
    assert _backend.use(None) == _backend.available()[0]


def test_environment_variable_forces_a_backend() -> None:
    code = "from watchkeeper.detectors import _backend; print(_backend.name())"
    env = {**os.environ, "WATCHKEEPER_KERNELS": "numba"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "numba"
