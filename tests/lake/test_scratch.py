"""Temporary folders under a home's tmp/: one a dead process left is removed, one in use never."""

from __future__ import annotations

import os
import time
from pathlib import Path

from lake.scratch import HELD, scratch_folder, sweep


def _aged(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def _left_behind(scratch: Path, name: str, age: float, *, marked: bool = True) -> Path:
    folder = scratch / name
    folder.mkdir(parents=True)
    (folder / "quarantine-00000.parquet").write_bytes(b"rows")
    if marked:
        (folder / HELD).touch()  # its flock went with its process
        _aged(folder / HELD, age)
    return _aged(folder, age)


def test_only_folders_no_live_process_holds_are_swept(tmp_path) -> None:
    scratch = tmp_path / "tmp"
    dead = _left_behind(scratch, "quarantine-dead", 3600)
    young = _left_behind(scratch, "quarantine-young", 1)  # its lock may be about to be taken
    legacy = _left_behind(scratch, "quarantine-legacy", 2 * 24 * 3600, marked=False)
    recent_legacy = _left_behind(scratch, "quarantine-recent", 3600, marked=False)
    other = _left_behind(scratch, "landed-dead", 3600)  # another kind: its own sweep

    with scratch_folder(scratch, "quarantine-") as live:
        _aged(live / HELD, 3600)  # a long load: old, but held
        assert sweep(scratch, "quarantine-") == []
        assert live.is_dir()

    assert not dead.exists() and not legacy.exists()
    assert young.is_dir() and recent_legacy.is_dir() and other.is_dir()
    assert not live.exists()  # removed on the way out, as before
