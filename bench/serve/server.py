"""Running the app under uvicorn: in the foreground (`bench serve`) or on a background thread
(tests, benchmarks, and anything that wants a server and a client in one process).
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from bench.serve.app import ServeOptions, build_app
from engines.api import Engine


def _uvicorn_config(app, host: str, port: int, log_level: str, quiet: bool) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,  # one log line per request would cost more than the mock engine's step
        lifespan="on",
        timeout_graceful_shutdown=5,
        # a background server must not reconfigure the host process's logging
        log_config=None if quiet else uvicorn.config.LOGGING_CONFIG,
    )


def serve(
    engine: Engine,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    options: ServeOptions | None = None,
    log_level: str = "info",
) -> None:
    """Serve `engine` until interrupted (Ctrl-C). The caller closes the engine afterwards."""
    app = build_app(engine, options)
    uvicorn.Server(_uvicorn_config(app, host, port, log_level, quiet=False)).run()


class BackgroundServer:
    """A server on its own thread, bound before it starts (port 0: a free port), so `url` is
    known at once. Use as a context manager, or call stop()."""

    def __init__(self, engine: Engine, host: str = "127.0.0.1", port: int = 0, *, options: ServeOptions | None = None):
        self.app = build_app(engine, options)
        self.state = self.app.state.server
        # proto given explicitly: asyncio sets TCP_NODELAY only on sockets whose proto is TCP,
        # and without it Nagle holds each streamed chunk for the delayed ACK (~40 ms)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        self._server = uvicorn.Server(_uvicorn_config(self.app, self.host, self.port, "warning", quiet=True))
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])  # uvloop and httptools when installed
        except BaseException as e:  # surfaced by start() or stop()
            self._failure = e

    def start(self, timeout_s: float = 10.0) -> BackgroundServer:
        self._thread = threading.Thread(target=self._run, name=f"server-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server on {self.url} did not start: {self._failure!r}")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_server(engine: Engine, host: str = "127.0.0.1", port: int = 0, *, options: ServeOptions | None = None) -> BackgroundServer:
    """Start serving `engine` on a background thread; returns once it accepts connections."""
    return BackgroundServer(engine, host, port, options=options).start()
