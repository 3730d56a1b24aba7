"""Small helpers shared by tests that land, break and fix a home's deliveries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import pytest

from lake.home import Home
from lake.landing import HashCache, land_file

T = TypeVar("T")


def redeliver_cpr(home: Home, old: str, new: str, name: str = "cpr_personer.csv") -> None:
    """Deliver `name`: the latest CPR extract (in the drop folder, or rejected and moved to
    rejected/) with `old` replaced by `new` once; earlier files leave the drop folder, as when a
    sender replaces an export."""
    folder = home.drop / "cpr_persons"
    latest = max(
        [*folder.glob("*.csv"), *folder.glob("rejected/*.csv")], key=lambda p: p.stat().st_mtime_ns
    )
    text = latest.read_text()
    for path in folder.glob("*.csv"):
        path.unlink()
    (folder / name).write_text(text.replace(old, new, 1))


def land_path(home: Home, path: Path, dataset: str, hashes: HashCache | None = None):
    """`land_file` for a drop-folder CSV at `path`, into `home`'s landing and manifest."""
    return land_file(
        home.landing_uri,
        home.manifest_uri,
        dataset=dataset,
        source="drop",
        path=path,
        media_type="text/csv",
        hashes=hashes,
    )


def files_holding(paths: Iterable[Path], clear: Iterable[str]) -> dict[Path, list[str]]:
    """The files among `paths` whose raw bytes contain any of the `clear` identifiers, with
    those found: how the privacy tests scan Delta logs, the serving file and the Dagster
    instance (uncompressed files; Parquet is read as tables instead)."""
    wanted = [c.encode() for c in clear]
    found = {}
    for path in paths:
        data = path.read_bytes()
        if hits := [c.decode() for c in wanted if c in data]:
            found[path] = hits
    return found


def wait_until(predicate: Callable[[], T], what: str, timeout: float, interval: float = 0.05) -> T:
    """Poll `predicate` until it returns something true, and return that; fail the test
    naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
    return value


def kill_load_once_started(
    home: Home, select: str, started: Callable[[], T], what: str, timeout: float
) -> tuple[int, T]:
    """Start `kommunelake load --select select` on `home` in a child process (it inherits
    this test's environment), SIGKILL it once `started` returns something true, and return
    the child's pid and that value: a run left STARTED by a worker that is gone."""
    command = ["load", "--home", str(home.root), "--select", select]
    load = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", *command],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        value = wait_until(started, what, timeout=timeout, interval=0.2)
        os.kill(load.pid, signal.SIGKILL)
    finally:
        load.kill()
        load.wait()
    return load.pid, value
