"""What a load run sends and when: a workload turned into HTTP request bodies on a schedule.

The plan is plain JSON, written by `bench load` and read by the locust processes (master,
local workers, or workers on other machines, which receive it in a message), so the load
generator never needs the workload machinery or the model.

Open loop (workload modes "open" and "offline"; offline means every arrival at 0, i.e. one
burst): one global schedule of arrival times; each request is sent at its time by whichever
user is free, never paced per user. Closed loop ("closed", or --concurrency N): N users, each
sending its next request as soon as its last one ended.

Bounds: `max_requests` keeps the first N requests of the schedule; in open loop, requests
arriving at or after `duration_s` are left out of the plan (counted in `notes`); in closed
loop no request is started after `duration_s`. Every request ends within `timeout_s` of its
send, so a load ends by duration_s + timeout_s at the latest.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from engines.peers.openai_http import completion_body
from engines.request import ConfigError
from workloads.workload import Workload

ENDPOINT = "/v1/completions"
DEFAULT_USERS = 512  # open loop: enough idle greenlets that a free one is always at hand


@dataclass
class PlannedRequest:
    id: str
    arrival_s: float
    prompt_tokens: int
    max_tokens: int
    body: dict  # the JSON body sent to ENDPOINT


@dataclass
class LoadPlan:
    url: str  # base URL, no /v1
    served_model: str
    mode: str  # "open" or "closed"
    users: int  # open: users (greenlets) in all; closed: the concurrency
    duration_s: float
    timeout_s: float
    requests: list[PlannedRequest]
    api_key: str | None = None
    keep_token_ids: bool = True
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> LoadPlan:
        data = json.loads(text)
        data["requests"] = [PlannedRequest(**r) for r in data["requests"]]
        return cls(**data)

    def share(self, index: int, count: int) -> LoadPlan:
        """Worker `index` of `count`: every count-th request of the schedule, and its part of
        the users, so that the workers together send the whole plan."""
        users = self.users // count + (1 if index < self.users % count else 0)
        return LoadPlan(**{**asdict(self), "requests": self.requests[index::count], "users": max(users, 1)})

    @property
    def offered_rate(self) -> float | None:
        """Requests per second the schedule asks for: (n - 1) / (last - first arrival).
        None for closed loop and for a burst (all at one instant)."""
        if self.mode != "open" or len(self.requests) < 2:
            return None
        span = self.requests[-1].arrival_s - self.requests[0].arrival_s
        return (len(self.requests) - 1) / span if span > 0 else None


def plan_from_workload(
    workload: Workload,
    *,
    url: str,
    served_model: str,
    concurrency: int | None = None,
    users: int | None = None,
    duration_s: float = 120.0,
    max_requests: int = 1000,
    timeout_s: float = 60.0,
    api_key: str | None = None,
    keep_token_ids: bool = True,
) -> LoadPlan:
    if duration_s <= 0 or timeout_s <= 0:
        raise ConfigError(f"duration_s and timeout_s must be > 0, got {duration_s}, {timeout_s}")
    if max_requests < 1:
        raise ConfigError(f"max_requests must be >= 1, got {max_requests}")
    if concurrency is not None and concurrency < 1:
        raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
    if users is not None and users < 1:
        raise ConfigError(f"users must be >= 1, got {users}")
    closed = concurrency is not None or workload.mode == "closed"
    notes: list[str] = []
    if workload.mode == "offline" and not closed:
        notes.append("offline workload sent open loop: every request at t=0, one burst")
    requests = list(workload.requests)
    if not closed:
        # offline: every arrival is 0 whatever arrival_s says (Workload's contract)
        arrival = (lambda r: 0.0) if workload.mode == "offline" else (lambda r: r.arrival_s)
        requests = sorted(requests, key=arrival)
        planned = [(r, arrival(r)) for r in requests]
    else:
        planned = [(r, 0.0) for r in requests]
    if len(planned) > max_requests:
        notes.append(f"kept the first {max_requests} of {len(planned)} requests (max_requests)")
        planned = planned[:max_requests]
    if not closed:
        kept = [(r, t) for r, t in planned if t < duration_s]
        if len(kept) < len(planned):
            notes.append(f"left out {len(planned) - len(kept)} requests arriving at or after duration_s={duration_s:g}")
        planned = kept
    if not planned:
        raise ConfigError(f"workload {workload.name!r}: no request left to send (duration_s={duration_s:g})")
    mode = "closed" if closed else "open"
    n_users = (concurrency or workload.concurrency) if closed else (users or min(len(planned), DEFAULT_USERS))
    return LoadPlan(
        url=url,
        served_model=served_model,
        mode=mode,
        users=int(n_users),
        duration_s=duration_s,
        timeout_s=timeout_s,
        requests=[
            PlannedRequest(r.id, t, len(r.prompt_ids), r.max_new_tokens, completion_body(r, served_model))
            for r, t in planned
        ],
        api_key=api_key,
        keep_token_ids=keep_token_ids,
        notes=notes,
    )
