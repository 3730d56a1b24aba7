"""Landing: every byte received, stored by SHA-256 before parsing, with a manifest row.

Files are immutable and content-addressed, so the same bytes twice are one landing. The
manifest is a Delta table; each row is committed with an app transaction named after the
content hash, so a crash between storing the bytes and the manifest commit heals on retry.
Landing follows the lake: a local directory, or S3/Azure when the lake is remote (see
lake.storage), with the same names and the same write-once rule.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import PurePosixPath

import polars as pl
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from lake import storage


@dataclass(frozen=True)
class LandedFile:
    sha256: str
    dataset: str
    source: str
    original_name: str
    size: int
    media_type: str
    fetched_at: dt.datetime
    path: str  # a local path or an s3:// / az:// URI: read it with read_landed()

    @property
    def batch_id(self) -> str:
        # 16 hex digits identify a batch for people; the full hash stays in the manifest.
        return self.sha256[:16]


def land(
    landing_root: str | os.PathLike[str],
    manifest_uri: str,
    *,
    dataset: str,
    source: str,
    data: bytes,
    original_name: str,
    media_type: str,
) -> tuple[LandedFile, bool]:
    """Store `data` and record it; returns the landed file and whether it was new.

    `landing_root` is a local directory or an object-store URI (Home.landing_uri)."""
    root = os.fspath(landing_root)
    storage.require_atomic(root)
    options = storage.storage_options(root)
    sha = hashlib.sha256(data).hexdigest()
    suffix = PurePosixPath(original_name).suffix.lower()
    path = storage.join_uri(root, dataset, sha[:2], f"{sha}{suffix}")
    storage.write_once(path, data, options)
    app_id = f"landing:{dataset}:{sha}"
    manifest_options = dict(storage.storage_options(manifest_uri))
    if (
        DeltaTable.is_deltatable(manifest_uri, storage_options=manifest_options)
        and DeltaTable(manifest_uri, storage_options=manifest_options).transaction_version(app_id)
        is not None
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
        path=path,
    )
    row = pl.DataFrame([landed.__dict__], schema=_MANIFEST_SCHEMA)
    write_deltalake(
        manifest_uri,
        row.to_arrow(),
        mode="append",
        commit_properties=CommitProperties(app_transactions=[Transaction(app_id, 1)]),
        storage_options=manifest_options,
    )
    return landed, True


def read_landed(landed: LandedFile) -> bytes:
    """The bytes of a landed file, from local disk or object storage."""
    return storage.read_bytes(landed.path)


def manifest(manifest_uri: str, dataset: str | None = None) -> list[LandedFile]:
    """Landed files in landing order, optionally for one dataset."""
    options = dict(storage.storage_options(manifest_uri))
    if not DeltaTable.is_deltatable(manifest_uri, storage_options=options):
        return []
    frame = pl.read_delta(manifest_uri, storage_options=options or None)
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
