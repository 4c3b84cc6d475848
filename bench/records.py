"""Raw records of a run: one per request, one per engine step, one per device sample.

Times are integer nanoseconds from `time.perf_counter_ns()`, rebased so that 0 is the run's
start (the manifest keeps the wall-clock start). Everything else a report shows is derived
from these rows, so they are kept whole: per-token (per-chunk) times included.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import pandas as pd

from engines.api import StepStats


@dataclass
class RequestRecord:
    """One request as the client saw it.

    chunk_times_ns[i] is when the i-th batch of tokens reached the client and chunk_tokens[i]
    how many tokens it carried (always 1 in-process; an HTTP chunk may carry several).
    first_token_ns == chunk_times_ns[0], finish_ns == chunk_times_ns[-1] for ok requests; for a
    failed request finish_ns is when the failure was seen.
    """

    request_id: str
    arrival_ns: int
    prompt_tokens: int
    max_new_tokens: int
    send_ns: int | None = None
    first_token_ns: int | None = None
    finish_ns: int | None = None
    output_tokens: int = 0
    status: str = "ok"  # ok / error / timeout / cancelled / rejected
    error: str | None = None
    chunk_times_ns: list[int] = field(default_factory=list)
    chunk_tokens: list[int] = field(default_factory=list)
    output_token_ids: list[int] | None = None

    def add_chunk(self, t_ns: int, token_ids: list[int], keep_ids: bool) -> None:
        if not token_ids:
            return
        if self.first_token_ns is None:
            self.first_token_ns = t_ns
        self.chunk_times_ns.append(t_ns)
        self.chunk_tokens.append(len(token_ids))
        self.output_tokens += len(token_ids)
        if keep_ids:
            if self.output_token_ids is None:
                self.output_token_ids = []
            self.output_token_ids.extend(token_ids)


REQUEST_COLUMNS = [f.name for f in fields(RequestRecord)]
STEP_COLUMNS = ["step"] + StepStats.column_names()


@dataclass
class DeviceSample:
    """One reading of the device sampler. Fields a source cannot read are None.

    source: "nvml" (GPU through NVML) or "cpu" (psutil, where there is no GPU).
    utilization_pct: NVML utilization.gpu (share of the sample period in which any kernel
    ran: not SM occupancy) or system-wide CPU busy percent. energy_j: NVML's total-energy
    counter, cumulative since driver load.
    """

    t_ns: int
    device: str
    source: str
    utilization_pct: float | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    power_w: float | None = None
    energy_j: float | None = None
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None
    # NVML's clock-event reasons at this reading: the board's power limit (the software power
    # cap or the hardware power brake) was holding the SM clock down. A GPU at its power cap
    # runs compute-bound kernels below the matrix rate measured in short bursts.
    power_capped: bool | None = None


DEVICE_COLUMNS = [f.name for f in fields(DeviceSample)]
# columns added after the format's first files: a file without them reads as all None
DEVICE_COLUMNS_ADDED = ("power_capped",)
STEP_COLUMNS_ADDED = ("cuda_graph", "context_tokens", "attention_pairs", "device_ns")
# the step columns that count positions a forward computed: a step with none of them only
# collected the previous step's tokens (the last call of an async-scheduled run)
POSITION_COLUMNS = ["prefill_tokens", "decode_tokens", "padded_tokens", "wasted_decode_tokens"]


def requests_frame(records: list[RequestRecord]) -> pd.DataFrame:
    return pd.DataFrame([asdict(r) for r in records], columns=REQUEST_COLUMNS)


def steps_frame(stats: list[StepStats], t0_ns: int = 0) -> pd.DataFrame:
    rows = []
    for i, s in enumerate(stats):
        row = {"step": i, **asdict(s)}
        row["start_ns"] -= t0_ns
        row["end_ns"] -= t0_ns
        rows.append(row)
    return pd.DataFrame(rows, columns=STEP_COLUMNS)


def device_frame(samples: list[DeviceSample]) -> pd.DataFrame:
    return pd.DataFrame([asdict(s) for s in samples], columns=DEVICE_COLUMNS)
