"""Deliveries: what arrives in a dataset's drop folder, and what happens to it there.

Files are picked up (from SFTP where the source says so), landed by content hash, and the
batches still to load are chosen; a rejected file is moved to rejected/ with its reason, and
its rejection stays the dataset's state until a later delivery or the operator closes it.
"""

from __future__ import annotations

import datetime as dt
import filecmp
import logging
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from connectors.files import (
    REJECTED_FOLDER,
    drop_files,
    held_back_files,
    is_settled,
    media_type,
    settle_seconds,
    subfolder_files,
    unmatched_files,
)
from lake import quality
from lake.errors import LakeError, one_line
from lake.home import Home
from lake.landing import HashCache, LandedFile, land_file, manifest
from lake.privacy import redact, shown_name
from lake.storage import SourceChanged
from pipelines.connector_logs import mask_connector_logs
from pipelines.specs import DatasetSpec

log = logging.getLogger("kommunelake.ingest")

# The run tag of runs the drop-folder sensor starts: their loads leave unsettled files.
SETTLE_TAG = "kommunelake/settle"


def pick_up(spec: DatasetSpec, home: Home) -> list[Path]:
    """Fetch new files from the vendor's SFTP server into the drop folder; from there they
    land like any dropped file. Secrets come from SOURCES__<DATASET>__* at call time."""
    from connectors.sftp import from_settings, pull

    mask_connector_logs()  # a server's refusal may quote a file name
    try:
        source = from_settings(spec.name, spec.source, os.environ)
    except ValueError as error:
        raise LakeError(str(error)) from error
    pulled = pull(
        source, home.drop / spec.name, record=home.sftp_record(spec.name), shown=shown_name
    )
    for path in pulled:
        log.info("%s: picked up %s from %s", spec.name, shown_name(path.name), source.host)
    return pulled


def subfolder_lines(spec: DatasetSpec, home: Home) -> list[str]:
    """A line for each sub-folder of the dataset's drop folder holding files, which are
    never loaded (`subfolder_files`): for the sensor's tick log and the load's log."""
    return [
        f"{spec.name}: drop/{spec.name}/{shown_name(sub.name)}/ holds {count} file(s), which"
        f" are not loaded: only files directly in drop/{spec.name}/ load; move them up into it"
        for sub, count in subfolder_files(home.drop / spec.name).items()
    ]


def land_drop_folder(
    spec: DatasetSpec, home: Home, *, settle: bool = False
) -> tuple[int, dict[str, list[Path]]]:
    """Land every file in the dataset's drop folder; returns how many were new and the files
    present now by content hash.

    Files are streamed from the drop folder into landing (never read whole), and their
    hashes are cached under the home, so an unchanged folder is not hashed again. A file
    changing while it is landed waits for the next run. With `settle` (a run the drop-folder
    sensor started, with no one watching), so does a file modified within the settle window
    (`is_settled`, the sensor's own rule): it may still be arriving, and landed half-written
    it would load twice (cut at a line end) or be rejected while its writer still writes it.
    A person running a load has put the files there and means them to load now."""
    new, present = 0, {}
    for path in unmatched_files(home.drop / spec.name, spec.patterns):
        log.warning(
            "%s: %s does not match the source pattern %s and is not loaded; rename it, or"
            " change `source.pattern` in the dataset YAML",
            spec.name,
            shown_name(path.name),
            " or ".join(spec.patterns),
        )
    for path in held_back_files(home.drop / spec.name, spec.patterns):
        log.warning(
            "%s: %s is not loaded: a name starting with `_` marks a temporary or marker file;"
            " rename it without the leading `_` if it is an export",
            spec.name,
            shown_name(path.name),
        )
    for line in subfolder_lines(spec, home):
        log.warning("%s", line)
    hashes = HashCache(home.hash_cache(spec.name))
    try:
        for path in drop_files(home.drop / spec.name, spec.patterns):
            try:
                if settle and not is_settled(path):
                    log.warning(
                        "%s: %s was modified less than %g s ago and may still be arriving; it"
                        " waits for the next run",
                        spec.name,
                        shown_name(path.name),
                        settle_seconds(),
                    )
                    continue
                landed, is_new = land_file(
                    home.landing_uri,
                    home.manifest_uri,
                    dataset=spec.name,
                    source=f"drop:{spec.name}",
                    path=path,
                    media_type=media_type(path),
                    hashes=hashes,
                )
            except SourceChanged as error:
                log.warning("%s: %s", spec.name, redact(str(error)))
                continue
            except OSError:
                # One file the pipeline cannot read must not fail its dataset's other files
                # (the sensor gives it no run, but every other file's run lands the folder).
                # A failure on the lake's side (disk full, landing unwritable) still fails.
                unreadable = read_error(path)
                if unreadable is None:
                    raise
                log.warning(
                    "%s: cannot read %s (%s); it is not loaded: check the file and its"
                    " permissions, or deliver it again",
                    spec.name,
                    shown_name(path.name),
                    unreadable.strerror or redact(one_line(unreadable)),
                )
                continue
            present.setdefault(landed.sha256, []).append(path)
            new += is_new
            if is_new:
                log.info("%s: landed %s", spec.name, shown_name(path.name))
    finally:
        hashes.save()
    return new, present


