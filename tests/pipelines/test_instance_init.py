"""Several `kommunelake load` processes started together on a fresh home.

Each process opens the Dagster instance in `HOME/dagster/`; the first opening creates its SQLite
storages and stamps their alembic version. Two processes doing that at once stamped two heads,
and every later command on that home failed with "more than one head present"."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROCESSES = 6

# What every writing command does first (`prepare`), then what `kommunelake load` does next;
# all children wait for the same instant so their first openings overlap.
CHILD = """
import os, sys, time
from pathlib import Path
import dagster as dg
from lake.home import resolve_home
from pipelines.cli import prepare
home, start = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
prepare(resolve_home(home))
instance = dg.DagsterInstance.get()
instance.get_runs(limit=1)
"""


def _versions(db: Path) -> list[str]:
    with sqlite3.connect(db) as con:
        return [row[0] for row in con.execute("select version_num from alembic_version")]


def test_processes_opening_a_fresh_instance_together_leave_it_usable(tmp_path, monkeypatch):
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", "k" * 64)
    for attempt in range(3):  # the race is timing-dependent: a few fresh homes
        home = tmp_path / f"home{attempt}"
        start = time.time() + 8  # after every child has imported Dagster
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, str(home), str(start)],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(PROCESSES)
        ]
        for child in children:
            _, err = child.communicate(timeout=120)
            assert child.returncode == 0, err[-2000:]
        dagster = home / "dagster"
        for db in (dagster / "schedules" / "schedules.db", dagster / "history" / "runs.db"):
            assert len(_versions(db)) == 1, (db, _versions(db))
