"""Storage and serving: landing, Delta tables, quarantine, privacy, the DuckDB serving layer.

For notebooks: `from lake import connect; con = connect()` gives a read-only DuckDB
connection on the serving layer, e.g. `con.sql("select * from gold.population_by_district")`.
"""

from __future__ import annotations

import os
from pathlib import Path

from lake.errors import ConfigError
from lake.home import Home, resolve_home


def connect(home: str | os.PathLike[str] | None = None):
    """Read-only DuckDB connection on `<home>/serving/lake.duckdb` (home: KOMMUNELAKE_HOME or
    ./demo-home). Safe while a load runs: the file is replaced atomically, never rewritten."""
    from lake import atomicity, storage
    from lake.duck import duck_connect

    resolved = resolve_home(home)
    path = resolved.serving_db
    if not path.exists():
        raise ConfigError(
            f"{path} does not exist yet: run `make demo` (or `kommunelake load`) first, "
            "or set KOMMUNELAKE_HOME to a home that has been loaded"
        )
    # A lake in object storage (KOMMUNELAKE_LAKE_URI) is read with a per-connection secret.
    con = duck_connect(path, read_only=True, lake_uri=resolved.lake_root)
    built_for = _built_for(con)
    if built_for is not None and built_for != resolved.lake_root:
        con.close()
        raise ConfigError(_other_lake(path, built_for, resolved))
    if storage.parse_lake_uri(resolved.lake_root).kind == "azure":
        # A wrong key or SAS token would otherwise surface in the first query as DuckDB's
        # "DeltaKernel ObjectStoreError ... 403 Forbidden: <?xml ...", naming no variable.
        try:
            atomicity.require_azure_access(resolved.lake_root)
        except ConfigError:
            con.close()
            raise
    return con


def _built_for(con) -> str | None:
    """The lake a serving file's views read; None for a file built before it was recorded."""
    import duckdb

    try:
        row = con.execute("SELECT uri FROM catalog.lake").fetchone()
    except duckdb.CatalogException:
        return None
    return row[0] if row else None


def _other_lake(path: Path, built_for: str, home: Home) -> str:
    """Why a serving file built for another lake is refused, and what to do.

    Over object storage the likely cause is a shell or notebook without the lake's
    variables: the connection then has no secret, and the first query fails deep in DuckDB
    (on S3 with an instance-metadata lookup that names neither lake nor variable). A local
    lake elsewhere means the home was copied or moved: the views read the original's."""
    from lake import storage

    if storage.parse_lake_uri(built_for).is_remote:
        variables = "AWS_*" if storage.parse_lake_uri(built_for).kind == "s3" else "AZURE_*"
        now = f"is {home.lake_root}" if home.is_remote else "is not set"
        return (
            f"{path} reads the lake at {built_for}, but {storage.LAKE_URI_VARIABLE} {now}: set "
            f"{storage.LAKE_URI_VARIABLE}={built_for} and the {variables} variables the loads use"
        )
    return (
        f"{path} was built for the lake at {built_for}, not this home's lake at "
        f"{home.lake_root} (the home was copied or moved, or {storage.LAKE_URI_VARIABLE} "
        f"changed): rebuild it with `kommunelake load --home {home.root} --select "
        "'key:serving/lake_duckdb'`"
    )


__all__ = ["connect"]
