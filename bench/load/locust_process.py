"""The load generator process: locust, headless, driven from code (no locustfile).

Run by `bench load` as a child process, never imported by it: importing locust
monkey-patches the whole process for gevent, which must not happen to the caller.

    python -m bench.load.locust_process local  --plan PLAN.json --out OUT.json
    python -m bench.load.locust_process master --plan PLAN.json --out OUT.json --expect-workers N
                                               [--bind-host 127.0.0.1] [--bind-port 5557]
    python -m bench.load.locust_process worker --master-host HOST [--master-port 5557]

local: one process sends the whole plan. master: waits for N workers, sends each its share
of the plan (a locust message), starts the users on them, and collects every worker's raw
records (another message) into OUT.json. Users are locust Users whose one task is: claim
the next request of the schedule, wait for its time, send it, time every chunk.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import gevent
import gevent.event
from locust import User, constant, task
from locust.env import Environment
from locust.exception import StopUser

from bench.load.dispatch import Dispatcher
from bench.load.plan import ENDPOINT, LoadPlan
from bench.load.stream_client import StreamClient
from bench.records import RequestRecord

START_LEAD_S = 0.3  # local: from "all users ready" to the start (users claim and go to sleep meanwhile)
MASTER_LEAD_S = 0.5  # distributed: the start message must reach every worker first
# gevent runs queued callbacks (every yield is one) for up to the switch interval before it
# looks at its timers again: at the default 5 ms, a user parsing a long stream of chunks
# could hold a due send back by milliseconds
SWITCH_INTERVAL_S = 0.0002
CONNECT_TIMEOUT_S = 60.0  # workers connecting, users opening their connections
END_MARGIN_S = 30.0


class BenchUser(User):
    wait_time = constant(0)  # pacing comes from the plan's global schedule, never per user

    def on_start(self) -> None:
        # a worker's users may spawn before its plan message is handled
        while getattr(self.environment, "bench_dispatcher", None) is None:
            gevent.sleep(0.01)
        self.dispatcher: Dispatcher = self.environment.bench_dispatcher
        plan = self.dispatcher.plan
        self.stream = StreamClient(plan.url, plan.timeout_s, plan.api_key)
        try:
            self.stream.open()
        except Exception:
            pass  # the first request will connect, and fail with the reason if it cannot
        self.dispatcher.ready_users += 1
        self.dispatcher.started.wait()
        if plan.mode == "closed":
            self.dispatcher.wait_until(0)

    def on_stop(self) -> None:
        stream = getattr(self, "stream", None)
        if stream is not None:
            stream.close()

    @task
    def send_next(self) -> None:
        d = self.dispatcher
        i = d.claim()
        if i is None:
            raise StopUser()
        item = d.plan.requests[i]
        open_loop = d.plan.mode == "open"
        arrival_ns = round(item.arrival_s * 1e9)
        if open_loop:
            d.wait_until(arrival_ns)
        record = RequestRecord(item.id, arrival_ns, item.prompt_tokens, item.max_tokens)
        nbytes = self.stream.send(d.bodies[i], record, d.now, d.plan.keep_token_ids)
        if not open_loop:
            record.arrival_ns = record.send_ns  # a closed-loop client arrives when it sends
        self.environment.events.request.fire(
            request_type="POST",
            name=ENDPOINT,
            response_time=((record.finish_ns or record.send_ns) - record.send_ns) / 1e6,
            response_length=nbytes,
            exception=None if record.status == "ok" else RuntimeError(f"{record.status}: {record.error}"),
            context={},
        )
        d.done(record)


def _deadline_s(plan: LoadPlan, lead_s: float) -> float:
    return lead_s + plan.duration_s + plan.timeout_s + END_MARGIN_S


def _all_ready(runner, d: Dispatcher) -> bool:
    """Wait until every user locust spawned here has its connection open, then settle."""
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while not (getattr(runner, "target_user_count", None) and d.ready_users >= runner.target_user_count):
        if time.monotonic() > deadline:
            print(f"only {d.ready_users} users ready after {CONNECT_TIMEOUT_S:g} s; starting anyway", file=sys.stderr)
            break
        gevent.sleep(0.01)
    d.settle()
    return d.ready_users >= (getattr(runner, "target_user_count", None) or 0)


def _wait(event: gevent.event.Event, timeout_s: float) -> bool:
    """True when the load finished; False at the deadline or on Ctrl-C / SIGINT from
    `bench load` (what has finished by then is still written)."""
    try:
        return bool(event.wait(timeout=timeout_s))
    except KeyboardInterrupt:
        return False


def _write(out: Path, data: dict) -> None:
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    tmp.replace(out)


def _output(records: list, processes: list[dict], not_sent: int, complete: bool, start_epoch_ns: int) -> dict:
    return {
        "records": records,
        "processes": processes,
        "not_sent": not_sent,
        "complete": complete,
        "start_epoch_ns": start_epoch_ns,
    }


def run_local(plan: LoadPlan, out: Path) -> int:
    env = Environment(user_classes=[BenchUser])
    runner = env.create_local_runner()
    d = Dispatcher(plan)
    env.bench_dispatcher = d
    runner.start(plan.users, spawn_rate=max(plan.users, 1) * 100)
    _all_ready(runner, d)
    start = time.time_ns() + int(START_LEAD_S * 1e9)
    d.start(start)
    complete = _wait(d.finished, _deadline_s(plan, START_LEAD_S))
    runner.quit()
    stats = {"role": "local", **d.process_stats()}
    _write(out, _output([asdict(r) for r in d.records], [stats], d.not_sent, bool(complete), start))
    return 0 if complete else 3


def run_master(plan: LoadPlan, out: Path, expect_workers: int, bind_host: str, bind_port: int) -> int:
    env = Environment(user_classes=[BenchUser])
    runner = env.create_master_runner(bind_host, bind_port)
    results: dict[str, dict] = {}
    ready: set[str] = set()
    all_in, all_ready = gevent.event.Event(), gevent.event.Event()

    def on_records(environment, msg, **kwargs):
        results[msg.node_id] = msg.data
        if len(results) >= expect_workers:
            all_in.set()

    def on_ready(environment, msg, **kwargs):
        ready.add(msg.node_id)
        if len(ready) >= expect_workers:
            all_ready.set()

    runner.register_message("bench_records", on_records)
    runner.register_message("bench_ready", on_ready)
    waited = 0.0
    while runner.worker_count < expect_workers:
        if waited > CONNECT_TIMEOUT_S:
            print(f"only {runner.worker_count} of {expect_workers} workers connected within "
                  f"{CONNECT_TIMEOUT_S:g} s to {bind_host}:{bind_port}", file=sys.stderr)
            runner.quit()
            return 4
        gevent.sleep(0.1)
        waited += 0.1
    workers = sorted(runner.clients.keys())[:expect_workers]
    for i, client_id in enumerate(workers):
        runner.send_message("bench_plan", {"plan": plan.share(i, len(workers)).to_json()}, client_id=client_id)
    runner.start(plan.users, spawn_rate=max(plan.users, 1) * 100)
    if not all_ready.wait(timeout=CONNECT_TIMEOUT_S):
        print(f"only {len(ready)} of {len(workers)} workers ready; starting anyway", file=sys.stderr)
    start = time.time_ns() + int(MASTER_LEAD_S * 1e9)
    for client_id in workers:
        runner.send_message("bench_start", {"start_epoch_ns": start}, client_id=client_id)
    complete = _wait(all_in, _deadline_s(plan, MASTER_LEAD_S))
    runner.quit()
    records, processes, not_sent = [], [], 0
    for i, client_id in enumerate(workers):
        data = results.get(client_id)
        if data is None:
            processes.append({"role": f"worker {i}", "missing": True})
            continue
        records.extend(data["records"])
        processes.append({"role": f"worker {i}", **data["process"]})
        not_sent += data["not_sent"]
    _write(out, _output(records, processes, not_sent, bool(complete), start))
    return 0 if complete else 3


def run_worker(master_host: str, master_port: int) -> int:
    env = Environment(user_classes=[BenchUser])
    runner = env.create_worker_runner(master_host, master_port)

    def on_plan(environment, msg, **kwargs):
        d = Dispatcher(LoadPlan.from_json(msg.data["plan"]))
        environment.bench_dispatcher = d

        def report_ready():
            _all_ready(runner, d)
            runner.send_message("bench_ready")

        gevent.spawn(report_ready)

    def on_start(environment, msg, **kwargs):
        d = environment.bench_dispatcher
        d.start(msg.data["start_epoch_ns"])

        def report():
            d.finished.wait()
            payload = {"records": [asdict(r) for r in d.records], "process": d.process_stats(), "not_sent": d.not_sent}
            runner.send_message("bench_records", payload)

        gevent.spawn(report)

    runner.register_message("bench_plan", on_plan)
    runner.register_message("bench_start", on_start)
    runner.greenlet.join()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.load.locust_process")
    p.add_argument("role", choices=["local", "master", "worker"])
    p.add_argument("--plan", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--expect-workers", type=int, default=1)
    p.add_argument("--bind-host", default="127.0.0.1")
    p.add_argument("--bind-port", type=int, default=5557)
    p.add_argument("--master-host", default="127.0.0.1")
    p.add_argument("--master-port", type=int, default=5557)
    args = p.parse_args(argv)
    gevent.setswitchinterval(SWITCH_INTERVAL_S)
    if args.role == "worker":
        return run_worker(args.master_host, args.master_port)
    if args.plan is None or args.out is None:
        p.error(f"{args.role} needs --plan and --out")
    plan = LoadPlan.from_json(args.plan.read_text())
    if args.role == "local":
        return run_local(plan, args.out)
    return run_master(plan, args.out, args.expect_workers, args.bind_host, args.bind_port)


if __name__ == "__main__":
    sys.exit(main())
