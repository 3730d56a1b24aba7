"""Storage and serving: landing, Delta tables, quarantine, privacy, the DuckDB serving layer.

For notebooks: `from lake import connect; con = connect()` gives a read-only DuckDB
connection on the serving layer, e.g. `con.sql("select * from gold.population_by_district")`.
"""

from __future__ import annotations

import os

from lake.errors import ConfigError
from lake.home import resolve_home


def connect(home: str | os.PathLike[str] | None = None):
    """Read-only DuckDB connection on `<home>/serving/lake.duckdb` (home: KOMMUNELAKE_HOME or
    ./demo-home). Safe while a load runs: the file is replaced atomically, never rewritten."""
    from lake.duck import duck_connect

    resolved = resolve_home(home)
    path = resolved.serving_db
    if not path.exists():
        raise ConfigError(
            f"{path} does not exist yet: run `make demo` (or `kommunelake load`) first, "
            "or set KOMMUNELAKE_HOME to a home that has been loaded"
        )
    # A lake in object storage (KOMMUNELAKE_LAKE_URI) is read with a per-connection secret.
    return duck_connect(path, read_only=True, lake_uri=resolved.lake_root)


__all__ = ["connect"]
