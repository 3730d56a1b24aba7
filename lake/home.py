"""Where a kommunelake home keeps things: drop folders, the lake, serving, the Dagster instance."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = "demo-home"


@dataclass(frozen=True)
class Home:
    root: Path

    @property
    def drop(self) -> Path:
        return self.root / "drop"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def landing(self) -> Path:
        return self.lake / "landing"

    @property
    def manifest_uri(self) -> str:
        return str(self.landing / "_manifest")

    @property
    def runs_uri(self) -> str:
        return str(self.lake / "quality" / "runs")

    def table_uri(self, layer: str, name: str) -> str:
        """Delta table location for a layer (silver, gold, quarantine) and table name."""
        return str(self.lake / layer / name)

    @property
    def serving_db(self) -> Path:
        return self.root / "serving" / "lake.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def key_file(self) -> Path:
        # Outside lake/ on purpose: the pseudonym key must never be written into the lake.
        return self.root / "secrets" / "pseudonym.key"


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Home:
    """The home given, else KOMMUNELAKE_HOME, else ./demo-home (read at call time, not import)."""
    raw = explicit or os.environ.get("KOMMUNELAKE_HOME") or DEFAULT_HOME
    return Home(Path(raw).expanduser().resolve())
