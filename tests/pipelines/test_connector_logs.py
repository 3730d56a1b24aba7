"""The connectors' warnings (HTTP retries, SFTP pickups) reach the run's event log, with
CPR numbers masked: a register lookup by CPR has the number in the URL a retry names. The
error of a lookup that keeps failing is stored masked too."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

import connectors
from lake.home import Home
from lake.privacy import RedactCprFilter
from pipelines.cli import REPO_ROOT, main
from pipelines.connector_logs import CONNECTOR_LOGGERS, mask_connector_logs
from tests.connectors.fakeserver import FakeServer, FaultSchedule, Reply
from tests.helpers import files_holding

CPR, CPR_DASHED = "0101901234", "010190-1234"  # synthetic

ORDER = {
    "order_id": "WO-000001",
    "category": "Hul i vejen",
    "status": "modtaget",
    "priority": "normal",
    "street": "Skolevej",
    "house_number": "1",
    "postcode": "8000",
    "district": "Midtby",
    "address_id": None,
    "reported_at": "2026-01-05T08:00:00Z",
    "updated_at": "2026-01-05T09:00:00Z",
    "closed_at": None,
}


def _connector_loggers() -> set[str]:
    """Every logger the connectors package creates (its modules imported)."""
    for module in pkgutil.walk_packages(connectors.__path__, "connectors."):
        importlib.import_module(module.name)
    return {
        name
        for name, logger in logging.Logger.manager.loggerDict.items()
        if name.startswith("connectors.") and isinstance(logger, logging.Logger)
    }


def test_every_connector_logger_is_managed_by_dagster_and_masked() -> None:
    managed = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())["python_logs"]
    assert _connector_loggers() <= set(CONNECTOR_LOGGERS)
    assert set(CONNECTOR_LOGGERS) <= set(managed["managed_python_loggers"])


def test_a_masked_connector_record_keeps_its_message_and_traceback_shape(caplog) -> None:
    mask_connector_logs()
    mask_connector_logs()  # twice: still one filter
    logger = logging.getLogger("connectors.http")
    assert sum(isinstance(f, RedactCprFilter) for f in logger.filters) == 1
    with caplog.at_level(logging.WARNING, logger="connectors.http"):
        try:
            raise ValueError(f"no person {CPR_DASHED}")
        except ValueError:
            logger.warning(
                "GET %s: %s", f"https://register.example/person/{CPR}", 503, exc_info=True
            )
    assert "person/NNNNNNNNNN: 503" in caplog.text
    assert "ValueError: no person NNNNNN-NNNN" in caplog.text
    assert CPR not in caplog.text and CPR_DASHED not in caplog.text


def _register(monkeypatch, faults: FaultSchedule) -> Iterator[FakeServer]:
    """A vendor REST API looked up by CPR in the path."""
    server = FakeServer(faults=faults)

    @server.route("GET", f"/borger/{CPR}/work-orders")
    def _orders(request):
        page = int(request.arg("page", "1"))
        return Reply.json({"data": {"items": [ORDER] if page == 1 else []}})

    with server:
        monkeypatch.setenv("SOURCES__WORK_ORDERS__URL", f"{server.url}/borger/{CPR}/work-orders")
        monkeypatch.setenv("SOURCES__WORK_ORDERS__TOKEN", "token-for-the-test")
        yield server


@pytest.fixture
def register(monkeypatch) -> Iterator[FakeServer]:
    """Refusing the first two requests."""
    yield from _register(monkeypatch, FaultSchedule({0: "429-zero", 1: "429-zero"}))


@pytest.fixture
def register_down(monkeypatch) -> Iterator[FakeServer]:
    """Refusing every request."""
    yield from _register(monkeypatch, FaultSchedule.always("429-zero"))


def _load(tmp_path: Path, monkeypatch) -> tuple[Home, int]:
    for name in ("KOMMUNELAKE_HOME", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", "k" * 40)
    home = Home(tmp_path / "home")
    return home, main(["load", "--home", str(home.root), "--select", "key:silver/road_work_orders"])


def test_retry_warnings_reach_the_run_log_with_the_cpr_masked(
    tmp_path: Path, monkeypatch, capsys, register: FakeServer
) -> None:
    home, code = _load(tmp_path, monkeypatch)
    assert code == 0
    out, err = capsys.readouterr()
    assert register.faults_injected() == ["429-zero", "429-zero"]

    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs()
        messages = [e.user_message for e in instance.all_logs(run.run_id)]
    retries = [m for m in messages if "attempt 1 of" in m or "attempt 2 of" in m]
    assert len(retries) == 2, messages
    assert all("/borger/NNNNNNNNNN/work-orders" in m for m in retries)
    # The CLI shows them too, as they happen.
    [shown] = [line for line in err.splitlines() if "attempt 2 of" in line]
    assert "/borger/NNNNNNNNNN/work-orders?page=1" in shown
    # Not in the event log, the compute logs, stderr or anything else of the instance.
    assert CPR not in out + err
    stored = [p for p in home.dagster_home.rglob("*") if p.is_file()]
    assert not files_holding(stored, [CPR])


def test_a_lookup_that_keeps_failing_is_stored_and_printed_masked(
    tmp_path: Path, monkeypatch, capsys, register_down: FakeServer
) -> None:
    home, code = _load(tmp_path, monkeypatch)
    out, err = capsys.readouterr()
    assert code == 1 and register_down.count() > 2
    # The CLI still says what failed, where and what to do, in one line.
    [failed] = [line for line in err.splitlines() if line.startswith("FAILED")]
    assert "/borger/NNNNNNNNNN/work-orders" in failed and "HTTP 429" in failed
    assert CPR not in out + err
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs()
        [failure] = [
            e
            for e in instance.all_logs(run.run_id)
            if e.is_dagster_event and e.dagster_event.is_step_failure
        ]
    data = failure.dagster_event.step_failure_data
    assert "NNNNNNNNNN" in data.error.message and data.error.cause is None
    assert "HttpError" in data.user_failure_data.metadata["traceback"].value
    stored = [p for p in home.dagster_home.rglob("*") if p.is_file()]
    assert not files_holding(stored, [CPR])
