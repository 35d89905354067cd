"""System metrics: psutil figures always, GPU figures only with a GPU, never an error."""

from __future__ import annotations

import pytest

from watchkeeper import system


def test_snapshot_has_base_unit_figures() -> None:
    snap = system.snapshot(".")
    for key in (
        "cpu_utilization_ratio",
        "memory_used_bytes",
        "memory_total_bytes",
        "disk_read_bytes_total",
        "network_received_bytes_total",
    ):
        assert key in snap
        assert snap[key] >= 0
    assert snap["memory_used_bytes"] <= snap["memory_total_bytes"]


def test_no_gpu_means_no_gpu_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(system, "_nvml_state", {"module": None})
    assert system.gpu_snapshot() == []
    assert not any(k.startswith("gpu") for k in system.snapshot("."))


def test_fake_nvml_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    class Util:
        gpu = 40

    class Mem:
        used, total = 2.0e9, 8.0e9

    class FakeNvml:
        NVML_TEMPERATURE_GPU = 0

        @staticmethod
        def nvmlDeviceGetCount() -> int:
            return 1

        @staticmethod
        def nvmlDeviceGetHandleByIndex(i: int) -> int:
            return i

        @staticmethod
        def nvmlDeviceGetUtilizationRates(h: int) -> Util:
            return Util()

        @staticmethod
        def nvmlDeviceGetMemoryInfo(h: int) -> Mem:
            return Mem()

        @staticmethod
        def nvmlDeviceGetTemperature(h: int, kind: int) -> int:
            return 71

    monkeypatch.setattr(system, "_nvml_state", {"module": FakeNvml})
    snap = system.snapshot(".")
    assert snap["gpu0_utilization_ratio"] == 0.4
    assert snap["gpu0_memory_used_bytes"] == 2.0e9
    assert snap["gpu0_temperature_celsius"] == 71.0

    from prometheus_client import CollectorRegistry

    from watchkeeper.server.metrics import SystemCollector

    reg = CollectorRegistry()
    reg.register(SystemCollector("."))
    assert reg.get_sample_value("watchkeeper_gpu_temperature_celsius", {"gpu": "0"}) == 71.0


def test_broken_nvml_is_absent_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        @staticmethod
        def nvmlDeviceGetCount() -> int:
            raise RuntimeError("driver gone")

    monkeypatch.setattr(system, "_nvml_state", {"module": Broken})
    assert system.gpu_snapshot() == []
