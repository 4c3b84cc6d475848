"""A progress bar of finished requests with output tok/s, for the runner's stderr.

Rich's auto-refresh thread is off: the bar is redrawn from the run loop at most every
`refresh_s`, so drawing never competes with the engine for the interpreter in between.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class RunProgress:
    def __init__(self, total: int, description: str, enabled: bool = True, refresh_s: float = 0.25):
        self.enabled = enabled
        self.refresh_s = refresh_s
        self.finished = 0
        self.tokens = 0
        self._start = time.perf_counter()
        self._last_draw = 0.0
        self._bar: Progress | None = None
        if enabled:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("req  {task.fields[rate]:>8.1f} out tok/s"),
                TimeElapsedColumn(),
                console=Console(file=sys.stderr),
                auto_refresh=False,
                transient=False,
            )
            self._task = self._bar.add_task(description, total=total, rate=0.0)
            self._bar.start()

    def add_tokens(self, n: int) -> None:
        self.tokens += n

    def request_finished(self) -> None:
        self.finished += 1
        self.draw()

    def draw(self, force: bool = False) -> None:
        if self._bar is None:
            return
        now = time.perf_counter()
        if not force and now - self._last_draw < self.refresh_s:
            return
        self._last_draw = now
        rate = self.tokens / max(now - self._start, 1e-9)
        self._bar.update(self._task, completed=self.finished, rate=rate)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self.draw(force=True)
            self._bar.stop()
            self._bar = None
