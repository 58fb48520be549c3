"""System metrics sampled during a run, logged under ``system/``.

Every ``interval`` seconds: process and system CPU %, process RSS, system memory used, disk
read/write bytes and network bytes since the run started, and per GPU (through NVML, when
the ``gpu`` extra is installed and a GPU is present) utilisation, memory used, temperature
and power. A machine without a GPU or without NVML simply has no ``system/gpu*`` metrics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from plinth._extras import optional
from plinth.tracking.deferred import Deferred, call_later

if TYPE_CHECKING:
    from plinth.tracking.runs import ActiveRun

__all__ = ["SystemMetricsSampler", "gpu_handles", "sample_gpus"]

log = logging.getLogger("plinth.tracking")


def gpu_handles() -> list[Any]:
    """NVML handles of every GPU, or [] when NVML or a GPU is absent."""
    pynvml = optional("pynvml")  # the 'gpu' extra; without it, no GPU metrics
    if pynvml is None:
        return []
    try:
        pynvml.nvmlInit()
        return [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception as exc:  # NVMLError: no driver, no device
        log.debug("no GPU metrics: %s", exc)
        return []


def sample_gpus(handles: list[Any]) -> dict[str, float]:
    """One reading per GPU metric; a metric a device does not support is left out."""
    if not handles:
        return {}
    import pynvml

    out: dict[str, float] = {}
    for i, handle in enumerate(handles):
        prefix = f"system/gpu{i}/"
        readers: dict[str, Callable[[Any], float]] = {
            "utilization_percent": lambda h: pynvml.nvmlDeviceGetUtilizationRates(h).gpu,
            "memory_used_bytes": lambda h: pynvml.nvmlDeviceGetMemoryInfo(h).used,
            "temperature_c": lambda h: pynvml.nvmlDeviceGetTemperature(
                h, pynvml.NVML_TEMPERATURE_GPU
            ),
            "power_w": lambda h: pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0,
        }
        for name, read in readers.items():
            try:
                out[prefix + name] = float(read(handle))
            except Exception as exc:  # NVMLError_NotSupported on some boards
                log.debug("GPU %d does not report %s: %s", i, name, exc)
    return out


class SystemMetricsSampler(threading.Thread):
    """A daemon thread logging one sample per interval into the run's journal.

    :meth:`start_soon` starts the thread at the first sample's time: a run shorter than
    ``interval`` never starts it and gets its one sample from :meth:`stop`.
    """

    def __init__(self, run: ActiveRun, interval: float):
        super().__init__(name=f"plinth-system-{run.id[:8]}", daemon=True)
        import psutil

        self._psutil = psutil
        self._run = run
        self._interval = max(0.05, float(interval))
        self._stop_event = threading.Event()
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # prime: the first reading is measured from here
        psutil.cpu_percent(None)
        self._disk0 = self._disk()
        self._net0 = self._net()
        self._gpus = gpu_handles()
        self._step = 0
        self._start_lock = threading.Lock()
        self._launched = False
        self._deferred: Deferred | None = None

    def start_soon(self) -> None:
        """Start sampling when the first sample is due (the thread is started then)."""
        self._deferred = call_later(self._interval, self._start_now)

    def _start_now(self) -> None:
        with self._start_lock:
            if self._stop_event.is_set() or self._launched:
                return
            self._launched = True
            self.start()

    def _disk(self) -> tuple[int, int]:
        counters = self._psutil.disk_io_counters()
        return (counters.read_bytes, counters.write_bytes) if counters else (0, 0)

    def _net(self) -> tuple[int, int]:
        counters = self._psutil.net_io_counters()
        return (counters.bytes_sent, counters.bytes_recv) if counters else (0, 0)

    def sample(self) -> dict[str, float]:
        """One reading of every system metric."""
        ps = self._psutil
        disk, net = self._disk(), self._net()
        values = {
            "system/cpu_percent": ps.cpu_percent(None),
            "system/process_cpu_percent": self._process.cpu_percent(None),
            "system/process_rss_bytes": float(self._process.memory_info().rss),
            "system/memory_used_bytes": float(ps.virtual_memory().used),
            "system/disk_read_bytes": float(disk[0] - self._disk0[0]),
            "system/disk_write_bytes": float(disk[1] - self._disk0[1]),
            "system/network_sent_bytes": float(net[0] - self._net0[0]),
            "system/network_received_bytes": float(net[1] - self._net0[1]),
        }
        values.update(sample_gpus(self._gpus))
        return values

    def _log_sample(self) -> None:
        try:
            self._run.log_metrics(self.sample(), step=self._step)
            self._step += 1
        except Exception as exc:  # never disturb training for a metric
            log.debug("system metrics sample failed: %s", exc)

    def run(self) -> None:
        if not self._stop_event.is_set():
            self._log_sample()  # started when the first sample was due
        while not self._stop_event.wait(self._interval):
            self._log_sample()

    def stop(self) -> None:
        """Take a last sample (so even a short run has one) and stop."""
        with self._start_lock:
            self._stop_event.set()
            launched = self._launched
        if self._deferred is not None:
            self._deferred.cancel()
        if launched:
            self.join(timeout=5.0)
        self._log_sample()
