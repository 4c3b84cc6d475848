"""What the device did during the run, from the sampler's readings (device.parquet).

Every number covers the measured window W (first send to last token of ok requests), so
model loading before the run and idle time after it do not dilute the means; when W is
undefined (no ok request) all samples are used. Samples come at a fixed period, so a plain
mean over them is a time average. With several devices, utilisation is the mean over
devices, while memory, power and energy are summed over them (the whole machine's).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.records import DEVICE_COLUMNS


def _column(samples: pd.DataFrame, name: str) -> np.ndarray:
    values = pd.to_numeric(samples[name], errors="coerce").to_numpy(np.float64)
    return values[~np.isnan(values)]


def utilization_pct_mean(per_device: list[pd.DataFrame]) -> float | None:
    """Mean of the utilisation readings (NVML utilization.gpu: share of time any kernel ran,
    not SM occupancy; CPU busy percent on CPU), averaged over devices. Higher is better."""
    means = [v.mean() for v in (_column(s, "utilization_pct") for s in per_device) if v.size]
    return float(np.mean(means)) if means else None


def memory_used_bytes_peak(per_device: list[pd.DataFrame]) -> int | None:
    """Largest memory reading of each device, summed over devices."""
    peaks = [v.max() for v in (_column(s, "memory_used_bytes") for s in per_device) if v.size]
    return int(sum(peaks)) if peaks else None


def power_w_mean(per_device: list[pd.DataFrame]) -> float | None:
    """Mean power draw of each device, summed over devices (W)."""
    means = [v.mean() for v in (_column(s, "power_w") for s in per_device) if v.size]
    return float(sum(means)) if means else None


def sm_clock_mhz_mean(per_device: list[pd.DataFrame]) -> float | None:
    """Mean SM clock, averaged over devices (MHz): below the GPU's boost clock when a power
    or thermal limit holds it down."""
    means = [v.mean() for v in (_column(s, "sm_clock_mhz") for s in per_device) if v.size]
    return float(np.mean(means)) if means else None


def power_capped_pct(per_device: list[pd.DataFrame]) -> float | None:
    """Share of the readings (%) at which the board's power limit held the SM clock down,
    averaged over devices; None where NVML does not say (CPU, files from before the column)."""
    shares = []
    for samples in per_device:
        known = samples["power_capped"].dropna()
        if len(known):
            shares.append(100.0 * known.astype(bool).mean())
    return float(np.mean(shares)) if shares else None


def energy_j(per_device_all: list[pd.DataFrame], window: tuple[int, int] | None) -> float | None:
    """Energy used in the window: the cumulative energy counter read at the window's end
    minus at its start, each linearly interpolated between the two samples around it
    (clamped to the first / last sample), summed over devices. Lower is better.

    Takes every sample, not only those inside the window, since the readings just outside
    it are what the interpolation needs. None when a device has fewer than 2 readings."""
    total = 0.0
    for samples in per_device_all:
        ordered = samples.sort_values("t_ns")
        keep = ordered["energy_j"].notna()
        t = ordered.loc[keep, "t_ns"].to_numpy(np.float64)
        e = ordered.loc[keep, "energy_j"].to_numpy(np.float64)
        if t.size < 2:
            return None
        start, end = window if window is not None else (t[0], t[-1])
        drops = np.flatnonzero(np.diff(e) < 0)
        if drops.size:
            i = drops[0]
            raise ValueError(
                f"device frame, device {samples['device'].iloc[0]!r}: energy_j went down from "
                f"{float(e[i])!r} to {float(e[i + 1])!r} at t_ns {int(t[i + 1])}, expected a cumulative counter"
            )
        total += float(np.interp(end, t, e) - np.interp(start, t, e))
    return total if per_device_all else None


def device_summary(
    device: pd.DataFrame, window: tuple[int, int] | None, output_tokens: int
) -> dict | None:
    """The summary's `device` block; None when the sampler recorded nothing."""
    missing = [c for c in DEVICE_COLUMNS if c not in device.columns]
    if missing:
        raise ValueError(f"device frame: missing columns {missing}")
    if device.empty:
        return None
    per_device_all = [s for _, s in device.groupby("device", sort=True)]
    if window is None:
        per_device = per_device_all
    else:
        per_device = [s[(s["t_ns"] >= window[0]) & (s["t_ns"] <= window[1])] for s in per_device_all]
    energy = energy_j(per_device_all, window)
    return {
        "source": "+".join(sorted(device["source"].dropna().astype(str).unique())) or None,
        "utilization_pct_mean": utilization_pct_mean(per_device),
        "memory_used_bytes_peak": memory_used_bytes_peak(per_device),
        "power_w_mean": power_w_mean(per_device),
        "sm_clock_mhz_mean": sm_clock_mhz_mean(per_device),
        "power_capped_pct": power_capped_pct(per_device),
        "energy_j": energy,
        "energy_j_per_output_tok": (
            energy / output_tokens if energy is not None and output_tokens > 0 else None
        ),
    }
