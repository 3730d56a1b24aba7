"""A per-host rate limit for everything a client sends.

It sits in the transport rather than around `HttpClient.send` so that retries, redirects
and OAuth2 token requests count against the limit too.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from connectors.http.settings import RateLimit


class RateLimiter:
    """At most `requests` per `per_seconds` per host, thread-safe, sliding window.

    A slot is held from the moment a request is sent until its response (or error)
    comes back, and counts in the window from then on. So the n-th request after any
    request starts at least `per_seconds` after that one *finished*, which bounds the
    rate even as measured at the server, whatever the network delay.
    """

    def __init__(
        self,
        requests: int,
        per_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = RateLimit(requests, per_seconds)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._finished: dict[str, deque[float]] = defaultdict(deque)
        self._in_flight: dict[str, int] = defaultdict(int)

    @classmethod
    def from_settings(cls, limit: RateLimit) -> RateLimiter:
        return cls(limit.requests, limit.per_seconds)

    def acquire(self, host: str) -> None:
        limit = self.limit
        with self._lock:
            while True:
                now = self._clock()
                finished = self._finished[host]
                while finished and finished[0] + limit.per_seconds <= now:
                    finished.popleft()
                if len(finished) + self._in_flight[host] < limit.requests:
                    self._in_flight[host] += 1
                    return
                if finished:
                    wait = finished[0] + limit.per_seconds - now
                    self._lock.release()
                    try:
                        self._sleep(wait)
                    finally:
                        self._lock.acquire()
                else:  # every slot is a request still in flight
                    self._changed.wait()

    def release(self, host: str) -> None:
        with self._lock:
            self._in_flight[host] -= 1
            self._finished[host].append(self._clock())
            self._changed.notify_all()

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        self.acquire(host)
        try:
            yield
        finally:
            self.release(host)


def _host_key(url: httpx.URL) -> str:
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{url.host}:{port}"


class RateLimitedTransport(httpx.BaseTransport):
    """Applies a RateLimiter to every request the client sends: retries, redirects and
    token requests included."""

    def __init__(self, inner: httpx.BaseTransport, limiter: RateLimiter) -> None:
        self.inner = inner
        self.limiter = limiter

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # Released once the response head has arrived: the server has seen the request.
        with self.limiter.slot(_host_key(request.url)):
            return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()
