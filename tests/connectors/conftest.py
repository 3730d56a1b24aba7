from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.http import HttpClient, HttpSettings
from tests.connectors.fakeserver import FakeServer, FaultSchedule, Recorder
from tests.connectors.sample_apis import EsIndex, Samples, mount_all

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "real"

# Small timeouts keep slow-answer faults cheap; many attempts keep seeded schedules (at most
# two faults in a row) from exhausting them.
FAST = HttpSettings(connect_timeout=2.0, read_timeout=0.2, max_attempts=6, backoff_base=0.01)


@pytest.fixture(scope="session")
def samples() -> Samples:
    if not REAL.is_dir():
        pytest.fail(f"real fixtures missing at {REAL}: shared/ must sit beside the repo")
    return Samples.load(REAL)


class Service:
    """A fake server with every sample API mounted, and a way to get clients for it."""

    def __init__(self, server: FakeServer, es: EsIndex) -> None:
        self.server = server
        self.es = es
        self.sleeps = Recorder()
        self._clients: list[HttpClient] = []

    def client(self, settings: HttpSettings = FAST, **kwargs: Any) -> HttpClient:
        kwargs.setdefault("sleep", self.sleeps)
        client = HttpClient(settings, base_url=self.server.url, **kwargs)
        self._clients.append(client)
        return client

    def close_clients(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def serve(samples: Samples) -> Iterator[Callable[..., Service]]:
    """serve(faults=None, **FakeServer kwargs) -> a running Service; stopped after the test."""
    running: list[tuple[FakeServer, Service]] = []

    def start(faults: FaultSchedule | None = None, **kwargs: Any) -> Service:
        server = FakeServer(faults=faults, **kwargs).__enter__()
        service = Service(server, mount_all(server, samples))
        running.append((server, service))
        return service

    yield start
    for server, service in reversed(running):
        service.close_clients()  # first, so keep-alive handler threads end
        server.__exit__(None, None, None)
        assert not server.errors, server.errors[0]
