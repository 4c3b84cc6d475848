"""Device samples on a background thread: NVML for a GPU, psutil for the CPU otherwise.

NVML's utilization.gpu is the share of its own sample period (1/6 s to 1 s, by GPU) in
which any kernel ran: not SM occupancy, and polling faster than that only repeats values,
hence the 0.2 s default. Sampling must never fail a run, so every NVML error (no library,
no driver, no GPU, a field this GPU lacks) degrades to the CPU source or to a None field.
"""

from __future__ import annotations

import os
import threading
import time

import psutil

from bench.records import DeviceSample


def nvml_index(device: str | None) -> int | str | None:
    """'cuda:1' -> the NVML index (or UUID) of that device, None for anything not CUDA.

    torch numbers the devices CUDA_VISIBLE_DEVICES lets it see; NVML numbers them all. So
    with CUDA_VISIBLE_DEVICES=2,3, 'cuda:1' is NVML index 3.
    """
    if device is None or not str(device).startswith("cuda"):
        return None
    _, _, index = str(device).partition(":")
    logical = int(index) if index.strip() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None or not visible.strip():
        return logical
    entries = [v.strip() for v in visible.split(",") if v.strip()]
    if logical >= len(entries):
        return None
    entry = entries[logical]
    return int(entry) if entry.isdigit() else entry  # a UUID ("GPU-...")


# NVML's clock-event reason bits (nvml.h: nvmlClocksEventReasonSwPowerCap,
# nvmlClocksEventReasonHwPowerBrakeSlowdown): the board's power limit holds the clock down
POWER_LIMIT_REASONS = 0x4 | 0x80


def _clock_event_reasons(nv, handle) -> int | None:
    """The reasons bitmask, by the name newer bindings use or the older 'throttle' one;
    None with bindings that have neither."""
    read = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
        nv, "nvmlDeviceGetCurrentClocksThrottleReasons", None
    )
    return None if read is None else int(read(handle))


class _NvmlReader:
    def __init__(self, index: int | str):
        import pynvml  # ImportError -> CPU fallback, by the caller

        self.nvml = pynvml
        pynvml.nvmlInit()
        try:
            if isinstance(index, int):
                self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            else:
                self.handle = pynvml.nvmlDeviceGetHandleByUUID(index)
        except Exception:
            pynvml.nvmlShutdown()
            raise
        self.device = f"nvml:{index}"

    def _field(self, read):
        try:
            return read()
        except self.nvml.NVMLError:
            return None  # a field this GPU or driver does not report

    def read(self, t_ns: int) -> DeviceSample:
        nv, h = self.nvml, self.handle
        util = self._field(lambda: nv.nvmlDeviceGetUtilizationRates(h).gpu)
        memory = self._field(lambda: nv.nvmlDeviceGetMemoryInfo(h))
        power_mw = self._field(lambda: nv.nvmlDeviceGetPowerUsage(h))
        energy_mj = self._field(lambda: nv.nvmlDeviceGetTotalEnergyConsumption(h))
        reasons = self._field(lambda: _clock_event_reasons(nv, h))
        return DeviceSample(
            t_ns=t_ns,
            device=self.device,
            source="nvml",
            utilization_pct=None if util is None else float(util),
            memory_used_bytes=None if memory is None else int(memory.used),
            memory_total_bytes=None if memory is None else int(memory.total),
            power_w=None if power_mw is None else power_mw / 1000.0,
            energy_j=None if energy_mj is None else energy_mj / 1000.0,
            sm_clock_mhz=self._field(lambda: float(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM))),
            mem_clock_mhz=self._field(lambda: float(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM))),
            power_capped=None if reasons is None else bool(reasons & POWER_LIMIT_REASONS),
        )

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except Exception:
            pass


class _CpuReader:
    device = "cpu"

    def __init__(self):
        psutil.cpu_percent(interval=None)  # the first call only sets the reference point

    def read(self, t_ns: int) -> DeviceSample:
        memory = psutil.virtual_memory()
        return DeviceSample(
            t_ns=t_ns,
            device="cpu",
            source="cpu",
            utilization_pct=float(psutil.cpu_percent(interval=None)),
            memory_used_bytes=int(memory.total - memory.available),
            memory_total_bytes=int(memory.total),
        )

    def close(self) -> None:
        pass


def _open_reader(device: str | None):
    index = nvml_index(device)
    if index is not None:
        try:
            return _NvmlReader(index), None
        except ImportError as e:
            reason = f"nvidia-ml-py not importable ({e})"
        except Exception as e:  # every NVMLError subclass, and anything else NVML throws
            reason = f"NVML unavailable for {device} ({type(e).__name__}: {e})"
        return _CpuReader(), reason
    return _CpuReader(), None


class DeviceSampler:
    """Samples one device every `interval_s` on its own thread, from start() to stop().

    The first sample is taken in start() and the last in stop(), so a run's energy delta
    covers the whole run even when it is shorter than one interval. Times are absolute
    perf_counter_ns; the runner rebases them.
    """

    def __init__(self, device: str | None = None, interval_s: float = 0.2):
        if not interval_s > 0:
            raise ValueError(f"sampler interval_s must be > 0, got {interval_s!r}")
        self.device = device
        self.interval_s = interval_s
        self.samples: list[DeviceSample] = []
        self.source: str | None = None
        self.fallback_reason: str | None = None
        self.errors = 0  # samples lost to unexpected exceptions (never raised)
        self._reader = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> DeviceSampler:
        if self._thread is not None:
            raise RuntimeError("DeviceSampler already started")
        self._reader, self.fallback_reason = _open_reader(self.device)
        self.source = "nvml" if isinstance(self._reader, _NvmlReader) else "cpu"
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="device-sampler", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        try:
            self.samples.append(self._reader.read(time.perf_counter_ns()))
        except Exception:
            self.errors += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def stop(self) -> list[DeviceSample]:
        """Stop sampling (a last sample first) and return every sample. Safe to call twice
        or without start()."""
        if self._thread is None:
            return list(self.samples)
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._sample()
        self._reader.close()
        return list(self.samples)

    def describe(self) -> dict:
        return {
            "source": self.source,
            "interval_s": self.interval_s,
            "device": self.device,
            "fallback_reason": self.fallback_reason,
            "errors": self.errors,
        }

    def __enter__(self) -> DeviceSampler:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
