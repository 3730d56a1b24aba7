"""One running set of demo services for the service tests (started once per session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.demo.services import DemoServices, ServiceUrls
from connectors.http import HttpClient, HttpSettings

PERSONS, SEED = 1500, 2026
# One attempt and short timeouts: a service test must see the service's own answer.
LOCAL = HttpSettings(connect_timeout=2.0, read_timeout=10.0, max_attempts=1, trust_env=False)


@pytest.fixture(scope="session")
def services() -> Iterator[DemoServices]:
    running = DemoServices(PERSONS, SEED)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def urls(services: DemoServices) -> ServiceUrls:
    return services.urls


@pytest.fixture
def client() -> Iterator[HttpClient]:
    with HttpClient(LOCAL) as http:
        yield http
