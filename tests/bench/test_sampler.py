"""The device sampler: NVML readings and units through a fake pynvml, CPU fallback otherwise."""

from __future__ import annotations

import sys
import time
import types

import pytest

from bench.sampler import DeviceSampler, nvml_index


class FakeNVMLError(Exception):
    pass


def fake_pynvml(*, init_error=None, energy_supported=True, calls=None, clock_reasons=None):
    """A pynvml stand-in for a GPU drawing 250 W at 87% with a rising energy counter."""
    nv = types.ModuleType("pynvml")
    nv.NVMLError = FakeNVMLError
    nv.NVML_CLOCK_SM, nv.NVML_CLOCK_MEM = 1, 2
    state = {"energy_mj": 1_000_000, "inits": 0}
    calls = calls if calls is not None else []

    def init():
        if init_error is not None:
            raise init_error
        state["inits"] += 1

    def handle(index):
        calls.append(("index", index))
        return ("h", index)

    def energy(h):
        if not energy_supported:
            raise FakeNVMLError("Not Supported")
        state["energy_mj"] += 50_000
        return state["energy_mj"]

    nv.nvmlInit = init
    nv.nvmlShutdown = lambda: state.__setitem__("inits", state["inits"] - 1)
    nv.nvmlDeviceGetHandleByIndex = handle
    nv.nvmlDeviceGetHandleByUUID = lambda uuid: calls.append(("uuid", uuid)) or ("h", uuid)
    nv.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=87, memory=40)
    nv.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=30 * 2**30, total=141 * 2**30, free=0)
    nv.nvmlDeviceGetPowerUsage = lambda h: 250_000  # milliwatts
    nv.nvmlDeviceGetTotalEnergyConsumption = energy
    nv.nvmlDeviceGetClockInfo = lambda h, kind: {1: 1980, 2: 3201}[kind]
    if clock_reasons is not None:  # (function name, its successive bitmasks)
        name, masks = clock_reasons
        readings = iter(masks)
        setattr(nv, name, lambda h: next(readings, masks[-1]))
    nv.state = state
    return nv


def test_nvml_readings_and_units(monkeypatch):
    nv = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with DeviceSampler("cuda:0", interval_s=0.01) as sampler:
        time.sleep(0.05)
    samples = sampler.samples
    assert sampler.source == "nvml" and len(samples) >= 3
    s = samples[0]
    assert s.source == "nvml" and s.device == "nvml:0"
    assert s.utilization_pct == 87.0
    assert s.memory_used_bytes == 30 * 2**30 and s.memory_total_bytes == 141 * 2**30
    assert s.power_w == 250.0  # mW -> W
    assert s.energy_j == 1050.0  # mJ -> J
    assert (s.sm_clock_mhz, s.mem_clock_mhz) == (1980.0, 3201.0)
    energies = [x.energy_j for x in samples]
    assert energies == sorted(energies) and energies[-1] > energies[0]
    assert nv.state["inits"] == 0  # shut down after stop()


def test_field_a_gpu_lacks_is_none(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(energy_supported=False))
    with DeviceSampler("cuda:0", interval_s=0.01) as sampler:
        pass
    assert sampler.source == "nvml"
    assert all(s.energy_j is None and s.power_w == 250.0 for s in sampler.samples)


def test_device_index_follows_cuda_visible_devices(monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(calls=calls))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    with DeviceSampler("cuda:1", interval_s=1):
        pass
    assert calls == [("index", 3)]
    assert nvml_index("cuda") == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-abc,GPU-def")
    assert nvml_index("cuda:1") == "GPU-def"
    assert nvml_index("cuda:5") is None
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert nvml_index("cuda:1") == 1
    assert nvml_index("cpu") is None and nvml_index(None) is None


def assert_cpu_samples(sampler):
    assert sampler.source == "cpu"
    assert len(sampler.samples) >= 2
    for s in sampler.samples:
        assert s.source == "cpu" and s.device == "cpu"
        assert 0.0 <= s.utilization_pct <= 100.0
        assert 0 < s.memory_used_bytes <= s.memory_total_bytes
        assert s.power_w is None and s.energy_j is None


def test_falls_back_to_cpu_without_pynvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    with DeviceSampler("cuda:0", interval_s=0.01) as sampler:
        time.sleep(0.03)
    assert_cpu_samples(sampler)
    assert "not importable" in sampler.fallback_reason


@pytest.mark.parametrize("error", [FakeNVMLError("Driver Not Loaded"), OSError("libnvidia-ml.so.1 missing")])
def test_falls_back_to_cpu_when_nvml_fails(monkeypatch, error):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(init_error=error))
    with DeviceSampler("cuda:0", interval_s=0.01) as sampler:
        time.sleep(0.03)
    assert_cpu_samples(sampler)
    assert str(error) in sampler.fallback_reason


def test_real_environment_never_raises():
    # whatever this machine has (here: pynvml installed, no driver), sampling a CUDA device works
    with DeviceSampler("cuda:0", interval_s=0.01) as sampler:
        time.sleep(0.02)
    assert sampler.source in ("nvml", "cpu") and len(sampler.samples) >= 2


def test_cpu_device_uses_psutil_and_broken_reads_are_counted(monkeypatch):
    sampler = DeviceSampler("cpu", interval_s=0.01).start()
    import bench.sampler as mod

    def broken():
        raise RuntimeError("psutil hiccup")

    monkeypatch.setattr(mod.psutil, "virtual_memory", broken)
    time.sleep(0.05)
    monkeypatch.undo()
    samples = sampler.stop()
    assert sampler.errors >= 2  # lost samples are counted, and the thread kept going
    assert samples[-1].source == "cpu"  # taken after the hiccup ended
    assert sampler.stop() == samples  # stopping twice is harmless


def test_stop_without_start_and_bad_interval():
    assert DeviceSampler("cpu").stop() == []
    with pytest.raises(ValueError, match="interval_s"):
        DeviceSampler("cpu", interval_s=0)


@pytest.mark.parametrize("name", ["nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"])
def test_power_cap_from_the_clock_event_reasons(monkeypatch, name):
    # idle (0x1), software power cap (0x4) with sync boost (0x10), hardware power brake
    # (0x80), software thermal slowdown (0x20): only the power limits count
    masks = [0x1, 0x4 | 0x10, 0x80, 0x20]
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(clock_reasons=(name, masks)))
    sampler = DeviceSampler("cuda:0", interval_s=60).start()
    for _ in range(len(masks) - 2):  # start() and stop() take the first and the last
        sampler._sample()
    samples = sampler.stop()
    assert [s.power_capped for s in samples] == [False, True, True, False]
    assert sampler.errors == 0


def test_bindings_without_clock_event_reasons_leave_it_unknown(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    with DeviceSampler("cuda:0", interval_s=0.01) as sampler:
        pass
    assert sampler.errors == 0 and sampler.samples
    assert all(s.power_capped is None and s.sm_clock_mhz == 1980.0 for s in sampler.samples)
