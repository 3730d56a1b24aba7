"""Landing: every byte received, stored by SHA-256 before parsing, with a manifest row.

Files are immutable and content-addressed, so the same bytes twice are one landing. The
manifest is a Delta table; each row is committed with an app transaction named after the
content hash, so a crash between storing the bytes and the manifest commit heals on retry.
Landing follows the lake: a local directory, or S3/Azure when the lake is remote (see
lake.storage), with the same names and the same write-once rule.

API pages arrive as bytes (`land`); files are landed from their path (`land_file`) and never
read whole into memory: on local disk a new file is hashed while it is copied, in 1 MiB
blocks, and named after the hash; for object storage it is hashed first, then uploaded. A
small local cache of hashes means an unchanged drop folder is not read again on every run. A
parser that needs a local file gets one from `local_copy`, whichever store the lake is in.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import polars as pl
from deltalake import DeltaTable, write_deltalake

from lake import atomicity, storage
from lake.errors import LakeError
from lake.home import Home
from lake.privacy import shown_name
from lake.scratch import scratch_folder
from lake.tables import commit_once

log = logging.getLogger("kommunelake.landing")


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
    """Store `data` (e.g. an API page) and record it; returns the landed file and whether it
    was new. `landing_root` is a local directory or an object-store URI (Home.landing_uri)."""
    root = os.fspath(landing_root)
    atomicity.require_atomic(root)
    sha = hashlib.sha256(data).hexdigest()
    path = _landing_path(root, dataset, sha, original_name)
    storage.write_once(path, data, storage.storage_options(root))
    return _record(
        manifest_uri,
        LandedFile(
            sha256=sha,
            dataset=dataset,
            source=source,
            original_name=original_name,
            size=len(data),
            media_type=media_type,
            fetched_at=_now(),
            path=path,
        ),
    )


def land_file(
    landing_root: str | os.PathLike[str],
    manifest_uri: str,
    *,
    dataset: str,
    source: str,
    path: Path,
    media_type: str,
    hashes: HashCache | None = None,
) -> tuple[LandedFile, bool]:
    """Store the local file at `path` and record it, like `land`, without ever holding it
    in memory.

    On local disk a new file is read once: copied while it is hashed, then renamed to its
    hash. A file `hashes` already knows unchanged, or a remote lake, is hashed first (or
    looked up) and then copied only if landing lacks it; the copy must hash to the name it is
    stored under. When it does not, the hash is taken again from the file (a stale cache
    entry heals here) and the copy retried once. A file still being written raises
    storage.SourceChanged and nothing is recorded."""
    root = os.fspath(landing_root)
    atomicity.require_atomic(root)
    hashes = hashes or HashCache(None)
    if storage.parse_lake_uri(root).is_remote or hashes.known(path):
        target, sha, size = _hash_then_copy(root, dataset, path, hashes)
    else:
        target, sha, signature = storage.copy_in(
            path,
            storage.join_uri(root, dataset),
            lambda sha: _landing_path(root, dataset, sha, path.name),
        )
        hashes.remember(path, signature, sha)
        size = signature[0]
    return _record(
        manifest_uri,
        LandedFile(
            sha256=sha,
            dataset=dataset,
            source=source,
            original_name=path.name,
            size=size,
            media_type=media_type,
            fetched_at=_now(),
            path=target,
        ),
    )


def _hash_then_copy(root: str, dataset: str, path: Path, hashes: HashCache) -> tuple[str, str, int]:
    options = storage.storage_options(root)
    for attempt in range(2):
        sha, size = hashes.sha256(path, fresh=attempt > 0)
        target = _landing_path(root, dataset, sha, path.name)
        try:
            storage.copy_once(path, target, sha256=sha, size=size, options=options)
            break
        except storage.SourceChanged:
            hashes.forget(path)
            if attempt:
                raise
    return target, sha, size


def _landing_path(root: str, dataset: str, sha: str, original_name: str) -> str:
    suffix = PurePosixPath(original_name).suffix.lower()
    return storage.join_uri(root, dataset, sha[:2], f"{sha}{suffix}")


def _now() -> dt.datetime:
    # Microseconds kept: an SCD2 version starts when its batch landed, and two deliveries
    # landed within one second would otherwise open two versions of a key at one instant.
    return dt.datetime.now(dt.UTC)


def _record(manifest_uri: str, landed: LandedFile) -> tuple[LandedFile, bool]:
    """Commit the manifest row of stored bytes once (app transaction on the hash); when the
    row is already there, return the recorded file and False."""
    app_id = f"landing:{landed.dataset}:{landed.sha256}"
    options = dict(storage.storage_options(manifest_uri))
    if (
        DeltaTable.is_deltatable(manifest_uri, storage_options=options)
        and DeltaTable(manifest_uri, storage_options=options).transaction_version(app_id)
        is not None
    ):
        existing = [f for f in manifest(manifest_uri, landed.dataset) if f.sha256 == landed.sha256]
        if existing:
            return existing[0], False
    row = pl.DataFrame([landed.__dict__], schema=_MANIFEST_SCHEMA)
    # Many datasets (and concurrent loads of one) land into this one table: commit_once
    # records the file once, and an error after the log entry was written still recorded it.
    committed = commit_once(
        manifest_uri,
        app_id,
        lambda props: write_deltalake(
            manifest_uri,
            row.to_arrow(),
            mode="append",
            commit_properties=props,
            storage_options=options,
        ),
        options=options,
    )
    if not committed:  # a concurrent load recorded it first
        existing = [f for f in manifest(manifest_uri, landed.dataset) if f.sha256 == landed.sha256]
        if existing:
            return existing[0], False
    return landed, True


def read_landed(landed: LandedFile) -> bytes:
    """The bytes of a landed file, from local disk or object storage (small files only:
    parsers get a path from `local_copy`)."""
    return storage.read_bytes(landed.path)


@contextlib.contextmanager
def local_copy(landed: LandedFile, home: Home) -> Iterator[Path]:
    """A local file with exactly the landed bytes, for parsers that need a path.

    A local lake's landed file is used as it is. For a lake in object storage: the original
    in the dataset's drop folder when it still hashes to the landed SHA-256 (cached), else a
    download in 1 MiB blocks to a temporary file under the home, deleted afterwards. An
    original that changes while it is being read raises LakeError: run the load again."""
    if not storage.parse_lake_uri(landed.path).is_remote:
        yield Path(landed.path)
        return
    original = home.drop / landed.dataset / landed.original_name
    hashes = HashCache(home.hash_cache(landed.dataset))
    if original.is_file() and original.stat().st_size == landed.size:
        before = storage.file_signature(original.stat())
        if hashes.sha256(original)[0] == landed.sha256:
            hashes.save()
            yield original
            if storage.file_signature(original.stat()) != before:
                raise LakeError(
                    f"{shown_name(str(original))} changed while it was being parsed as batch "
                    f"{landed.batch_id}; nothing was written from it. Run the load again"
                )
            return
    with scratch_folder(home.scratch, "landed-") as folder:  # a killed run's: removed later
        target = folder / PurePosixPath(landed.path).name
        sha, size = storage.download(landed.path, target)
        if sha != landed.sha256:
            raise LakeError(
                f"{landed.path} does not hash to its name ({size} bytes, SHA-256 "
                f"{sha[:16]}…): the landing zone was altered. Restore the file from a backup "
                "or land the delivery again"
            )
        yield target


class HashCache:
    """SHA-256 of local files, remembered per (folder, inode) with size, mtime, ctime, inode
    and device.

    Any write to a file changes its mtime and ctime (the kernel sets ctime; tools that copy
    timestamps cannot), so an entry is only used for a file nobody wrote to since it was
    hashed. Kept as a small JSON file outside the lake; a lost or corrupt cache only costs a
    hash, and concurrent runs at worst hash a file again. Entries are keyed by inode, not
    name: a delivery's name may hold a CPR number (privacy.shown_name), and only the drop
    folder and landing keep it."""

    def __init__(self, file: Path | None) -> None:
        self.file = file
        self._entries: dict[str, list] = {}
        if file is not None and file.is_file():
            with contextlib.suppress(OSError, ValueError):
                loaded = json.loads(file.read_text(encoding="utf-8"))
                self._entries = loaded if isinstance(loaded, dict) else {}
        self._changed = False

    def sha256(self, path: Path, *, fresh: bool = False) -> tuple[str, int]:
        """(sha256, size) of the file at `path`; `fresh` hashes it even when cached."""
        before = storage.file_signature(path.stat())
        cached = self._entries.get(_entry(path, before))
        if not fresh and isinstance(cached, list) and cached[:-1] == before:
            return cached[-1], before[0]
        sha, size = storage.sha256_file(path)
        if storage.file_signature(path.stat()) == before and size == before[0]:
            self.remember(path, before, sha)
        return sha, size

    def known(self, path: Path) -> bool:
        """Whether the file at `path` was hashed and not written to since."""
        signature = storage.file_signature(path.stat())
        cached = self._entries.get(_entry(path, signature))
        return isinstance(cached, list) and cached[:-1] == signature

    def remember(self, path: Path, signature: list[int], sha: str) -> None:
        """Record the hash of the file at `path` as it was when it had `signature`."""
        self._entries[_entry(path, signature)] = [*signature, sha]
        self._changed = True

    def forget(self, path: Path) -> None:
        try:
            entry = _entry(path, storage.file_signature(path.stat()))
        except OSError:  # gone: pruned on save
            return
        self._changed |= self._entries.pop(entry, None) is not None

    def save(self) -> None:
        """Write the cache (atomically), keeping only entries of files still there."""
        if self.file is None or not self._changed:
            return
        present: dict[str, set[str]] = {}
        for folder in {k.rpartition("#")[0] for k in self._entries}:
            with contextlib.suppress(OSError), os.scandir(folder.removesuffix(os.sep)) as found:
                present[folder] = {f"{folder}#{e.inode()}" for e in found if e.is_file()}
        kept = {
            k: v for k, v in self._entries.items() if k in present.get(k.rpartition("#")[0], ())
        }
        self.file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=".sha256-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(kept, out)
            os.replace(tmp, self.file)
        except OSError as error:  # a cache that cannot be written only costs hashing
            Path(tmp).unlink(missing_ok=True)
            log.warning("could not save the hash cache %s: %s", self.file, error)
        self._changed = False


def _entry(path: Path, signature: list[int]) -> str:
    """A file's key in the hash cache: its folder and inode (signature[3])."""
    return f"{path.absolute().parent}{os.sep}#{signature[3]}"


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
