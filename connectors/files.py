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
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file()
        and not path.name.startswith(_IGNORED_PREFIXES)
        and not path.name.endswith(_IGNORED_SUFFIXES)
        and any(fnmatch.fnmatch(path.name.lower(), p.lower()) for p in patterns)
    )


def media_type(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"
