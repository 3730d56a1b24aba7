"""A small real HTTP server on 127.0.0.1 for connector tests, with fault injection.

Routes are plain functions `Request -> Reply`, registered with `@server.route(method, path)`.
Every request that reaches the server is recorded (arrival time, method, path, headers)
before anything else happens, so tests measure counts and rates where they matter: at the
server. A `FaultSchedule` maps arrival numbers to faults:

- before the route runs (the service refuses): 429 with Retry-After 0 / seconds / HTTP-date /
  huge, 500, 502, 503, a connection reset (RST, no response) and a dropped connection (FIN,
  no response);
- after the route runs (the service acted, the answer is lost): a truncated body (Content-
  Length larger than the bytes sent, then close) and a slow answer (sleeps `slow_seconds`,
  longer than the client's read timeout, then answers into a closed connection).
"""

from __future__ import annotations

import json
import random
import socket
import ssl
import struct
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

REFUSING_FAULTS = (
    "429-zero",
    "429-seconds",
    "429-date",
    "429-huge",
    "500",
    "502",
    "503",
    "reset",
    "drop",
)
LOSING_FAULTS = ("truncate", "slow")
FAULT_KINDS = REFUSING_FAULTS + LOSING_FAULTS
HUGE_RETRY_AFTER = "86400000"  # a thousand days: must be capped, not obeyed


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    fault: str | None = None  # the fault this request will meet (a route may need to know)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: Mapping[str, str] | None = None):
        body = json.dumps(payload, ensure_ascii=False).encode()
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})


@dataclass(frozen=True)
class Arrival:
    index: int
    at: float  # time.monotonic() when the request line and headers were read
    method: str
    path: str
    headers: dict[str, str]
    fault: str | None


class FaultSchedule:
    """Which arrival (0-based, in order of arrival at the server) gets which fault."""

    def __init__(self, faults: Mapping[int, str] | None = None) -> None:
        self.faults = dict(faults or {})
        unknown = set(self.faults.values()) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}")

    @classmethod
    def seeded(
        cls,
        seed: int,
        *,
        arrivals: int = 24,
        rate: float = 0.3,
        max_run: int = 2,
        kinds: tuple[str, ...] = FAULT_KINDS,
    ) -> FaultSchedule:
        """Faults on the first `arrivals` arrivals, each with probability `rate`, never more
        than `max_run` in a row (so a client with more attempts always gets through)."""
        rng = random.Random(seed)
        faults: dict[int, str] = {}
        run = 0
        for index in range(arrivals):
            if run < max_run and rng.random() < rate:
                faults[index] = rng.choice(kinds)
                run += 1
            else:
                run = 0
        return cls(faults)

    @classmethod
    def always(cls, kind: str, count: int = 1000) -> FaultSchedule:
        return cls(dict.fromkeys(range(count), kind))

    def fault_for(self, index: int) -> str | None:
        return self.faults.get(index)

    def __repr__(self) -> str:
        return f"FaultSchedule({self.faults})"


Route = Callable[[Request], Reply]