def read_error(path: Path) -> OSError | None:
    """Why the drop file at `path` cannot be read through (permissions, an I/O error, gone
    since it was listed), or None when it can."""
    try:
        with path.open("rb") as handle:
            while handle.read(1 << 20):
                pass
    except OSError as error:
        return error
    return None


def move_to_rejected(path: Path, message: str) -> Path:
    """Move a rejected file out of the drop folder to rejected/, with the reason beside it.

    Its bytes stay in landing. Moving it back into the drop folder asks for a retry (e.g.
    after mapping a renamed header in the YAML); a corrected delivery supersedes it.
    """
    folder = path.parent / REJECTED_FOLDER
    folder.mkdir(exist_ok=True)
    target = _free_name(path, folder)
    os.replace(path, target)
    (folder / reason_name(target.name, folder)).write_text(
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC: {message}\n\n"
        "The file was not loaded; its bytes are kept in the lake's landing zone. Fix the cause "
        "(a corrected export, or the dataset YAML) and put the file back in the drop folder "
        "to try again.\n",
        encoding="utf-8",
    )
    log.warning("moved %s to %s", shown_name(path.name), shown_name(str(target)))
    return target


def _free_name(path: Path, folder: Path) -> Path:
    """Where `path` goes in rejected/: its own name, unless a different file rejected earlier
    has it (a vendor's `eksport.csv` every month): then `eksport (2).csv` and so on, so
    neither that file nor its reason is replaced. The same bytes rejected again (a retry
    moved back from rejected/) replace their earlier copy."""
    target = folder / path.name
    number = 1
    while target.exists() and not filecmp.cmp(path, target, shallow=False):
        number += 1
        target = folder / _fitted(path.stem, f" ({number}){path.suffix}", folder)
    return target


def reason_name(name: str, folder: Path) -> str:
    """`<name>.error.txt`, or for a name too close to the file system's limit (255 bytes on
    most) to take the suffix, as much of the name as fits before it."""
    return _fitted(name, ".error.txt", folder)


def _fitted(name: str, suffix: str, folder: Path) -> str:
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    while len(f"{name}{suffix}".encode()) > limit:
        name = name[:-1]
    return f"{name}{suffix}"


def pending_batches(
    spec: DatasetSpec,
    home: Home,
    present: Collection[str] = (),
    history: pl.DataFrame | None = None,
) -> list[LandedFile]:
    """Landed batches to process, oldest first: those never tried, plus rejected ones whose
    file is still in the drop folder (`present`) with no later landing loaded since.
    `history`: `quality.runs(home, spec.name)` when the caller has just read it.

    Retrying lets a fix in the YAML (e.g. a column alias) take effect on the next run;
    removing the broken file from the drop folder, or a later good delivery, ends it, so a
    stale file never overwrites newer data.
    """
    if history is None:
        history = quality.runs(home, spec.name)
    tried = set(history["batch_id"].to_list())
    loaded = set(history.filter(pl.col("status") == "loaded")["batch_id"].to_list())
    landed = manifest(home.manifest_uri, spec.name)
    newest_loaded = max((i for i, f in enumerate(landed) if f.batch_id in loaded), default=-1)
    return [
        f
        for i, f in enumerate(landed)
        if f.batch_id not in tried
        or (f.batch_id not in loaded and i > newest_loaded and f.sha256 in present)
    ]


@dataclass(frozen=True)
class StaleDelivery:
    """A file in the drop folder that will not be loaded, and why."""

    sha256: str
    path: Path
    reason: str


