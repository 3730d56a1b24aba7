"""Table maintenance: compaction, checkpoints and log clean-up, vacuum.

Many small loads leave many small Parquet files and a long JSON log; both slow every reader
down (`open_seconds` measures it). Maintenance fixes that without changing what a reader sees:

- `compact` rewrites small files into bigger ones, one partition at a time, so a failure in
  one partition neither rewrites nor blocks the others. Compaction is a Delta OPTIMIZE commit
  (`dataChange=false`): it rebases over loads committed meanwhile (appends do not conflict,
  so their rows are kept) and fails loudly when a load removed the files it rewrote.
- `checkpoint_and_cleanup` writes a checkpoint (readers start there instead of replaying the
  whole log) and deletes log files older than the table's `delta.logRetentionDuration`.
- `vacuum` deletes data files that no version within the retention period refers to. Time
  travel to versions inside the retention keeps working; the retention is never below
  7 days unless the caller says so explicitly. Erasure is the one exception it yields to
  without a setting: `lake.erasure.forget_history` removes all history of a table that held
  an erased subject (see lake/erasure.py for why).

Plain functions with small reports; the Dagster assets live in pipelines/maintenance_assets.py.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from deltalake import DeltaTable
from deltalake.exceptions import DeltaError
from deltalake.fs import DeltaStorageHandler
from pyarrow import fs

from lake.errors import LakeError
from lake.tables import commit_properties

MIN_RETENTION_HOURS = 168  # 7 days, as Delta's own default for deleted files
DEFAULT_TARGET_MB = 128

PartitionFilters = list[tuple[str, str, str]]


class MaintenanceError(LakeError):
    """A maintenance step was refused or failed; the message says which table and why."""


@dataclass(frozen=True)
class PartitionCompaction:
    partition: dict[str, str | None]  # {} for an unpartitioned table
    files_removed: int
    files_added: int
    bytes_removed: int
    bytes_added: int
    error: str | None = None  # set when this partition failed; the others still ran


@dataclass(frozen=True)
class CompactReport:
    uri: str
    files_before: int
    files_after: int
    version_before: int
    version_after: int
    partitions: tuple[PartitionCompaction, ...]

    @property
    def files_removed(self) -> int:
        return sum(p.files_removed for p in self.partitions)

    @property
    def files_added(self) -> int:
        return sum(p.files_added for p in self.partitions)

    @property
    def bytes_removed(self) -> int:
        return sum(p.bytes_removed for p in self.partitions)

    @property
    def errors(self) -> tuple[PartitionCompaction, ...]:
        return tuple(p for p in self.partitions if p.error is not None)


@dataclass(frozen=True)
class CheckpointReport:
    uri: str
    version: int
    checkpoint_created: bool
    commits_since_checkpoint: int  # before this run: commits a reader had to replay
    log_files_removed: int


@dataclass(frozen=True)
class VacuumReport:
    uri: str
    retention_hours: float
    candidates: int  # what the dry run listed
    files_deleted: int
    bytes_deleted: int
    version: int


def compact(
    uri: str,
    partition_filters: PartitionFilters | None = None,
    *,
    target_mb: int = DEFAULT_TARGET_MB,
    storage_options: Mapping[str, str] | None = None,
) -> CompactReport:
    """Compact small files into files of about `target_mb`.

    With partition_filters, only the matching files are compacted (one commit). Otherwise a
    partitioned table is compacted one partition at a time, each in its own commit; a partition
    that fails is reported with its error and the rest still run. Check `report.errors`."""
    table = _open(uri, storage_options)
    files_before = _file_count(table)
    version_before = table.version()
    partition_columns = table.metadata().partition_columns
    if partition_filters is not None:
        plans = [partition_filters]
    elif partition_columns:
        # deltalake matches the null partition with the empty string
        plans = [
            [(column, "=", values.get(column) or "") for column in partition_columns]
            for values in table.partitions()
        ]
        # A partition of one file has nothing to compact, and each OPTIMIZE costs a log
        # replay: on 3,000 one-file partitions, two minutes of weekly maintenance for nothing.
        plans = [
            filters for filters in plans if len(table.file_uris(file_pruning_predicate=filters)) > 1
        ]
    else:
        plans = [None]
    results = []
    for filters in plans:
        partition = {column: value or None for column, _, value in filters or ()}
        try:
            metrics = _open(uri, storage_options).optimize.compact(
                partition_filters=filters,
                target_size=target_mb * 1024 * 1024,
                commit_properties=commit_properties(),  # rebases over concurrent loads
            )
        except (DeltaError, OSError, ValueError) as error:
            results.append(PartitionCompaction(partition, 0, 0, 0, 0, error=str(error)))
            continue
        results.append(
            PartitionCompaction(
                partition,
                files_removed=int(metrics["numFilesRemoved"]),
                files_added=int(metrics["numFilesAdded"]),
                bytes_removed=_total_size(metrics.get("filesRemoved")),
                bytes_added=_total_size(metrics.get("filesAdded")),
            )
        )
    after = _open(uri, storage_options)
    return CompactReport(
        uri=uri,
        files_before=files_before,
        files_after=_file_count(after),
        version_before=version_before,
        version_after=after.version(),
        partitions=tuple(results),
    )


def checkpoint_and_cleanup(
    uri: str,
    *,
    checkpoint_every: int = 1,
    storage_options: Mapping[str, str] | None = None,
) -> CheckpointReport:
    """Write a checkpoint when at least `checkpoint_every` commits are not yet covered by one,
    then delete log files older than the table's `delta.logRetentionDuration` (30 days by
    default) that lie before the newest checkpoint.

    Writers already checkpoint every `delta.checkpointInterval` (100) commits; this covers the
    commits since, so opening the table replays only a few JSON files."""
    if checkpoint_every < 1:
        raise MaintenanceError(
            f"{uri}: checkpoint_every must be at least 1, got {checkpoint_every}"
        )
    table = _open(uri, storage_options)
    version = table.version()
    last = _last_checkpoint(uri, storage_options)
    uncovered = version - (last if last is not None else -1)
    created = uncovered >= checkpoint_every
    logs_before = _log_files(uri, storage_options)
    try:
        if created:
            table.create_checkpoint()
        table.cleanup_metadata()
    except DeltaError as error:
        raise MaintenanceError(
            f"{uri}: checkpoint or log clean-up failed ({error}); the table is unchanged and "
            "readable, run maintenance again"
        ) from error
    return CheckpointReport(
        uri=uri,
        version=version,
        checkpoint_created=created,
        commits_since_checkpoint=uncovered,
        log_files_removed=len(logs_before - _log_files(uri, storage_options)),
    )


def vacuum(
    uri: str,
    retention_hours: float = MIN_RETENTION_HOURS,
    allow_short: bool = False,
    *,
    storage_options: Mapping[str, str] | None = None,
) -> VacuumReport:
    """Delete files no version within `retention_hours` refers to (a dry run counts them first).

    Files of the current version are never deleted (deltalake enforces it), and versions newer
    than the retention keep their files, so time travel to them still works. A retention below
    168 hours is refused unless allow_short, since readers and time travel older than it break."""
    _check_retention(uri, retention_hours, allow_short)
    table = _open(uri, storage_options)
    hours = math.ceil(retention_hours)  # never shorter than asked
    # Only an explicitly allowed short retention may undercut the table's own setting.
    enforce = not (allow_short and retention_hours < MIN_RETENTION_HOURS)
    try:
        candidates = table.vacuum(
            retention_hours=hours, dry_run=True, enforce_retention_duration=enforce
        )
        sizes = _sizes(uri, candidates, storage_options)
        deleted = table.vacuum(
            retention_hours=hours,
            dry_run=False,
            enforce_retention_duration=enforce,
            commit_properties=commit_properties(),
        )
    except DeltaError as error:
        raise MaintenanceError(
            f"{uri}: vacuum failed ({error}); no referenced file was touched. If the table sets "
            "a longer delta.deletedFileRetentionDuration, use at least that retention"
        ) from error
    return VacuumReport(
        uri=uri,
        retention_hours=retention_hours,
        candidates=len(candidates),
        files_deleted=len(deleted),
        bytes_deleted=sum(sizes.get(path, 0) for path in deleted),
        version=_open(uri, storage_options).version(),
    )


def open_seconds(uri: str, *, storage_options: Mapping[str, str] | None = None) -> float:
    """Seconds to open the table's current version (log replay + file list): what every reader
    pays first. For benchmarks: compare before and after maintenance, or after N appends."""
    started = time.perf_counter()
    _open(uri, storage_options).file_uris()
    return time.perf_counter() - started


def _check_retention(uri: str, retention_hours: float, allow_short: bool) -> None:
    if not retention_hours >= 0 or math.isinf(retention_hours):  # NaN compares false
        raise MaintenanceError(
            f"{uri}: vacuum retention must be a number of hours >= 0, got {retention_hours}"
        )
    if retention_hours < MIN_RETENTION_HOURS and not allow_short:
        raise MaintenanceError(
            f"{uri}: vacuum retention {retention_hours} h is below {MIN_RETENTION_HOURS} h "
            "(7 days); long-running readers and time travel would break. Use a longer "
            "retention, or allow it explicitly (maintenance.allow_short_retention: true)"
        )


def _open(uri: str, storage_options: Mapping[str, str] | None) -> DeltaTable:
    return DeltaTable(uri, storage_options=dict(storage_options) if storage_options else None)


def _file_count(table: DeltaTable) -> int:
    return table.get_add_actions().num_rows


def _total_size(stats: object) -> int:
    """OPTIMIZE metrics carry `filesAdded`/`filesRemoved` as JSON text with totalSize."""
    if isinstance(stats, str):
        stats = json.loads(stats)
    return int(stats.get("totalSize", 0)) if isinstance(stats, dict) else 0


def _handler(uri: str, storage_options: Mapping[str, str] | None) -> DeltaStorageHandler:
    return DeltaStorageHandler(uri, dict(storage_options) if storage_options else None)


def _last_checkpoint(uri: str, storage_options: Mapping[str, str] | None) -> int | None:
    handler = _handler(uri, storage_options)
    path = "_delta_log/_last_checkpoint"
    if handler.get_file_info([path])[0].type != fs.FileType.File:
        return None
    with handler.open_input_file(path) as stream:
        return int(json.loads(stream.read())["version"])


def _log_files(uri: str, storage_options: Mapping[str, str] | None) -> set[str]:
    infos = _handler(uri, storage_options).get_file_info_selector(fs.FileSelector("_delta_log"))
    return {info.path for info in infos if info.type == fs.FileType.File}


def _sizes(uri: str, paths: list[str], storage_options: Mapping[str, str] | None) -> dict[str, int]:
    if not paths:
        return {}
    try:
        infos = _handler(uri, storage_options).get_file_info(paths)
    except OSError:  # sizes are for the report only; the vacuum itself does not need them
        return {}
    return {path: info.size or 0 for path, info in zip(paths, infos, strict=True)}


@dataclass(frozen=True)
class MaintenanceReport:
    compaction: CompactReport
    checkpoint: CheckpointReport
    vacuum: VacuumReport


def maintain(
    uri: str,
    *,
    target_mb: int = DEFAULT_TARGET_MB,
    retention_hours: float = MIN_RETENTION_HOURS,
    allow_short: bool = False,
    checkpoint_every: int = 1,
    storage_options: Mapping[str, str] | None = None,
) -> MaintenanceReport:
    """Compact, then checkpoint and clean the log, then vacuum: the weekly routine.

    Checkpoint and vacuum run even when a partition failed to compact (both are safe on any
    table state); the caller decides whether `compaction.errors` fail the run."""
    _check_retention(uri, retention_hours, allow_short)  # refuse before rewriting anything
    compaction = compact(uri, target_mb=target_mb, storage_options=storage_options)
    checkpoint = checkpoint_and_cleanup(
        uri, checkpoint_every=checkpoint_every, storage_options=storage_options
    )
    vacuumed = vacuum(uri, retention_hours, allow_short, storage_options=storage_options)
    return MaintenanceReport(compaction, checkpoint, vacuumed)