class FakeServer:
    """A ThreadingHTTPServer on 127.0.0.1:0 in a thread. Use as a context manager."""

    def __init__(
        self,
        *,
        faults: FaultSchedule | None = None,
        slow_seconds: float = 0.3,
        tls: ssl.SSLContext | None = None,
        max_requests: int = 2000,
    ) -> None:
        self.faults = faults or FaultSchedule()
        self.slow_seconds = slow_seconds
        self.tls = tls
        self.max_requests = max_requests
        self.routes: dict[tuple[str, str], Route] = {}
        self.arrivals: list[Arrival] = []
        self.errors: list[str] = []  # exceptions in routes or handlers: a test bug
        self.tls_failures: list[str] = []
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- setup
    def route(self, method: str, path: str) -> Callable[[Route], Route]:
        def register(function: Route) -> Route:
            self.routes[(method.upper(), path)] = function
            return function

        return register

    def __enter__(self) -> FakeServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()  # joins the handler threads
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._httpd is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"

    # -- what happened
    def count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for a in self.arrivals if path is None or a.path == path)

    def faults_injected(self) -> list[str]:
        with self._lock:
            return [a.fault for a in self.arrivals if a.fault]

    def max_in_window(self, seconds: float) -> int:
        """The most arrivals in any half-open window [t, t + seconds)."""
        with self._lock:
            times = sorted(a.at for a in self.arrivals)
        best = 0
        start = 0
        for end, at in enumerate(times):
            while times[start] <= at - seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    # -- used by the handler
    def _arrive(self, method: str, path: str, headers: dict[str, str]) -> Arrival:
        with self._lock:
            index = len(self.arrivals)
            fault = self.faults.fault_for(index)
            arrival = Arrival(index, time.monotonic(), method, path, headers, fault)
            self.arrivals.append(arrival)
            return arrival

    def _dispatch(self, request: Request) -> Reply:
        if len(self.arrivals) > self.max_requests:
            self.errors.append(f"more than {self.max_requests} requests: a runaway client")
            return Reply.json({"error": "request budget exhausted"}, status=400)
        route = self.routes.get((request.method, request.path))
        if route is None:
            return Reply.json({"error": f"no route {request.method} {request.path}"}, 404)
        try:
            return route(request)
        except Exception:
            self.errors.append(traceback.format_exc())
            return Reply.json({"error": "route failed"}, status=400)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins them: nothing outlives the fixture
    block_on_close = True
    fake: FakeServer

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.fake.tls is not None:
            sock = self.fake.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.fake.errors.append(traceback.format_exc())


_RETRY_AFTER = {
    "429-zero": lambda: "0",
    "429-seconds": lambda: "2",
    "429-date": lambda: format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True),
    "429-huge": lambda: HUGE_RETRY_AFTER,
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real services
    timeout = 3  # an idle keep-alive connection is closed after this
    disable_nagle_algorithm = True  # else delayed ACKs add 40 ms per response
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def setup(self) -> None:
        super().setup()
        self.tls_ok = True
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                self.server.fake.tls_failures.append(repr(exc))
                self.tls_ok = False

    def handle(self) -> None:
        if self.tls_ok:
            try:
                super().handle()
            except (ConnectionError, TimeoutError, ssl.SSLError):
                self.close_connection = True

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_DELETE = do_PUT = do_HEAD = do_GET

    def _serve(self) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        arrival = fake._arrive(self.command, split.path, dict(self.headers.items()))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = arrival.fault
        if fault in REFUSING_FAULTS:
            self._refuse(fault)
            return
        query, headers = parse_qs(split.query), dict(self.headers.items())
        request = Request(self.command, split.path, query, headers, body, fault)
        reply = fake._dispatch(request)
        if fault == "truncate":
            self._write(reply, truncate=True)
        elif fault == "slow":
            time.sleep(fake.slow_seconds)
            self._write(reply)
        else:
            self._write(reply)

    def _refuse(self, fault: str) -> None:
        if fault in ("reset", "drop"):
            self.close_connection = True
            if fault == "reset":  # linger 0: close() sends RST instead of FIN
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
            return
        if fault.startswith("429"):
            reply = Reply.json(
                {"error": "too many requests"}, 429, {"Retry-After": _RETRY_AFTER[fault]()}
            )
        else:
            reply = Reply.json({"error": f"injected {fault}"}, int(fault))
        self._write(reply)

    def _write(self, reply: Reply, *, truncate: bool = False) -> None:
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            declared = len(reply.body) + (max(1, len(reply.body)) if truncate else 0)
            self.send_header("Content-Length", str(declared))
            if truncate:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body[: len(reply.body) // 2] if truncate else reply.body)
            self.wfile.flush()
        except (ConnectionError, TimeoutError, ssl.SSLError):
            pass  # the client gave up (e.g. after a read timeout on a slow answer)
        if truncate:
            self.close_connection = True


@dataclass
class Recorder:
    """An injectable `sleep` that records and does not wait."""

    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