def stale_deliveries(
    spec: DatasetSpec,
    history: pl.DataFrame,
    present: dict[str, list[Path]],
    pending: Iterable[LandedFile],
) -> list[StaleDelivery]:
    """Files in the drop folder (`present`, by content hash) that no load will take, each
    with its reason: bytes rejected before with a later delivery loaded since, and, for a
    snapshot dataset, an earlier snapshot's bytes sent again. Left where they are, they
    would wait in the drop folder unexplained ("no new batch"). `history` is the dataset's
    `quality.runs`, read after this run's loads."""
    stale = [
        StaleDelivery(
            sha,
            path,
            f"{message}. This file was rejected before, and a later delivery has been loaded"
            " since, so it is not tried again",
        )
        for sha, message in _superseded_rejections(history, present, pending).items()
        for path in present[sha]
    ]
    head = snapshot_heads(history, [spec]).get(spec.name)
    if head:
        taken = {s.sha256 for s in stale}
        stale += [
            StaleDelivery(sha, path, head.message(sha))
            for sha, paths in present.items()
            if sha not in taken
            for path in paths
            if head.resent(sha, path)
        ]
    return stale


def _superseded_rejections(
    history: pl.DataFrame, present: Collection[str], pending: Iterable[LandedFile]
) -> dict[str, str]:
    """Content hashes in the drop folder whose bytes were rejected before and are not tried
    again, because a later delivery has been loaded since, each with its rejection's
    message."""
    retried = {f.sha256 for f in pending}
    if not set(present) - retried or not history.height:
        return {}
    last = history.group_by("batch_id", maintain_order=True).last()
    rejected = dict(
        last.filter(pl.col("status") == "rejected").select("batch_id", "message").rows()
    )
    return {
        sha: rejected[sha[:16]] for sha in present if sha not in retried and sha[:16] in rejected
    }


@dataclass(frozen=True)
class SnapshotHead:
    """A snapshot dataset's current batch, and the batches it replaced."""

    batch_id: str
    source_file: str  # as shown (privacy.shown_name)
    loaded_at: dt.datetime
    earlier: frozenset[str]  # batch ids loaded before it, not the current one

    def resent(self, sha256: str, path: Path) -> bool:
        """Whether the file holds an earlier snapshot's bytes, put in the drop folder after
        the current one was loaded. The same bytes load once (a batch counts once), so such a
        file used to wait in the drop folder unexplained ("no new batch")."""
        if sha256[:16] not in self.earlier:
            return False
        try:
            return path.stat().st_mtime > self.loaded_at.timestamp()
        except FileNotFoundError:  # taken away since it was listed: nothing to move
            return False

    def message(self, sha256: str) -> str:
        return (
            f"these bytes were loaded before (batch {sha256[:16]}), and a newer snapshot has "
            f"been loaded since ({self.source_file}, batch {self.batch_id}); an older snapshot "
            "never replaces a newer one. If the newer delivery is wrong, ask the sender for a "
            "corrected export"
        )


def snapshot_heads(history: pl.DataFrame, specs: Iterable[DatasetSpec]) -> dict[str, SnapshotHead]:
    """The current batch of each snapshot dataset that has loaded two or more batches;
    `history` is `quality.runs(home)`."""
    names = {s.name for s in specs if s.load_mode == "snapshot"}
    history = history.filter(pl.col("dataset").is_in(list(names)) & (pl.col("status") == "loaded"))
    heads = {}
    for (dataset,), rows in history.group_by("dataset"):
        newest = rows.row(-1, named=True)  # runs() is sorted by finished_at
        earlier = frozenset(rows["batch_id"].to_list()) - {newest["batch_id"]}
        if earlier:
            heads[str(dataset)] = SnapshotHead(
                newest["batch_id"], newest["source_file"], newest["finished_at"], earlier
            )
    return heads


def open_rejection(
    spec: DatasetSpec, home: Home, history: pl.DataFrame, present: dict[str, list[Path]]
) -> str | None:
    """The latest delivery's rejection message while it is still the state of the dataset:
    its file waits in rejected/ and nothing was dropped after it. Deleting the rejected file,
    or any later delivery (even the bytes of an earlier good file again), closes it.
    `history` is the dataset's `quality.runs`."""
    if not history.height or history["status"][-1] != "rejected":
        return None
    last = history.row(-1, named=True)
    # The runs table has the name as shown (privacy.shown_name); landing has the sender's.
    names = {
        f.original_name
        for f in manifest(home.manifest_uri, spec.name)
        if f.batch_id == last["batch_id"]
    }
    if not any((home.drop / spec.name / "rejected" / name).exists() for name in names):
        return None
    rejected_at = last["finished_at"].timestamp()
    if any(p.stat().st_mtime > rejected_at for paths in present.values() for p in paths):
        return None
    return last["message"]
