"""Host-to-device and device-to-host copies that never make the host wait for the GPU.

A plain `torch.tensor(host_list, device="cuda")` copies from pageable memory, and torch then
synchronises the stream: the host stops until every kernel already queued has run. One such
copy per step is enough to serialise the host's scheduling with the GPU's forward. Copies
through pinned (page-locked) memory with non_blocking=True are queued on the stream like a
kernel instead; torch's pinned-memory cache keeps each staging buffer alive until its copy has
run. On the CPU they are plain tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def _staged(array: np.ndarray, device: torch.device) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor.pin_memory() if torch.device(device).type == "cuda" else tensor


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array on the device, without waiting for the device."""
    return _staged(array, device).to(device, non_blocking=True)


def copy_into(target: torch.Tensor, array: np.ndarray) -> None:
    """Fill a device tensor (a CUDA graph's static input) from a host array of its shape."""
    target.copy_(_staged(array, target.device), non_blocking=True)


def pack_to_device(arrays: list[np.ndarray], dtype, device: torch.device) -> list[torch.Tensor]:
    """Several host arrays of one dtype in one copy: their device views, in order (flattened).
    Each view starts on a 16-byte boundary: Triton compiles a kernel once per alignment of its
    pointer arguments, and views at arbitrary offsets would make it compile new variants
    mid-run."""
    per_line = 16 // np.dtype(dtype).itemsize
    sizes = [np.asarray(a).size for a in arrays]
    padded = [-(-n // per_line) * per_line for n in sizes]
    flat = np.zeros(sum(padded), dtype=dtype)
    at = 0
    for a, n, room in zip(arrays, sizes, padded):
        flat[at : at + n] = np.asarray(a).ravel()
        at += room
    views = to_device(flat, device).split(padded)
    return [v[:n] for v, n in zip(views, sizes)]


def stream_event(device: torch.device, timing: bool = True) -> torch.cuda.Event | None:
    """An event recorded now on the device's current stream (None on a CPU). With timing,
    recorded before a step's first copy or kernel, it times the step (HostTokens.device_ns)."""
    if torch.device(device).type != "cuda":
        return None
    event = torch.cuda.Event(enable_timing=timing)
    event.record()
    return event


@dataclass
class HostTokens:
    """A step's sampled tokens on their way to the host: the copy is queued behind the step,
    and `wait` blocks only until that step (not the ones queued after it) is done."""

    device_tokens: torch.Tensor  # [S] int64, stays valid as the next step's input
    host: torch.Tensor
    done: torch.cuda.Event | None

    @classmethod
    def start(cls, tokens: torch.Tensor, timing: bool = False) -> "HostTokens":
        """timing: the done event can time the step (device_ns); without, it costs less."""
        if tokens.device.type != "cuda":
            return cls(tokens, tokens, stream_event(tokens.device, timing))  # None: nothing to wait for
        host = torch.empty(tokens.shape, dtype=tokens.dtype, pin_memory=True)
        host.copy_(tokens, non_blocking=True)
        return cls(tokens, host, stream_event(tokens.device, timing))

    def wait(self) -> list[int]:
        if self.done is not None:
            self.done.synchronize()
        return self.host.tolist()

    def device_ns(self, started: torch.cuda.Event | None) -> int | None:
        """Device time from `started` to these tokens being on the host, once `wait` has
        returned: the step's work, without the device's idle time before `started`."""
        if started is None or self.done is None:
            return None
        return round(started.elapsed_time(self.done) * 1e6)  # elapsed_time is in ms
