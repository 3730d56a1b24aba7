"""The per-host rate limit, measured where it matters: at the server, on a real clock."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from connectors.http import HttpClient, RateLimit, RateLimiter
from connectors.paging import paginate
from tests.connectors.conftest import FAST
from tests.connectors.fakeserver import FaultSchedule
from tests.connectors.sample_apis import SCENARIOS

LIMIT = RateLimit(requests=10, per_seconds=0.5)


def run_in_threads(client: HttpClient, names: list[str]) -> dict[str, list[Any]]:
    results: dict[str, list[Any]] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        scenario = SCENARIOS[name]
        try:
            pages = paginate(client, scenario.first_request(client), scenario.strategy)
            results[name] = [record for page in pages for record in page.records]
        except BaseException as exc:  # handed to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors[0]
    return results


def test_the_rate_limit_is_never_exceeded_at_the_server(serve, samples):
    # Eight loads at once through one client, with 429s and 503s whose retries count too.
    faults = FaultSchedule({3: "429-zero", 8: "503", 13: "reset", 21: "429-zero", 27: "500"})
    service = serve(faults=faults)
    client = service.client(replace(FAST, rate_limit=LIMIT, read_timeout=2.0))
    started = time.monotonic()

    results = run_in_threads(client, sorted(SCENARIOS))

    elapsed = time.monotonic() - started
    for name, records in results.items():
        assert records == SCENARIOS[name].expected(samples), name
    requests = service.server.count()
    assert requests >= 36
    assert service.server.max_in_window(LIMIT.per_seconds) <= LIMIT.requests
    # ...and the limiter is not merely slow: it uses its budget.
    assert service.server.max_in_window(LIMIT.per_seconds) >= LIMIT.requests - 2
    assert elapsed >= (requests // LIMIT.requests - 1) * LIMIT.per_seconds


def test_without_a_limit_the_same_load_is_faster_than_the_limit(serve):
    # The control: the measurement above would catch a limiter that did nothing.
    service = serve()
    run_in_threads(service.client(FAST), sorted(SCENARIOS))
    assert service.server.max_in_window(LIMIT.per_seconds) > LIMIT.requests


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_limiter_spaces_requests_in_a_sliding_window():
    clock = FakeClock()
    limiter = RateLimiter(3, 1.0, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(7):
        with limiter.slot("api.dataforsyningen.dk:443"):
            starts.append(clock.now)
            clock.now += 0.1  # each request takes 0.1 s
    # The 4th may start 1 s after the 1st *finished* (0.1), the 7th 1 s after the 4th.
    assert starts == pytest.approx([0.0, 0.1, 0.2, 1.1, 1.2, 1.3, 2.2])
    assert all(s > 0 for s in clock.slept)


def test_hosts_have_separate_budgets():
    clock = FakeClock()
    limiter = RateLimiter(1, 10.0, clock=clock, sleep=clock.sleep)
    for host in ("a:443", "b:443", "c:443"):
        with limiter.slot(host):
            pass
    assert clock.slept == []
    with limiter.slot("a:443"):
        pass
    assert clock.slept == [10.0]


def test_one_limiter_can_be_shared_by_two_clients(serve):
    service = serve()
    limiter = RateLimiter(4, 0.3)
    first = service.client(FAST, limiter=limiter)
    second = service.client(FAST, limiter=limiter)
    for _ in range(6):
        first.get("/api/pxwebapi/v2/tables")
        second.get("/api/pxwebapi/v2/tables")
    assert service.server.max_in_window(0.3) <= 4
