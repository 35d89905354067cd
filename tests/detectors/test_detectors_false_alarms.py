"""Each detector's defaults keep the false-alarm rate they state (simulation, slow).

Protocol: fresh detectors with default parameters on 10 seeded streams of 100,000 values with no
change (standard normal; Bernoulli errors at rates 0.02, 0.1 and 0.3). The mean count of
detections per stream is the expected number of false alarms per 100,000 values; it must not
exceed the class's ``false_alarms_per_100k``. Fresh streams include the warm-up, where most
false alarms happen, so the figure is conservative for long-running monitors.
"""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper.detectors import DETECTORS, KSWIN, Detector

N_STREAMS, LENGTH = 10, 100_000


def _false_alarms(cls: type[Detector], stream: str) -> float:
    total = 0
    for seed in range(N_STREAMS):
        rng = np.random.default_rng(1000 + seed)
        if stream == "normal":
            values = rng.normal(0.0, 1.0, LENGTH)
        else:
            values = (rng.random(LENGTH) < float(stream)).astype(np.float64)
        det = cls(seed=seed) if cls is KSWIN else cls()  # type: ignore[call-arg]
        total += det.update_many(values).size
    return total / N_STREAMS * (100_000 / LENGTH)


CASES = [
    (name, stream)
    for name, cls in sorted(DETECTORS.items())
    for stream in (("0.02", "0.1", "0.3") if cls.binary else ("normal",))
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "stream"), CASES)
def test_default_false_alarm_rate_is_as_stated(name: str, stream: str) -> None:
    cls = DETECTORS[name]
    observed = _false_alarms(cls, stream)
    assert observed <= cls.false_alarms_per_100k, (name, stream, observed)


def test_every_detector_states_its_rate() -> None:
    for cls in DETECTORS.values():
        assert 0 < cls.false_alarms_per_100k <= 3
        assert "false_alarms_per_100k" in (cls.__doc__ or "")
