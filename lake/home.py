"""Where a kommunelake home keeps things: drop folders, the lake, serving, the Dagster instance.

The lake is `<home>/lake` on local disk unless a lake URI is given (KOMMUNELAKE_LAKE_URI, e.g.
`s3://bucket/prefix` or `az://container/prefix`); drop folders, serving, the Dagster
instance directory, caches and scratch files always stay local. Every lake location is a
`str` (a path or a URI), so callers pass it to deltalake, polars and DuckDB the same way for
both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lake import atomicity, storage
from lake.errors import ConfigError

DEFAULT_HOME = "demo-home"


@dataclass(frozen=True)
class Home:
    root: Path
    # None: the lake is <root>/lake on local disk; else a path or s3:// / az:// / abfss:// URI.
    lake_uri: str | None = None

    def __post_init__(self) -> None:
        _ = self.location  # a bad lake URI fails here, with what to change

    @property
    def location(self) -> storage.LakeLocation:
        return storage.parse_lake_uri(self.lake_uri or self.root / "lake")

    @property
    def lake_root(self) -> str:
        """The lake's location: an absolute local path or a URI, no trailing slash."""
        return self.location.uri

    @property
    def is_remote(self) -> bool:
        return self.location.is_remote

    @property
    def lake(self) -> Path:
        """The local lake directory; a remote lake has none (use the *_uri members)."""
        if self.is_remote:
            raise ConfigError(
                f"the lake is in object storage at {self.lake_root}, not a local directory: "
                "use Home.lake_root / table_uri() / storage.list_tables()"
            )
        return Path(self.lake_root)

    def uri(self, *parts: str) -> str:
        """A location inside the lake: `lake_root/part/...`."""
        return storage.join_uri(self.lake_root, *parts)

    @property
    def landing_uri(self) -> str:
        return self.uri("landing")

    @property
    def landing(self) -> Path:
        """The local landing directory (see `lake`); `landing_uri` works for every lake."""
        return self.lake / "landing"

    @property
    def manifest_uri(self) -> str:
        return self.uri("landing", "_manifest")

    @property
    def runs_uri(self) -> str:
        return self.uri("quality", "runs")

    @property
    def erasures_uri(self) -> str:
        """The erasure register: pseudonyms of erased subjects, which loads leave out."""
        return self.uri("state", "erasures")

    def layer_uri(self, layer: str) -> str:
        return self.uri(layer)

    def table_uri(self, layer: str, name: str) -> str:
        """Delta table location for a layer (silver, gold, quarantine) and table name."""
        return self.uri(layer, name)

    def storage_options(self) -> storage.StorageOptions:
        """deltalake storage options for this lake (empty when local); never log the values."""
        return storage.storage_options(self.lake_root)

    def require_atomic(self) -> None:
        """Refuse a lake where Delta commits are not atomic (network share, S3 without
        conditional PUT, unsafe S3 settings). Probes object storage once per process."""
        atomicity.require_atomic(self.lake_root)

    @property
    def drop(self) -> Path:
        return self.root / "drop"

    @property
    def serving_db(self) -> Path:
        return self.root / "serving" / "lake.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    def hash_cache(self, dataset: str) -> Path:
        """Local cache of the SHA-256 of a dataset's drop-folder files (never in the lake)."""
        return self.root / "cache" / "sha256" / f"{dataset}.json"

    def sftp_record(self, dataset: str) -> Path:
        """Which remote files an SFTP pickup has fetched (name, size, mtime), so a file
        rejected or deleted here is not fetched again while it stays on the server."""
        return self.root / "cache" / "sftp" / f"{dataset}.json"

    @property
    def scratch(self) -> Path:
        """Local room for temporary files, e.g. a landed file copied from object storage
        for a parser; beside the drop folders, so on the same disk and not in RAM."""
        return self.root / "tmp"

    @property
    def key_file(self) -> Path:
        # Outside lake/ on purpose: the pseudonym key must never be written into the lake.
        return self.root / "secrets" / "pseudonym.key"


def resolve_home(
    explicit: str | os.PathLike[str] | None = None, *, lake_uri: str | None = None
) -> Home:
    """The home given, else KOMMUNELAKE_HOME, else ./demo-home; the lake given, else
    KOMMUNELAKE_LAKE_URI, else <home>/lake (read at call time, not import)."""
    raw = explicit or os.environ.get("KOMMUNELAKE_HOME") or DEFAULT_HOME
    lake = lake_uri or os.environ.get(storage.LAKE_URI_VARIABLE, "").strip() or None
    return Home(Path(raw).expanduser().resolve(), lake)
