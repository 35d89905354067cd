"""System metrics of the machine a model is served on, or the server runs on.

CPU, memory, disk and network I/O come from psutil; GPU utilisation, memory and temperature come
from NVML (the ``nvidia-ml-py`` package, extra ``gpu``) when a GPU and its driver are present,
and are simply absent when not. Nothing is imported until the first snapshot is taken.

>>> snap = snapshot(path=".")
>>> 0.0 <= snap["cpu_utilization_ratio"] <= 1.0
True
>>> snap["memory_total_bytes"] > 0
True
"""

from __future__ import annotations

import threading
from typing import Any

_nvml_lock = threading.Lock()
_nvml_state: dict[str, Any] = {}


def _nvml() -> Any | None:
    """The initialised ``pynvml`` module, or None when there is no usable GPU (checked once)."""
    with _nvml_lock:
        if "module" not in _nvml_state:
            module: Any | None
            try:
                import pynvml

                pynvml.nvmlInit()
                module = None if pynvml.nvmlDeviceGetCount() == 0 else pynvml
            except Exception:  # no package, no driver, no device: all mean "no GPU metrics"
                module = None
            _nvml_state["module"] = module
        return _nvml_state["module"]


def gpu_snapshot() -> list[dict[str, float]]:
    """One dict per GPU (utilisation ratio, memory bytes, temperature in °C); [] without GPUs.

    >>> isinstance(gpu_snapshot(), list)
    True
    """
    nvml = _nvml()
    if nvml is None:
        return []
    out: list[dict[str, float]] = []
    try:
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            util = nvml.nvmlDeviceGetUtilizationRates(handle)
            mem = nvml.nvmlDeviceGetMemoryInfo(handle)
            temp = nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
            out.append(
                {
                    "utilization_ratio": float(util.gpu) / 100.0,
                    "memory_used_bytes": float(mem.used),
                    "memory_total_bytes": float(mem.total),
                    "temperature_celsius": float(temp),
                }
            )
    except Exception:  # a GPU that disappears or errors mid-read yields no figures, not a crash
        return []
    return out


def snapshot(path: str = "/") -> dict[str, float]:
    """Current system figures as a flat dict of floats, Prometheus-style names in base units.

    Counters (``*_total``) are cumulative since boot; ``cpu_utilization_ratio`` is the
    utilisation since the previous call (0 on the first). GPU figures appear as
    ``gpu<i>_<name>`` keys only when a GPU is present.

    Parameters
    ----------
    path
        Mount point whose disk usage is reported.
    """
    import psutil

    out: dict[str, float] = {"cpu_utilization_ratio": psutil.cpu_percent(interval=None) / 100.0}
    vm = psutil.virtual_memory()
    out["memory_used_bytes"] = float(vm.total - vm.available)
    out["memory_total_bytes"] = float(vm.total)
    try:
        du = psutil.disk_usage(path)
        out["disk_used_bytes"] = float(du.used)
        out["disk_total_bytes"] = float(du.total)
    except OSError:
        pass
    io = psutil.disk_io_counters()
    if io is not None:
        out["disk_read_bytes_total"] = float(io.read_bytes)
        out["disk_written_bytes_total"] = float(io.write_bytes)
    net = psutil.net_io_counters()
    if net is not None:
        out["network_received_bytes_total"] = float(net.bytes_recv)
        out["network_transmitted_bytes_total"] = float(net.bytes_sent)
    proc = psutil.Process()
    out["process_resident_memory_bytes"] = float(proc.memory_info().rss)
    for i, gpu in enumerate(gpu_snapshot()):
        out.update({f"gpu{i}_{k}": v for k, v in gpu.items()})
    return out
