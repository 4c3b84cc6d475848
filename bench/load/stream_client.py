"""One streamed completion over HTTP, every chunk timed on arrival (runs under gevent).

geventhttpclient reads the response as it comes. Each SSE line is timed when the socket
read that brought it returned: lines that arrived in one read share its time, as they
should. gevent is cooperative, so a greenlet parsing a long burst of chunks would hold up
every other user's send; parsing yields every YIELD_NS, and the timing rule above keeps
those yields out of the chunk times. Tokens are counted as in engines.peers.openai_http:
`token_ids` when the server sends them, else one per text chunk, corrected by
`usage.completion_tokens`.
"""

from __future__ import annotations

import errno
import json
import time
from collections.abc import Callable

import gevent
from geventhttpclient import HTTPClient
from geventhttpclient.response import HTTPConnectionClosed

from bench.load.plan import ENDPOINT
from bench.records import RequestRecord
from engines.peers.openai_http import PLACEHOLDER_ID, chunk_token_ids, error_message

YIELD_NS = 100_000


def _line_is_buffered(response) -> bool:
    """True when the next line is already in the response's buffer, i.e. it came with the
    last socket read. (geventhttpclient keeps the decoded body in `_body_buffer`; without it,
    every line counts as newly read, which only makes burst times a little later.)"""
    return b"\n" in getattr(response, "_body_buffer", b"")


class StreamClient:
    """One connection (kept alive between requests), used by one user at a time."""

    def __init__(self, url: str, timeout_s: float, api_key: str | None = None):
        self.url = url
        self.timeout_s = timeout_s
        self.headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self._http = self._connect()
        self._reused = False  # the connection has served a request: the server may have closed it since

    def _connect(self) -> HTTPClient:
        return HTTPClient.from_url(
            self.url, concurrency=1, connection_timeout=self.timeout_s, network_timeout=self.timeout_s
        )

    def open(self) -> None:
        """Open the connection now (GET /v1/models), before the schedule starts: a burst of
        first requests would otherwise queue behind each other's connects and resolves."""
        self._http.get("/v1/models", headers=self.headers).read()
        self._reused = True

    def _post(self, body: bytes):
        """POST on the kept-alive connection; if the server had closed it while idle (its
        keep-alive timeout), nothing was processed, so send once more on a new connection."""
        try:
            return self._http.request("POST", ENDPOINT, body=body, headers=self.headers)
        except (HTTPConnectionClosed, ConnectionResetError, BrokenPipeError, OSError) as e:
            stale = isinstance(e, HTTPConnectionClosed) or getattr(e, "errno", None) in (errno.ECONNRESET, errno.EPIPE)
            if not (self._reused and stale):
                raise
            self._http.close()
            self._http = self._connect()
            return self._http.request("POST", ENDPOINT, body=body, headers=self.headers)

    def close(self) -> None:
        self._http.close()

    def send(self, body: bytes, record: RequestRecord, clock: Callable[[], int], keep_ids: bool) -> int:
        """Send one request and fill `record` (send_ns included); returns response bytes read.
        The whole request, connection to last byte, is bounded by timeout_s."""
        timer = gevent.Timeout(self.timeout_s)
        timer.start()
        record.send_ns = clock()
        try:
            return self._exchange(body, record, clock, keep_ids)
        except gevent.Timeout as t:
            if t is not timer:
                raise
            self._fail(record, "timeout", f"not finished within timeout_s={self.timeout_s:g}", clock())
        except Exception as e:  # connection refused, reset, a malformed stream: this request only
            self._fail(record, "error", f"{type(e).__name__}: {e}", clock())
        finally:
            timer.close()
        return 0

    def _fail(self, record: RequestRecord, status: str, error: str, t: int) -> None:
        record.status, record.error, record.finish_ns = status, error, t
        # the connection may be mid-response: never reuse it
        self._http.close()
        self._http = self._connect()
        self._reused = False

    def _exchange(self, body: bytes, record: RequestRecord, clock, keep_ids: bool) -> int:
        response = self._post(body)
        self._reused = True
        if response.status_code != 200:
            text = response.read().decode(errors="replace")
            record.status = "rejected" if response.status_code == 429 else "error"
            record.error = f"HTTP {response.status_code}: {error_message(text)}"
            record.finish_ns = clock()
            return len(text)
        nbytes = 0
        usage_tokens = None
        done = False
        t = clock()
        last_yield = time.perf_counter_ns()
        while True:
            buffered = _line_is_buffered(response)
            line = response.readline(b"\n")
            if not line:
                break
            if not buffered:
                t = clock()  # this line needed a socket read: it arrived now
            if time.perf_counter_ns() - last_yield > YIELD_NS:
                gevent.sleep(0)  # let due sends go out
                last_yield = time.perf_counter_ns()
            nbytes += len(line)
            if done or not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                done = True
                continue
            chunk = json.loads(payload)
            if "error" in chunk:
                record.status, record.finish_ns = "error", t
                record.error = f"server error mid-stream: {error_message(payload.decode())}"
                continue
            ids = chunk_token_ids(chunk)
            if ids:
                record.add_chunk(t, ids, keep_ids)
            if chunk.get("usage"):
                usage_tokens = chunk["usage"].get("completion_tokens")
        if record.status != "ok":
            return nbytes
        if not done:
            record.status, record.error, record.finish_ns = "error", "stream ended without [DONE]", clock()
            return nbytes
        missing = (usage_tokens or 0) - record.output_tokens
        if missing > 0 and record.chunk_times_ns:  # tokens the chunks did not show: on the last chunk
            record.chunk_tokens[-1] += missing
            record.output_tokens += missing
            if keep_ids:
                record.output_token_ids.extend([PLACEHOLDER_ID] * missing)
        if not record.chunk_times_ns:
            record.status, record.error, record.finish_ns = "error", "stream finished without a token", clock()
            return nbytes
        record.finish_ns = record.chunk_times_ns[-1]
        return nbytes
