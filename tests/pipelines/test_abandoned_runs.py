"""A run whose process is SIGKILLed stays STARTED in Dagster's instance and would hold the
run queue (max_concurrent_runs 1) for good; `fail_abandoned_runs` marks it failed once its
process is gone, and leaves runs whose process is alive alone.

Both kinds of run are real: a run worker started the way Dagster's default run launcher
starts one (`dagster api execute_run`), and a `kommunelake load` process on a demo home."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import serialize_value

from connectors.demo import generate
from lake.home import Home
from pipelines.abandoned_runs import WORKER_TAG, fail_abandoned_runs, process_started
from pipelines.cli import main, prepare
from tests.helpers import kill_load_once_started, wait_until
from tests.pipelines.sleeping_job import sleeping_job

REPO = Path(__file__).resolve().parents[2]


def _status(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def test_a_killed_run_worker_is_marked_failed_and_a_live_one_is_not(tmp_path) -> None:
    (tmp_path / "instance").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "instance")) as instance:
        origin = dg.reconstructable(sleeping_job).get_python_origin()
        run = instance.create_run_for_job(job_def=sleeping_job, job_code_origin=origin)
        args = ExecuteRunArgs(job_origin=origin, run_id=run.run_id, instance_ref=instance.get_ref())
        worker = subprocess.Popen(
            [sys.executable, "-m", "dagster", "api", "execute_run", serialize_value(args)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(
                lambda: _status(instance, run.run_id) == dg.DagsterRunStatus.STARTED,
                "the run to start",
                timeout=60,
            )
            assert fail_abandoned_runs(instance, daemon_runs=True) == []
            # Only the host of the run workers may judge them by their logged pid.
            worker.kill()
            worker.wait()
            assert fail_abandoned_runs(instance, daemon_runs=False) == []
            assert _status(instance, run.run_id) == dg.DagsterRunStatus.STARTED
            [line] = fail_abandoned_runs(instance, daemon_runs=True)
        finally:
            worker.kill()
        assert line.startswith(f"run {run.run_id}: Its run worker (pid {worker.pid} ")
        assert _status(instance, run.run_id) == dg.DagsterRunStatus.FAILURE
        failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert "killed or crashed" in failure[-1].message
        assert fail_abandoned_runs(instance, daemon_runs=True) == []  # once


@pytest.mark.parametrize(
    ("host", "start_shift", "abandoned"),
    [
        pytest.param("this", 0.0, False, id="own-process-alive"),
        pytest.param("this", -3600.0, True, id="pid-reused-by-a-later-process"),
        pytest.param("other", -3600.0, False, id="another-hosts-process"),
    ],
)
def test_a_tagged_run_is_judged_by_its_process_start(host, start_shift, abandoned) -> None:
    """The tag names this test's own process; a recorded start earlier than the process's
    real one means the pid now belongs to another process."""
    started = process_started(os.getpid())
    assert started is not None and started > 0
    name = socket.gethostname() if host == "this" else "elsewhere.example"
    with dg.instance_for_test() as instance:
        run = instance.create_run_for_job(
            job_def=sleeping_job,
            status=dg.DagsterRunStatus.STARTED,
            tags={WORKER_TAG: f"{name}:{os.getpid()}:{started + start_shift}"},
        )
        done = fail_abandoned_runs(instance, daemon_runs=True)
        assert bool(done) is abandoned
        expected = dg.DagsterRunStatus.FAILURE if abandoned else dg.DagsterRunStatus.STARTED
        assert _status(instance, run.run_id) == expected


@pytest.mark.integration
def test_a_killed_kommunelake_load_is_failed_by_the_next_load(tmp_path, monkeypatch, capsys):
    for name in ("KOMMUNELAKE_HOME", "KOMMUNELAKE_PSEUDONYM_KEY", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    home = Home(tmp_path / "home")
    generate(home.root, persons=300, seed=7)
    prepare(home, create_key=True)  # the pseudonym key and the instance, as `demo` leaves them
    instance = dg.DagsterInstance.from_config(str(home.dagster_home))
    select = "key:silver/cpr_persons"

    def started() -> list[dg.RunRecord]:
        return instance.get_run_records(
            filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
        )

    pid, _ = kill_load_once_started(home, select, started, "the load's run to start", 60)
    [record] = started()
    killed = record.dagster_run.run_id
    assert record.dagster_run.tags[WORKER_TAG].split(":")[1] == str(pid)

    capsys.readouterr()
    assert main(["load", "--home", str(home.root), "--select", select]) == 0
    out = capsys.readouterr().out
    assert f"earlier run {killed}: The kommunelake process that ran it (pid {pid} " in out
    assert _status(instance, killed) == dg.DagsterRunStatus.FAILURE
    assert started() == []
    # The same command loaded the file the killed one did not finish.
    assert "cpr_persons" in out and "loaded" in out


def test_a_killed_process_its_parent_has_not_reaped_counts_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert process_started(child.pid) is not None
        os.kill(child.pid, signal.SIGKILL)
        # Not waited for: a zombie keeps its /proc entry until the parent reaps it.
        wait_until(
            lambda: Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z",
            "the child to become a zombie",
            timeout=60,
        )
        assert process_started(child.pid) is None
    finally:
        child.kill()
        child.wait()
