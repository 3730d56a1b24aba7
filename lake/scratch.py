"""Temporary folders under a home's `tmp/` that a killed process does not leave for ever.

A load keeps a batch's failing rows (`quarantine-*`) and a remote landed file (`landed-*`)
in a temporary folder that is removed on the way out; a SIGKILLed process (an operator, the
OOM killer, a reboot) never gets there, and its folder, as big as the file when every row
fails, stayed. Each folder now holds a flock on its `.held` file while in use, and the next
folder of the same kind removes those whose lock nobody holds: the kernel drops a dead
process's flock, so a folder in use by a live load (another dataset, another process) is
never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HELD = ".held"
# A folder's lock is taken just after the folder is made: younger folders are left alone,
# so one being made is never taken for abandoned.
GRACE_SECONDS = 60.0
# Folders without a `.held` file were made before it existed (or their process died before
# it was made): removed once no load could still be using them.
UNMARKED_SECONDS = 24 * 3600.0


@contextlib.contextmanager
def scratch_folder(scratch: Path, prefix: str) -> Iterator[Path]:
    """A new temporary folder `scratch/<prefix>…`, removed on exit; abandoned ones of the
    same prefix are removed first."""
    scratch.mkdir(parents=True, exist_ok=True)
    sweep(scratch, prefix)
    with tempfile.TemporaryDirectory(dir=scratch, prefix=prefix) as name:
        folder = Path(name)
        with open(folder / HELD, "w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)  # released by the kernel if this process dies
            yield folder


def sweep(scratch: Path, prefix: str) -> list[Path]:
    """Remove the `prefix` folders in `scratch` that no live process holds; returns them."""
    removed: list[Path] = []
    now = time.time()
    for folder in scratch.glob(f"{prefix}*"):
        try:
            if _abandoned(folder, now):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        except FileNotFoundError:  # removed meanwhile, by its process or another sweep
            continue
    return removed


def _abandoned(folder: Path, now: float) -> bool:
    held = folder / HELD
    if not held.exists():
        return folder.is_dir() and now - folder.stat().st_mtime > UNMARKED_SECONDS
    if now - held.stat().st_mtime < GRACE_SECONDS:
        return False
    with open(held) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live process holds it
        return True
