"""The attack harness of benchmarks/adversaries.py, fast: each attack on the demo CNN is named
by a per-source test, and benign sources are flagged no more often than the tests' level."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.adversaries import ATTACKS, Model, simulate


@pytest.fixture(scope="module")
def model() -> Any:
    # An untrained network keeps this fast; it still has a decision boundary to attack.
    return Model(0, 0, seed=0)


@pytest.mark.parametrize("attack", ATTACKS)
def test_each_attack_is_detected_fast(model: Any, attack: str) -> None:
    # Light benign traffic (many benign sources stay under min_events): the attack must still
    # be named in its first window, and no benign source flagged.
    out = simulate(
        attack, model=model, windows=1, attack_start=0, attack_rate=100, benign_rate=8, seed=3
    )
    assert out.detected and out.first_window == 0, out
    assert out.benign_flags == 0, out


@pytest.mark.slow
@pytest.mark.parametrize("attack", ATTACKS)
def test_each_attack_is_detected(model: Any, attack: str) -> None:
    out = simulate(
        attack, model=model, windows=2, attack_start=1, attack_rate=120, benign_rate=25, seed=3
    )
    assert out.detected and out.first_window == 0, out
    # Five tests at alpha = 0.01 (Holm across sources): at most 5% of benign
    # (source, window) pairs flagged, plus binomial slack.
    bound = 0.05 * out.benign_pairs + 3 * np.sqrt(0.05 * out.benign_pairs)
    assert out.benign_flags <= bound, out


def test_unknown_attack_is_refused(model: Any) -> None:
    with pytest.raises(ValueError, match="attack: unknown attack"):
        simulate("phishing", model=model, windows=1, attack_start=0)
