"""`kommunelake ui` when one of its two processes stops by itself: the command must fail.

The webserver and the daemon are stood in for by small Python processes, so the test says
what `ui` does with their exits without starting Dagster (tests/integration/test_ui.py runs
the real ones)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pipelines.cli as cli
from pipelines import instance as pg
from tests.conftest import TEST_KEY

# What each stand-in does: the webserver fails at once, as when its port is taken.
STAND_INS = {
    "dagster-webserver": "import sys; print('address already in use'); sys.exit(1)",
    "dagster-daemon": "import time; time.sleep(120)",
}


@pytest.fixture(autouse=True)
def _signal_handlers_restored() -> Iterator[None]:
    """`ui` makes SIGTERM raise KeyboardInterrupt in its process; not in pytest's after."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_a_webserver_that_stops_by_itself_fails_the_command(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    for variable in (pg.HOST, "DAGSTER_HOME", "KOMMUNELAKE_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())
    started: list[subprocess.Popen] = []
    popen = subprocess.Popen

    def stand_in(command: list[str], **kwargs) -> subprocess.Popen:
        name = Path(command[0]).name
        proc = popen([sys.executable, "-c", STAND_INS[name]], **kwargs)
        proc.args = command  # as the real one: the script it ran
        started.append(proc)
        return proc

    monkeypatch.setattr(cli.subprocess, "Popen", stand_in)
    assert cli.main(["ui", "--home", str(tmp_path / "home"), "--port", "3999"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("kommunelake ui: dagster-webserver stopped by itself"), line
    assert "exit code 1" in line
    assert "--port" in line
    # The daemon was stopped with it, not left running.
    assert [proc.poll() is not None for proc in started] == [True, True]
