"""The one error type of the workloads package."""

from __future__ import annotations


class WorkloadError(ValueError):
    """A workload spec, preset or trace file that cannot be built into requests.

    The message names where the problem is (spec key, or file, line and column), the value
    found and what was expected, so that a user can fix it without reading the code.
    """
