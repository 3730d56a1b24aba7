"""Landing: every byte received, stored by SHA-256 before parsing, with a manifest row.

Files are immutable and content-addressed, so the same bytes twice are one landing. The
manifest is a Delta table; each row is committed with an app transaction named after the
content hash, so a crash between storing the bytes and the manifest commit heals on retry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake


@dataclass(frozen=True)
class LandedFile:
    sha256: str
    dataset: str
    source: str
    original_name: str
    size: int
    media_type: str
    fetched_at: dt.datetime
    path: str

    @property
    def batch_id(self) -> str:
        # 16 hex digits identify a batch for people; the full hash stays in the manifest.
        return self.sha256[:16]


def land(
    landing_root: Path,
    manifest_uri: str,
    *,
    dataset: str,
    source: str,
    data: bytes,
    original_name: str,
    media_type: str,
) -> tuple[LandedFile, bool]:
    """Store `data` and record it; returns the landed file and whether it was new."""
    sha = hashlib.sha256(data).hexdigest()
    suffix = Path(original_name).suffix.lower()
    path = landing_root / dataset / sha[:2] / f"{sha}{suffix}"
    if not path.exists():
        _write_atomically(path, data)
    app_id = f"landing:{dataset}:{sha}"
    if (
        DeltaTable.is_deltatable(manifest_uri)
        and DeltaTable(manifest_uri).transaction_version(app_id) is not None
    ):
        existing = [f for f in manifest(manifest_uri, dataset) if f.sha256 == sha]
        if existing:
            return existing[0], False
    landed = LandedFile(
        sha256=sha,
        dataset=dataset,
        source=source,
        original_name=original_name,
        size=len(data),
        media_type=media_type,
        fetched_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        path=str(path),
    )
    row = pl.DataFrame([landed.__dict__], schema=_MANIFEST_SCHEMA)
    write_deltalake(
        manifest_uri,
        row.to_arrow(),
        mode="append",
        commit_properties=CommitProperties(app_transactions=[Transaction(app_id, 1)]),
    )
    return landed, True


def manifest(manifest_uri: str, dataset: str | None = None) -> list[LandedFile]:
    """Landed files in landing order, optionally for one dataset."""
    if not DeltaTable.is_deltatable(manifest_uri):
        return []
    frame = pl.read_delta(manifest_uri)
    if dataset is not None:
        frame = frame.filter(pl.col("dataset") == dataset)
    frame = frame.sort(["fetched_at", "original_name"])
    return [LandedFile(**row) for row in frame.iter_rows(named=True)]


_MANIFEST_SCHEMA = {
    "sha256": pl.String,
    "dataset": pl.String,
    "source": pl.String,
    "original_name": pl.String,
    "size": pl.Int64,
    "media_type": pl.String,
    "fetched_at": pl.Datetime("us", "UTC"),
    "path": pl.String,
}


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".landing-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
