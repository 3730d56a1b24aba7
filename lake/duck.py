"""DuckDB connections that can read Delta offline.

DuckDB is pinned to 1.4.4 with the `delta` extension from the duckdb-ext-delta wheel (see the
pin in pyproject.toml for why): the extension directory points at that wheel's files and
autoinstall is off, so nothing is ever downloaded and `delta_scan` loads on first use.
"""

from __future__ import annotations

from pathlib import Path

import duckdb


def extension_directory() -> str:
    import duckdb_ext  # namespace package shipped by duckdb-ext-delta

    for base in duckdb_ext.__path__:
        candidate = Path(base) / "extensions"
        if candidate.is_dir():
            return str(candidate)
    raise RuntimeError("duckdb-ext-delta is not installed: run `make install`")


def duck_connect(database: str | Path = ":memory:", *, read_only: bool = False):
    config = {
        "extension_directory": extension_directory(),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": True,
    }
    con = duckdb.connect(str(database), read_only=read_only, config=config)
    con.execute("LOAD delta")
    return con


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
