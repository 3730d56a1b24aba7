"""File drops: the folder a vendor or colleague puts exports into, one per dataset."""

from __future__ import annotations

import fnmatch
import mimetypes
from pathlib import Path

# Editors and transfers leave these behind; they are never an export.
_IGNORED_PREFIXES = (".", "~$", "_")
_IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".error.txt")


def drop_files(folder: Path, patterns: list[str]) -> list[Path]:
    """Files in `folder` (not sub-folders such as rejected/) matching any pattern, by name."""
    return [path for path in _candidates(folder) if _matches(path, patterns)]


def unmatched_files(folder: Path, patterns: list[str]) -> list[Path]:
    """Files in `folder` that look like exports but match no pattern: never loaded, so the
    person who dropped them must be told (an .ods where the YAML says `*.xlsx`)."""
    return [path for path in _candidates(folder) if not _matches(path, patterns)]


def _candidates(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file()
        and not path.name.startswith(_IGNORED_PREFIXES)
        and not path.name.endswith(_IGNORED_SUFFIXES)
    )


def _matches(path: Path, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path.name.lower(), p.lower()) for p in patterns)


def media_type(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"
