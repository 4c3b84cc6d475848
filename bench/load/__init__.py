"""`bench load`: any OpenAI-compatible server under a workload's load, through locust.

Only the parent side is imported here; locust itself runs in child processes
(bench.load.locust_process), because importing it monkey-patches a process for gevent.
"""

from bench.load.run import LoadConfig, run_load

__all__ = ["LoadConfig", "run_load"]
