"""File drops: the folder a vendor or colleague puts exports into, one per dataset."""

from __future__ import annotations

import fnmatch
import mimetypes
import os
import re
import time
from pathlib import Path

# Editors and transfers leave these behind; they are never an export. A leading `_` marks a
# job's marker or temporary file (`_SUCCESS`, `_tmp_export.csv`), but a person may also use it
# for a real export, so such a file is named when it matches the pattern (`held_back_files`).
_HELD_BACK_PREFIX = "_"
_IGNORED_PREFIXES = (".", "~$", _HELD_BACK_PREFIX)
# Names a file has while it is still being written: an upload (WinSCP's `.filepart`, other
# clients' `.part`, `.partial`), a browser download, an editor's temporary copy. Loaded, a
# half file would be a short snapshot or a rejection; it is renamed when complete.
PARTIAL_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".filepart", ".crdownload", ".download")
_IGNORED_SUFFIXES = (*PARTIAL_SUFFIXES, ".error.txt")
_IGNORED_NAMES = {"thumbs.db", "desktop.ini"}  # Windows Explorer's, in any shared folder

# The one sub-folder of a drop folder that is the pipeline's own: rejected files and reasons.
REJECTED_FOLDER = "rejected"

# A file modified this recently may still be arriving (a copy, a streaming export or an SFTP
# upload that pauses between blocks): the sensor asks no run for it, and the runs it starts
# leave it in the drop folder, so automation never loads or rejects a half-written file.
SETTLE_SECONDS = 10.0


def settle_seconds() -> float:
    """The settle window: KOMMUNELAKE_SETTLE_SECONDS, read at call time, else SETTLE_SECONDS."""
    return float(os.environ.get("KOMMUNELAKE_SETTLE_SECONDS") or SETTLE_SECONDS)


def is_settled(path: Path, now: float | None = None) -> bool:
    """Whether `path` was last modified at least the settle window before `now`.

    A modification time in the future comes from another clock (a zip's local times unpacked
    on a UTC server, a copy keeping a skewed machine's times) and says nothing about when the
    bytes arrived; waiting for it could take hours or for ever. The file's ctime, which this
    machine's kernel sets whenever the file is written or its times are set, does."""
    now = time.time() if now is None else now
    info = path.stat()
    modified = info.st_ctime if info.st_mtime > now else info.st_mtime
    return now - modified >= settle_seconds()


def drop_files(folder: Path, patterns: list[str]) -> list[Path]:
    """Files in `folder` (not sub-folders such as rejected/) matching any pattern, in name
    order (`name_order`): the order their batches load in."""
    return [path for path in _candidates(folder) if _matches(path, patterns)]


def unmatched_files(folder: Path, patterns: list[str]) -> list[Path]:
    """Files in `folder` that look like exports but match no pattern: never loaded, so the
    person who dropped them must be told (an .ods where the YAML says `*.xlsx`)."""
    return [path for path in _candidates(folder) if not _matches(path, patterns)]


def held_back_files(folder: Path, patterns: list[str]) -> list[Path]:
    """Files in `folder` matching a pattern that are not loaded because their name starts
    with `_`: the person who dropped one may think it loaded."""
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if path.name.startswith(_HELD_BACK_PREFIX) and path.is_file() and _matches(path, patterns)
    )


def subfolder_files(folder: Path) -> dict[Path, int]:
    """The sub-folders of `folder` holding files, with how many (at any depth): only files
    directly in a drop folder load, so a person who dropped a folder (`januar/`, an unpacked
    zip) must be told. rejected/ is the pipeline's own; hidden folders (`.git`) are no one's
    delivery."""
    if not folder.is_dir():
        return {}
    found = {}
    for sub in sorted(folder.iterdir(), key=name_order):
        if sub.name == REJECTED_FOLDER or sub.name.startswith(".") or not sub.is_dir():
            continue
        count = sum(1 for path in sub.rglob("*") if path.is_file())
        if count:
            found[sub] = count
    return found


def name_order(path: Path) -> tuple[tuple[int, int | str], ...]:
    """Sort key: names with numbers compared as numbers. Files dropped together load in this
    order, so `udtraek_9.csv` must come before `udtraek_10.csv`: loaded after it, the older
    snapshot would replace the newer one."""
    parts = re.split(r"([0-9]+)", path.name.casefold())
    key = tuple((1, int(part)) if part[:1].isdigit() else (0, part) for part in parts if part)
    return (*key, (0, path.name))  # `a01` and `a1`: still one order


def _candidates(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        (
            path
            for path in folder.iterdir()
            if path.is_file()
            and not path.name.startswith(_IGNORED_PREFIXES)
            and not path.name.lower().endswith(_IGNORED_SUFFIXES)
            and path.name.lower() not in _IGNORED_NAMES
        ),
        key=name_order,
    )


def _matches(path: Path, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path.name.lower(), p.lower()) for p in patterns)


def media_type(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"
