from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.demo.services import DemoServices, ServiceUrls
from lake.home import Home, resolve_home
from pipelines import instance
from pipelines.connector_logs import CONNECTOR_LOGGERS
from tests.lake import objectstores
from tests.postgres import PostgresServer, running_postgres

# ../shared/fixtures/real beside the repository: real responses from public services.
REAL_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "real"
TEST_KEY = b"test-key-" + b"x" * 32


@pytest.fixture(autouse=True)
def _cli_logging_undone() -> Iterator[None]:
    """`main([...])` run in a test sets up the CLI's loggers (stderr handlers, no
    propagation); left so, every later test ran with the CLI's logging instead of its own."""
    loggers = [logging.getLogger(name) for name in ("kommunelake", *CONNECTOR_LOGGERS)]
    saved = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    yield
    for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
        logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


@pytest.fixture
def real_fixtures() -> Path:
    if not REAL_FIXTURES.is_dir():
        pytest.fail(f"real fixtures missing at {REAL_FIXTURES}: shared/ must sit beside the repo")
    return REAL_FIXTURES


@pytest.fixture
def demo_apis(monkeypatch) -> Iterator[ServiceUrls]:
    """The demo's register, statistics, CVR, CKAN and vendor APIs on 127.0.0.1, wired as
    `kommunelake demo` does, for tests that materialize every asset (the API datasets fetch
    from them)."""
    with DemoServices(persons=400) as urls:
        for name, value in urls.environment().items():
            monkeypatch.setenv(name, value)
        yield urls


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the session (tests/postgres.py), started only when
    a test asks for it."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_instance(postgres_server: PostgresServer, monkeypatch) -> str:
    """A new, empty database on `postgres_server`, with KOMMUNELAKE_POSTGRES_* pointing the
    instance of any home prepared in this test at it; returns the database's name."""
    return new_instance_database(postgres_server, monkeypatch)


def new_instance_database(server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """`postgres_instance` on any server (a test's own, when it stops or reconfigures it)."""
    name = f"dagster_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    for variable, value in {
        instance.HOST: server.host,
        instance.PORT: str(server.port),
        instance.USER: server.user,
        instance.PASSWORD: server.password,
        instance.DB: name,
    }.items():
        monkeypatch.setenv(variable, value)
    return name


# --- object stores: one server per test module, started only when a test asks for it ---------


@pytest.fixture(scope="module")
def moto(tmp_path_factory) -> Iterator[objectstores.Server]:
    with objectstores.moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator[objectstores.Server]:
    if not objectstores.azurite_installed():
        pytest.skip(objectstores.AZURITE_MISSING)
    with objectstores.azurite_server(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture
def s3_home(moto, tmp_path, monkeypatch) -> Home:
    """A home whose lake is a fresh bucket on moto, configured through the environment."""
    for name, value in objectstores.s3_environment(moto).items():
        monkeypatch.setenv(name, value)
    bucket = objectstores.create_bucket(moto)
    monkeypatch.setenv("KOMMUNELAKE_LAKE_URI", f"s3://{bucket}/kommune")
    return resolve_home(tmp_path / "home")


@pytest.fixture
def azure_home(azurite, tmp_path, monkeypatch) -> Home:
    """A home whose lake is a fresh container on Azurite, configured through the environment."""
    for name, value in objectstores.azure_environment(azurite).items():
        monkeypatch.setenv(name, value)
    container = objectstores.create_container(azurite)
    monkeypatch.setenv("KOMMUNELAKE_LAKE_URI", f"az://{container}/kommune")
    return resolve_home(tmp_path / "home")
