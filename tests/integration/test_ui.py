"""`kommunelake ui` for real: webserver + daemon on 127.0.0.1, a run launched the way the UI
launches it (queued, dequeued by the daemon, executed in a run worker), then a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from connectors.demo import generate
from tests.conftest import TEST_KEY
from tests.helpers import wait_until

pytestmark = pytest.mark.integration

LAUNCH = """mutation($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 10, **kwargs):
    try:
        return (
            httpx.post(url, timeout=timeout, **kwargs)
            if "json" in kwargs
            else httpx.get(url, timeout=timeout)
        )
    except httpx.TransportError:
        return None


def test_ui_runs_a_load_and_stops_cleanly(tmp_path: Path, demo_apis) -> None:
    # load_all includes the API datasets; demo_apis serves them (SOURCES__* reach the UI).
    home = tmp_path / "home"
    generate(home, persons=300)
    port = _free_port()
    env = {**os.environ, "KOMMUNELAKE_PSEUDONYM_KEY": TEST_KEY.decode()}
    env.pop("DAGSTER_HOME", None)
    cli = Path(sys.executable).parent / "kommunelake"
    proc = subprocess.Popen(
        [str(cli), "ui", "--home", str(home), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: (r := _get(f"{base}/server_info")) is not None and r.status_code == 200,
            "the webserver",
            timeout=120,
            interval=1,
        )
        params = {
            "selector": {
                "repositoryLocationName": "kommunelake",
                "repositoryName": "__repository__",
                "pipelineName": "load_all",
            },
            "runConfigData": {},
        }
        # The webserver answers before the code location has loaded; on a busy CI machine
        # loading takes minutes, so wait for it and report a load error instead of timing out.
        location = wait_until(
            lambda: _loaded_location(base), "the code location to load", timeout=300, interval=1
        )
        assert location["locationOrLoadError"]["__typename"] == "RepositoryLocation", location
        # Launching is not tried again (it could launch twice), so it gets time: under a
        # load average of 30 on two cores it took longer than 10 s.
        response = _get(
            f"{base}/graphql", timeout=120, json={"query": LAUNCH, "variables": {"p": params}}
        )
        assert response is not None, "the webserver stopped answering"
        result = response.json()["data"]["launchPipelineExecution"]
        assert result["__typename"] == "LaunchRunSuccess", result
        launched = result["run"]
        status_query = {
            "query": "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
            "variables": {"id": launched["runId"]},
        }

        def finished():
            response = _get(f"{base}/graphql", json=status_query)
            status = response.json()["data"]["runOrError"]["status"] if response else None
            return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

        # The daemon dequeues the run and a run worker executes it; the failures are findings
        # about data (contract warnings), not errors, so the run succeeds.
        assert wait_until(finished, "the run to finish", timeout=240, interval=1) == "SUCCESS"
        assert (home / "serving" / "lake.duckdb").exists()
        children = _children(proc.pid)
        assert len(children) >= 2  # webserver and daemon
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0].decode(errors="replace")
    assert proc.returncode == 0, output
    assert [pid for pid in children if _alive(pid)] == [], "children left after SIGTERM"


def _loaded_location(base: str) -> dict | None:
    response = _get(f"{base}/graphql", json={"query": LOCATIONS})
    if response is None:
        return None
    entries = response.json()["data"]["workspaceOrError"].get("locationEntries") or []
    return next((e for e in entries if e["loadStatus"] == "LOADED"), None)


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
