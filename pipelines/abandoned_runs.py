"""Runs whose process died: marked failed, so the queue does not wait on them for ever.

A SIGKILLed `kommunelake load` leaves its run STARTED in Dagster's instance, and so does a
daemon-launched run whose code server went down with it (a restart of `make ui`, a reboot):
a code server marks its own dead workers' runs failed, but only while it lives. An
in-progress run counts against `max_concurrent_runs` and holds its tables' pools
(dagster.yaml), so every run queued after it (by the drop sensor, the UI or a schedule) would
wait for good. Dagster's run monitoring cannot tell either: the default run launcher has no
worker health check. So we look for the process ourselves:

- `kommunelake load` and `reload` tag their runs with their own process (`WORKER_TAG`);
- a run the daemon launched logs "Started process for run (pid: N)" with the pid as metadata;
  the default run launcher starts it on the host of the code location, where the drop
  sensor that calls `fail_abandoned_runs` runs too.

A process is only taken for dead when its pid is gone or now belongs to a process that
started after the run did (a pid reused). The lake itself needs no repair: a killed load
leaves no half batch (README, "Crash safety"), and its files are still in drop/.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import dagster as dg

WORKER_TAG = "kommunelake/worker"  # "<host>:<pid>:<process start, epoch s>"
_START_SLACK = 2.0  # seconds: /proc start times are in clock ticks, run times in floats


def this_worker() -> str:
    """The `WORKER_TAG` value for the current process."""
    started = process_started(os.getpid())
    return f"{socket.gethostname()}:{os.getpid()}:{started if started is not None else ''}"


def process_started(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), or None if it does not exist or has
    exited (a zombie its parent has not reaped yet).

    Linux only reads the start time (from /proc); elsewhere an existing pid gives `0.0`,
    i.e. "exists, start unknown", which `fail_abandoned_runs` takes as alive."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return None
        if fields[0] in ("Z", "X"):  # field 3 of stat(5), the state: zombie or dead
            return None
        ticks = int(fields[19])  # field 22: start time in clock ticks after boot
        return _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # exists, owned by someone else
    return 0.0


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise RuntimeError("/proc/stat has no btime line")


def fail_abandoned_runs(
    instance: dg.DagsterInstance,
    *,
    daemon_runs: bool,
    started: Callable[[int], float | None] = process_started,
) -> list[str]:
    """Mark failed every in-progress run whose process is gone; returns what was done, one
    line per run (for the caller to print or log).

    `daemon_runs`: also judge runs without `WORKER_TAG` by the pid their run worker logged.
    Only true where the caller runs on the host of the run workers (the drop sensor, in the
    code location, with the default run launcher)."""
    host = socket.gethostname()
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
    )
    done = []
    for record in records:
        run = record.dagster_run
        worker = run.tags.get(WORKER_TAG)
        if worker is not None:
            worker_host, pid_text, start_text = worker.rsplit(":", 2)
            if worker_host != host:
                continue  # another machine's process: not ours to judge
            pid, begun = int(pid_text), float(start_text) if start_text else None
            what = f"The kommunelake process that ran it (pid {pid} on {host})"
            then = "Run the same `kommunelake` command again to finish the work."
        elif daemon_runs:
            pid = _logged_pid(instance, run.run_id)
            if pid is None:
                continue
            begun = record.start_time
            what = f"Its run worker (pid {pid} on {host})"
            # run_retries in dagster.yaml retries runs that failed other than by a step.
            then = "Dagster retries it if run_retries allows; otherwise load again from the UI."
        else:
            continue
        if _alive(started(pid), begun):
            continue
        message = (
            f"{what} ended without finishing the run: killed or crashed. The run is marked "
            f"failed so queued runs can start; a killed load leaves no half batch. {then}"
        )
        instance.report_run_failed(run, message)
        done.append(f"run {run.run_id}: {message}")
    return done


def _alive(process_start: float | None, worker_start: float | None) -> bool:
    if process_start is None:
        return False
    if process_start == 0.0 or worker_start is None:
        return True  # exists, and its start cannot be compared
    # A process that started after the worker did holds a reused pid.
    return process_start <= worker_start + _START_SLACK


def _logged_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the run's latest worker ("Started process for run/resuming job")."""
    pid = None
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        if event is None or event.engine_event_data is None:
            continue
        logged = event.engine_event_data.metadata.get("pid")
        if logged is not None and (event.message or "").startswith("Started process for"):
            pid = int(logged.value)
    return pid
