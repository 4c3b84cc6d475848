"""One load process's share of the plan, handed out to its users (runs under gevent).

Users claim requests in schedule order; in open loop a user that claims a request waits
until its arrival time and sends it, so the schedule is global and no user paces itself.
If every user is busy, the next request waits for one: that shows as send lag, which the
fidelity check reports. Waiting is a gevent sleep to within a margin of the time, then a
yielding spin: timers fire late, by how much depends on the host (libev rounds to the
millisecond; an idle virtual CPU wakes up a couple of milliseconds late), so the margin
follows the largest recent oversleep. The spin's idle polls are counted so that CPU spent
waiting is not mistaken for CPU spent working.

The start is a barrier: users open their connections first and report ready; only then
is the start set (a moment every process agrees on; on several machines, as well as their
clocks are synchronised), so connection set-up never eats into the schedule. Just before
it the process freezes what the garbage collector has seen so far and leaves the older
generations alone for the rest of the load: a full collection of the plan's objects takes
milliseconds, long enough to delay a send.

All times are ns from the shared start.
"""

from __future__ import annotations

import gc
import json
import time
from collections import deque

import gevent
import gevent.event
import psutil

from bench.load.plan import LoadPlan
from bench.records import RequestRecord

SPIN_MIN_NS, SPIN_MAX_NS = 500_000, 5_000_000
OVERSLEEP_WINDOW = 32  # sleeps the margin remembers
IDLE_POLL_NS = 20_000  # a yield back within this found no other work
CPU_SAMPLE_S = 0.5


class Dispatcher:
    def __init__(self, plan: LoadPlan):
        self.plan = plan
        self.bodies = [json.dumps(r.body, separators=(",", ":")).encode() for r in plan.requests]
        self.t0_perf_ns = 0  # this process's perf_counter_ns at the shared start, once set
        self.started = gevent.event.Event()
        self.ready_users = 0
        self.duration_ns = int(plan.duration_s * 1e9)
        self.records: list[RequestRecord] = []
        self.finished = gevent.event.Event()
        self._next = 0
        self._in_flight = 0
        self.spin_ns = 0  # wall time of idle polls while spin-waiting
        self._idle_until = 0
        self._oversleeps: deque[int] = deque([1_000_000], maxlen=OVERSLEEP_WINDOW)
        self._cpu = CpuMonitor()
        if not plan.requests:  # a worker whose share is empty has nothing to wait for
            self.finished.set()

    def settle(self) -> None:
        """Once every user is ready, before the start is chosen: a last full collection, then
        young collections only (well under a millisecond each) until the process ends."""
        gc.collect()
        gc.freeze()
        gc.set_threshold(700, 1_000_000, 1_000_000)

    def start(self, start_epoch_ns: int) -> None:
        """Set the shared start (wall clock, ns) and let the users go."""
        self.t0_perf_ns = time.perf_counter_ns() + (start_epoch_ns - time.time_ns())
        self._cpu.start(self)
        self.started.set()

    def now(self) -> int:
        return time.perf_counter_ns() - self.t0_perf_ns

    @property
    def not_sent(self) -> int:
        return len(self.plan.requests) - self._next

    def claim(self) -> int | None:
        """The index of the next request to send, or None when there is nothing more to send
        (plan exhausted, or closed loop past duration_s)."""
        closed_over = self.plan.mode == "closed" and self.now() >= self.duration_ns
        if self._next >= len(self.plan.requests) or closed_over:
            self._check_finished(no_more=True)
            return None
        i = self._next
        self._next += 1
        self._in_flight += 1
        return i

    def done(self, record: RequestRecord) -> None:
        self.records.append(record)
        self._in_flight -= 1
        self._check_finished(no_more=self._next >= len(self.plan.requests))

    def _check_finished(self, no_more: bool) -> None:
        if no_more and self._in_flight == 0 and not self.finished.is_set():
            self._cpu.stop()
            self.finished.set()

    def spin_margin_ns(self) -> int:
        return min(SPIN_MAX_NS, max(SPIN_MIN_NS, 3 * max(self._oversleeps) // 2 + 200_000))

    def wait_until(self, target_ns: int) -> None:
        # a long wait first sleeps to shortly before the time, so that the margin is chosen
        # from what the timers did recently, not when the request was claimed
        coarse = target_ns - SPIN_MAX_NS - 2_000_000
        if coarse - self.now() > 0:
            gevent.sleep((coarse - self.now()) / 1e9)
        margin = self.spin_margin_ns()
        if target_ns - self.now() > margin:
            wake = target_ns - margin
            gevent.sleep((wake - self.now()) / 1e9)
            self._oversleeps.append(max(0, self.now() - wake))
        while self.now() < target_ns:
            start = time.perf_counter_ns()
            gevent.sleep(0)
            end = time.perf_counter_ns()
            # a yield that came straight back found nothing else to do: an idle poll, CPU
            # that would be free for work (counted once where several users spin together)
            if end - start < IDLE_POLL_NS:
                self.spin_ns += max(0, end - max(start, self._idle_until))
                self._idle_until = max(self._idle_until, end)

    def process_stats(self) -> dict:
        """This process's CPU over the load (from the start to the last response)."""
        return self._cpu.stats(self.spin_ns)


class CpuMonitor:
    """CPU of this process: mean over the run and the busiest CPU_SAMPLE_S window. One
    gevent process uses one core, so 100% means the generator could go no faster."""

    def __init__(self):
        self._proc = psutil.Process()
        self._samples: list[float] = []
        self._greenlet = None
        self._start = None
        self._end = None

    def _cpu_s(self) -> float:
        t = self._proc.cpu_times()
        return t.user + t.system

    def start(self, dispatcher: Dispatcher) -> None:
        def loop():
            # measure from the shared start, not from spawning
            gevent.sleep(max(0.0, -dispatcher.now() / 1e9))
            self._start = (time.perf_counter(), self._cpu_s())
            last = self._start
            while True:
                gevent.sleep(CPU_SAMPLE_S)
                now = (time.perf_counter(), self._cpu_s())
                self._samples.append(100 * (now[1] - last[1]) / (now[0] - last[0]))
                last = now

        self._greenlet = gevent.spawn(loop)

    def stop(self) -> None:
        if self._start is not None and self._end is None:
            self._end = (time.perf_counter(), self._cpu_s())
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def stats(self, spin_ns: int) -> dict:
        if self._start is None or self._end is None:
            return {"wall_s": 0.0, "cpu_pct_mean": None, "cpu_pct_max": None, "spin_pct": None, "busy_pct": None}
        wall = self._end[0] - self._start[0]
        cpu_pct = 100 * (self._end[1] - self._start[1]) / wall if wall > 0 else 0.0
        spin_pct = min(100.0, 100 * spin_ns / 1e9 / wall) if wall > 0 else 0.0
        return {
            "wall_s": wall,
            "cpu_pct_mean": cpu_pct,
            "cpu_pct_max": max(self._samples, default=cpu_pct),
            "spin_pct": spin_pct,
            # CPU that did work: spin-waiting burns a core but would yield to any work
            "busy_pct": max(0.0, cpu_pct - spin_pct),
        }
