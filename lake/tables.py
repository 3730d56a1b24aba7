"""Delta tables per load mode, written idempotently.

Every batch commits with a Delta app transaction (`txn` action) named after the batch. Before
writing, the table is asked whether that transaction is already in its log: a re-run of the
same batch, or a retry after a crash between commit and bookkeeping, then adds no commit.

Load modes (`load_mode:` in the dataset YAML):
- append: add the batch's rows.
- snapshot: replace the table; keys that vanished since the previous snapshot come back in
  `Commit.deleted`, and `record_deletions` writes them to a deletions table.
- merge: upsert on `keys:` in one Delta merge (partition-pruned, duplicate keys refused).
- scd2: history with valid_from/valid_to/is_current, in one Delta merge (lake/history.py).
- bitemporal: Danish register registrations, appended idempotently (lake/history.py).

Before any write the batch's schema is compared with the table's (lake/schema_plan.py):
additive columns evolve when allowed, safe type widenings rewrite the table with the wider
schema, and anything else (a dropped or renamed column, narrowing, string → int) is refused
with the table untouched.

Commits retry up to COMMIT_RETRIES times when another writer took the version first. delta-rs
does not refuse a commit whose app transaction is already in the log, so "check, then commit"
alone lets two writers that both found the batch missing both commit it. A batch therefore
commits at most once (`exclusive`, `settle`, `commit_once`): on local disk the
check and the commit run under an exclusive lock file per table; on object storage (no lock)
each commit carries a unique id, and after it the log entries between the version read before
the check and ours are read: if one of them carries the batch's app transaction, ours is the
later duplicate and a second commit removes the files it added. An error
from the commit is not trusted on its own: a store can write the log entry and still answer
with an error (a 500 or a dropped connection after S3 took the PUT; EIO after the local link).
The log decides: a batch whose app transaction is in it was committed, once.

delta-rs accepts a plain overwrite over a compaction that committed after the overwrite read
the table (it allows removing files whose data did not change), keeping the compacted file
and so the old rows. write_batch's snapshot passes a predicate, which makes delta-rs refuse
(and write_batch writes it again); the overwrites that cannot (a streamed snapshot's
`create_write_transaction`, a type-widening rewrite) are checked after they commit
(`undo_racing_compactions`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote as percent_encoded

import polars as pl
from deltalake import CommitProperties, DeltaTable, Schema, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.transaction import RemoveAction

from lake import storage
from lake.errors import LakeError, one_line
from lake.schema_plan import SchemaPlan, plan_schema, table_schema

log = logging.getLogger("kommunelake.lake")

LoadMode = Literal["append", "snapshot", "merge", "scd2", "bitemporal"]
LOAD_MODES: tuple[LoadMode, ...] = ("append", "snapshot", "merge", "scd2", "bitemporal")
KEYED_MODES: tuple[LoadMode, ...] = ("merge", "scd2", "bitemporal")
ScdSource = Literal["full", "delta"]  # full: keys absent from the batch are closed

APP_ID_KEY = "kommunelake.app_id"  # in every commit's metadata: finds the commit of a batch
COMMIT_ID_KEY = "kommunelake.commit_id"  # unique per commit: tells two commits of a batch apart
UNDONE_KEY = "kommunelake.undone"  # a commit removing a duplicate's or a compaction's files
# The per-table lock file on local disk. delta-rs ignores names starting with "_" (vacuum,
# file listing), and the file is never referenced by the log.
LOCK_NAME = "_kommunelake.lock"
# How often a commit that lost the race for its version is retried against the newer log.
# deltalake's default (15) ran out with 4 processes appending on S3 (moto) on 2 busy cores:
# each lost race is one retry, and a writer can lose many in a row while others commit (8
# writers × 20 batches on moto: up to 10 for one commit). A retry only reads the new log
# entries and re-checks conflicts, so a large budget costs nothing; real conflicts (an
# overwrite against a concurrent append, the same app transaction twice) fail at once
# whatever the budget. Shared by every commit kommunelake makes (see commit_properties).
COMMIT_RETRIES = 200
# How often write_batch writes a batch again after another writer's commit refused its merge
# or overwrite (deltalake retries only commits that do not conflict). Each attempt reads the
# table again, so it is bounded: a writer that keeps losing is told to re-run later.
RACE_ATTEMPTS = 3
SCD2_COLUMNS = ("valid_from", "valid_to", "is_current")  # added to an scd2 table
UTC_US = pl.Datetime("us", "UTC")
DELETIONS_SCHEMA = {"dataset": pl.String, "batch_id": pl.String, "key": pl.String}
_EXAMPLES = 3  # example values shown in an error message


@dataclass(frozen=True)
class Commit:
    version: int
    committed: bool  # False: nothing was written (see `skipped` for why)
    skipped: str = ""  # "already committed", "empty batch", "no changes", ...
    # snapshot with keys: key values present before this batch and absent from it
    deleted: pl.DataFrame | None = field(default=None, compare=False, repr=False)
    metrics: dict[str, Any] = field(default_factory=dict, compare=False)  # Delta merge metrics
    schema_changes: tuple[str, ...] = ()  # "added x", "widened v: Int32 → Int64"


def open_table(uri: str, options: Mapping[str, str] | None = None) -> DeltaTable | None:
    """The table at its current version, or None where there is none. Opening reads the
    log (on object storage a request per commit since the checkpoint): hand the result to
    polars (`pl.scan_delta(table)`) instead of opening the URI again."""
    options = dict(options) if options else None
    if not DeltaTable.is_deltatable(uri, storage_options=options):
        return None
    return DeltaTable(uri, storage_options=options)


def table_version(uri: str, options: Mapping[str, str] | None = None) -> int | None:
    table = open_table(uri, options)
    return None if table is None else table.version()


def has_batch(uri: str, app_id: str, options: Mapping[str, str] | None = None) -> bool:
    options = dict(options) if options else None
    return (
        DeltaTable.is_deltatable(uri, storage_options=options)
        and DeltaTable(uri, storage_options=options).transaction_version(app_id) is not None
    )


@contextlib.contextmanager
def exclusive(uri: str) -> Iterator[None]:
    """Hold the table's lock (local disk) while checking for a batch and committing it, so
    no other kommunelake writer commits the same batch in between. The kernel releases a
    flock when its process dies, so a crashed writer never leaves the table locked. Object
    stores have no lock: there `settle` undoes a duplicate after the fact."""
    if storage.parse_lake_uri(uri).is_remote:
        yield
        return
    Path(uri).mkdir(parents=True, exist_ok=True)
    with open(Path(uri) / LOCK_NAME, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def settle(
    uri: str,
    app_id: str,
    props: CommitProperties,
    read_version: int | None,
    options: Mapping[str, str] | None = None,
) -> bool | None:
    """Find our commit (by its commit id) in the log entries after `read_version`: None when
    it is not there, True when it stays, False when an entry before it already had the
    batch's app transaction and a second commit removed the files ours added.

    Of several commits of one batch exactly the earliest stays: each later one finds an
    earlier one among the entries before its own. Readers of the versions between a
    duplicate and its removal (seconds) see the batch twice. Only commits that just add files
    (appends) are undone; a duplicate merge or overwrite re-applies the same rows and stays.
    """
    found = _entries_up_to(uri, props, read_version, options)
    if found is None:  # the end of the log, without our commit
        return None
    before, actions, version = found
    earlier = any(a.get("txn", {}).get("appId") == app_id for entry in before for a in entry)
    added = [a["add"] for a in actions if "add" in a]
    if not earlier or not added or any("remove" in a for a in actions):
        return True
    _remove_files(uri, added, f"{app_id} @ {version}", options)
    return False


def undo_racing_compactions(
    uri: str,
    props: CommitProperties,
    read_version: int | None,
    options: Mapping[str, str] | None = None,
) -> int:
    """After an overwrite of the whole table, remove the files a compaction committed between
    the overwrite's read (`read_version`) and its own log entry; return how many there were.

    A compaction (maintenance's, or OPTIMIZE from another engine) rewrites files with
    dataChange=false, and delta-rs 1.6 lets a later overwrite commit over it because it allows
    removing files whose data did not change: the overwrite removes the files it read, which
    are gone already, and keeps the compacted file, so the old rows stay beside the new ones.
    Their removal is a second commit: readers of the version between see both."""
    found = _entries_up_to(uri, props, read_version, options) if read_version is not None else None
    if found is None:
        return 0
    before, ours, version = found
    compacted: dict[str, dict[str, Any]] = {}
    for entry in before:
        for action in entry:
            if "add" in action and not action["add"].get("dataChange", True):
                compacted[action["add"]["path"]] = action["add"]
            elif "remove" in action:
                compacted.pop(action["remove"]["path"], None)
    removed = {a["remove"]["path"] for a in ours if "remove" in a}
    kept = [add for path, add in compacted.items() if path not in removed]
    if kept:
        _remove_files(uri, kept, f"compaction kept by the overwrite @ {version}", options)
        log.warning(
            "%s: a compaction committed while version %d overwrote the table and %d of its "
            "files survived the overwrite; removed them, so the table holds only the new rows",
            uri,
            version,
            len(kept),
        )
    return len(kept)


def _entries_up_to(
    uri: str, props: CommitProperties, read_version: int | None, options: Mapping[str, str] | None
) -> tuple[list[list[dict[str, Any]]], list[dict[str, Any]], int] | None:
    """The log entries after `read_version` before the commit `props` made, that commit's
    entry and its version; None when the log ends without it."""
    commit_id = (props.custom_metadata or {}).get(COMMIT_ID_KEY)
    version = -1 if read_version is None else read_version
    before = []
    while True:
        version += 1
        actions = _log_entry(uri, version, options)
        if actions is None:
            return None
        info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        if info.get(COMMIT_ID_KEY) == commit_id:
            return before, actions, version
        before.append(actions)


def _remove_files(
    uri: str, adds: list[dict[str, Any]], why: str, options: Mapping[str, str] | None
) -> None:
    now = int(time.time() * 1000)
    removes = [
        RemoveAction(a["path"], True, now, a.get("size"), a.get("partitionValues") or {})
        for a in adds
    ]
    table = DeltaTable(uri, storage_options=dict(options) if options else None)
    table.create_write_transaction(
        removes,
        mode="append",
        schema=table.schema(),
        partition_by=table.metadata().partition_columns,
        commit_properties=commit_properties(metadata={UNDONE_KEY: why}),
    )


def _created_it(uri: str, app_id: str, props: CommitProperties) -> bool:
    """After a commit meant to create the table: False when another writer had already
    created it with this very batch, and the files this commit added are removed again.

    On object storage (no lock) two loads of the same first delivery can both find no
    table, and delta-rs commits the loser's create as the next version: its rows land
    beside the winner's, without a merge, so four `kommunelake load`s at once left every row
    of a merge dataset twice. A racer with another batch is left alone: this batch's app
    transaction is in the log now, so removing its rows would lose them for good (the
    `unique_keys` check shows the keys twice instead)."""
    found = _entries_up_to(uri, props, None, None)
    if found is None or not found[0]:
        return True  # ours is version 0: we created it
    before, actions, version = found
    added = [a["add"] for a in actions if "add" in a]
    earlier = any(a.get("txn", {}).get("appId") == app_id for entry in before for a in entry)
    if not earlier or not added or any("remove" in a for a in actions):
        return True  # an overwrite that replaced the racer's rows is right as it is
    _remove_files(uri, added, f"{app_id} @ {version}: another writer created the table", None)
    return False


def commit_once(
    uri: str,
    app_id: str,
    commit: Callable[[CommitProperties], object],
    *,
    metadata: dict[str, str] | None = None,
    options: Mapping[str, str] | None = None,
) -> bool:
    """Call `commit` with the batch's commit properties unless the batch is in the table:
    at most once whatever the interleaving of writers (see the module docstring). Returns
    whether this call's commit is the one that counts. After an error, the log decides: our
    entry there counts as committed; the batch there from another writer as skipped; any
    other error is raised as it came."""
    with exclusive(uri):
        read_version = table_version(uri, options)
        if has_batch(uri, app_id, options):
            return False
        props = commit_properties(app_id, metadata)
        try:
            commit(props)
        except (DeltaError, OSError) as error:
            if not committed_despite_error(uri, app_id, error, options):
                raise
            # the batch is in: ours (an error after the entry was written) or a racer's
            return bool(settle(uri, app_id, props, read_version, options))
        return settle(uri, app_id, props, read_version, options) is not False


def _log_entry(
    uri: str, version: int, options: Mapping[str, str] | None
) -> list[dict[str, Any]] | None:
    """The actions of one log entry, or None when it is not (or no longer) there."""
    path = storage.join_uri(uri, "_delta_log", f"{version:020d}.json")
    try:
        text = storage.read_bytes(path, options).decode()
    except FileNotFoundError:
        return None
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def write_batch(
    uri: str,
    frame: pl.DataFrame,
    *,
    mode: LoadMode,
    app_id: str,
    keys: Sequence[str] = (),
    metadata: dict[str, str] | None = None,
    add_columns: bool = False,
    partition_by: Sequence[str] = (),
    widen_types: bool = True,
    scd2_source: ScdSource = "full",
    valid_at: dt.datetime | None = None,
    compare_columns: Sequence[str] | None = None,
    replace_where: str | None = None,
    held_keys: pl.DataFrame | None = None,
) -> Commit:
    """Write one batch in the given mode unless the batch's transaction is already committed.

    keys: merge/scd2 match on them; snapshot uses them to find vanished keys; bitemporal
    takes them as the entity id (registreringFra and virkningFra are added).
    add_columns: columns the table lacks are added; otherwise they fail the write.
    partition_by: partition columns when the write creates the table (must match after).
    widen_types: allow safe type widening (int32 → int64, float32 → float64, date → timestamp).
    scd2_source / valid_at / compare_columns: see lake.history.scd2_changes.
    replace_where (append only): a predicate; the rows matching it are replaced by the batch
    in the same commit (a reload replaces its batch's earlier rows instead of adding twice).
    held_keys (snapshot, scd2): keys the source still has whose rows were quarantined; a
    snapshot keeps their stored rows and scd2 their current versions, instead of taking them
    for deleted.
    Any refused batch leaves the table exactly as it was.
    """
    if mode not in LOAD_MODES:
        raise LakeError(f"{uri}: unknown load mode {mode!r}; use one of {LOAD_MODES}")
    if replace_where is not None and mode != "append":
        raise LakeError(f"{uri}: replace_where is for append batches, not {mode}")
    write = functools.partial(
        _write_locked,
        uri,
        frame,
        mode=mode,
        app_id=app_id,
        keys=keys,
        metadata=metadata,
        add_columns=add_columns,
        partition_by=partition_by,
        widen_types=widen_types,
        scd2_source=scd2_source,
        valid_at=valid_at,
        compare_columns=compare_columns,
        replace_where=replace_where,
        held_keys=held_keys,
    )
    with exclusive(uri):  # check and commit as one step (see the module docstring)
        # A lost race is a conflict, not the batch: a CLI load runs outside Dagster's pools,
        # so maintenance (compaction) or another load can commit between its read and its
        # commit. The losing merge or overwrite committed nothing: read the table again.
        for attempt in range(1, RACE_ATTEMPTS):
            try:
                return write()
            except _LostRace:
                log.info(
                    "%s: another writer committed while batch %s was being written; "
                    "writing it again against the new version (attempt %d of %d)",
                    uri,
                    app_id,
                    attempt + 1,
                    RACE_ATTEMPTS,
                )
        try:
            return write()
        except _LostRace as lost:
            raise LakeError(
                f"{uri}: other writers committed to the table while this batch was being "
                f"written, {RACE_ATTEMPTS} times in a row ({one_line(lost.error)}); the batch "
                "was not committed. Re-run the load when the other writer (a load of this "
                "dataset, maintenance) has finished"
            ) from lost.error


class _LostRace(Exception):
    """A merge or overwrite refused because another writer committed since it read the table."""

    def __init__(self, error: CommitFailedError) -> None:
        super().__init__(str(error))
        self.error = error


def _write_locked(
    uri: str,
    frame: pl.DataFrame,
    *,
    mode: LoadMode,
    app_id: str,
    keys: Sequence[str],
    metadata: dict[str, str] | None,
    add_columns: bool,
    partition_by: Sequence[str],
    widen_types: bool,
    scd2_source: ScdSource,
    valid_at: dt.datetime | None,
    compare_columns: Sequence[str] | None,
    replace_where: str | None,
    held_keys: pl.DataFrame | None,
) -> Commit:
    """One attempt of write_batch, under the table's lock."""
    read_version = table_version(uri)  # read before the check: settle starts here
    if has_batch(uri, app_id):
        return _replayed(uri, app_id, mode, keys)
    if mode in KEYED_MODES and not keys:
        raise LakeError(f"{uri}: load_mode {mode} needs `keys:` in the dataset YAML")
    missing_keys = [k for k in keys if k not in frame.columns]
    if missing_keys:
        raise LakeError(
            f"{uri}: key columns {missing_keys} are not in the batch (columns: "
            f"{frame.columns}); fix `keys:` in the dataset YAML"
        )
    from lake import history  # history builds on this module; imported here to avoid a cycle

    table = DeltaTable(uri) if DeltaTable.is_deltatable(uri) else None
    _check_partitioning(uri, table, partition_by, frame)
    _refuse_case_twins(uri, frame)
    # every refusal happens here, before anything (even a schema change) is committed
    if mode in ("merge", "scd2"):
        refuse_duplicate_keys(uri, frame, keys)
    if mode == "scd2":
        history.check_scd2_batch(
            uri, frame, keys=keys, compare_columns=compare_columns, source=scd2_source
        )
    if mode == "bitemporal":
        frame = history.prepare_registrations(uri, frame, ids=keys)
    frame = _normalise(frame)

    system = SCD2_COLUMNS if mode == "scd2" else ()
    clash = [c for c in system if c in frame.columns]
    if clash:
        raise LakeError(
            f"{uri}: the batch has columns {clash} that scd2 manages itself; rename them"
        )
    if table is None and mode in KEYED_MODES and not frame.is_empty() and _unlocked(uri):
        table = _create_empty(uri, frame, mode, partition_by)
    plan = SchemaPlan(frame, (), {})
    if table is not None:
        plan = plan_schema(uri, table_schema(table), frame, system=system)
        plan.refuse(uri, add_columns=add_columns, widen_types=widen_types)
    scd2 = None
    if mode == "scd2" and table is not None and not plan.frame.is_empty():
        scd2 = history.scd2_changes(
            table,
            plan.frame,
            keys=keys,
            source=scd2_source,
            valid_at=valid_at,
            compare_columns=compare_columns,
            held=held_keys,
        )
    if mode == "snapshot" and table is not None and keys and held_keys is not None:
        plan = _with_held_rows(uri, table.version(), plan, keys, held_keys)
    props = commit_properties(app_id, metadata)

    try:
        if mode == "append":
            version = _append(uri, table, plan, props, partition_by, replace_where)
            if settle(uri, app_id, props, read_version) is False:  # a racer's was first
                return Commit(table_version(uri) or 0, False, skipped="already committed")
            return Commit(version, True, schema_changes=plan.changes)
        if mode == "snapshot":
            deleted = (
                vanished_keys(uri, plan.frame, keys, version=table.version())
                if table is not None and keys
                else None
            )
            version = _overwrite(uri, table, plan, props, partition_by)
            if table is None and not _created_it(uri, app_id, props):
                return Commit(table_version(uri) or 0, False, skipped="already committed")
            return Commit(version, True, deleted=deleted, schema_changes=plan.changes)
        if table is None:  # the first batch creates the table (scd2 adds its columns)
            commit = _create_keyed(uri, plan.frame, mode, keys, props, partition_by, valid_at)
            if not _created_it(uri, app_id, props):
                return Commit(table_version(uri) or 0, False, skipped="already committed")
            return commit
        if plan.frame.is_empty():
            return Commit(
                table.version(), False, skipped="empty batch: nothing to merge, no commit"
            )
        table = _evolve_schema(table, plan, keep_partitions=True)
        if mode != "merge":  # their merges carry helper columns, so merge_schema is no use
            table = add_columns_to(table, plan.frame, plan.added)
        if mode == "merge":
            commit = _merge(table, plan.frame, keys, props, add_columns)
        elif mode == "scd2" and scd2 is not None:
            commit = history.merge_scd2(table, scd2, keys=keys, props=props)
        else:
            commit = history.merge_registrations(table, plan.frame, ids=keys, props=props)
        return Commit(
            commit.version,
            commit.committed,
            skipped=commit.skipped,
            metrics=commit.metrics,
            schema_changes=plan.changes,
        )
    except (DeltaError, OSError) as error:
        # After an ambiguous commit (S3 stored the log entry, then answered 500 or dropped the
        # connection) deltalake 1.6 retries the PUT, finds the version taken by its own entry
        # and reports a conflict with it ("Concurrent transaction failed", "a concurrent
        # transaction deleted data this operation read", ...); on local disk the store's
        # error comes back as OSError. Either way the log says whether the batch is in.
        if not committed_despite_error(uri, app_id, error):
            if isinstance(error, CommitFailedError):
                raise _LostRace(error) from error
            failed = storage.store_failure(error)
            if failed:  # the store, not the batch, is what to look at
                raise LakeError(
                    f"{uri}: the object store failed a request of the Delta write ({failed}); "
                    "the batch was not committed. Re-run the load when the store answers "
                    "again"
                ) from error
            raise LakeError(
                f"{uri}: Delta write failed ({error}); the batch was not committed. Check the "
                "table's schema against the batch and re-run"
            ) from error
        return _landed(uri, app_id, mode, keys, plan.changes)


def read(uri: str) -> pl.DataFrame:
    return pl.read_delta(uri)


def latest_metadata(uri: str) -> dict[str, object]:
    """The custom metadata of the newest commit (empty when the table does not exist)."""
    if not DeltaTable.is_deltatable(uri):
        return {}
    history = DeltaTable(uri).history(1)
    return history[0] if history else {}


# --------------------------------------------------------------------------------------------
# Helpers shared with lake/history.py
# --------------------------------------------------------------------------------------------


def commit_properties(
    app_id: str | None = None, metadata: dict[str, str] | None = None
) -> CommitProperties:
    """Properties for every commit kommunelake makes: the shared retry budget, a unique commit
    id (so the commit can be found in the log after it), and with an app_id the batch's app
    transaction (idempotence) and its id in the commit metadata."""
    if app_id is None:
        return CommitProperties(
            custom_metadata={**(metadata or {}), COMMIT_ID_KEY: uuid.uuid4().hex},
            max_commit_retries=COMMIT_RETRIES,
        )
    return CommitProperties(
        app_transactions=[Transaction(app_id, 1)],
        custom_metadata={
            **(metadata or {}),
            APP_ID_KEY: app_id,
            COMMIT_ID_KEY: uuid.uuid4().hex,
        },
        max_commit_retries=COMMIT_RETRIES,
    )


def committed_despite_error(
    uri: str, app_id: str, error: Exception, options: Mapping[str, str] | None = None
) -> bool:
    """After a commit raised `error`: is the batch in the table anyway (written, then
    reported failed)? Raises LakeError when the table cannot be read to tell."""
    try:
        return has_batch(uri, app_id, options)
    except (DeltaError, OSError) as unreadable:
        raise LakeError(
            f"{uri}: the Delta commit of batch {app_id!r} failed ({error}), and the table "
            f"cannot be read to tell whether it landed anyway ({unreadable}). Re-run the "
            "load when the store answers: a committed batch is then skipped, a missing one "
            "written"
        ) from error


def quote(column: str) -> str:
    """A column in a delta-rs SQL expression (keeps case: `virkningFra` is not `virkningfra`)."""
    return '"' + column.replace('"', '""') + '"'


def quote_target(column: str) -> str:
    """A column as the key of a merge `updates` mapping (delta-rs wants backticks there)."""
    return "`" + column.replace("`", "``") + "`"


def key_predicate(keys: Sequence[str], source: str = "s", null_safe: Sequence[str] = ()) -> str:
    """`t.k = s.k` per key; keys in `null_safe` also match null to null. Plain `=` where it
    is enough: delta-rs prunes target files on it, not on IS NOT DISTINCT FROM."""

    def match(k: str) -> str:
        # parenthesised: delta-rs's parser binds `a IS NOT DISTINCT FROM b AND c` wrongly
        if k in null_safe:
            return f"(t.{quote(k)} IS NOT DISTINCT FROM {source}.{quote(k)})"
        return f"t.{quote(k)} = {source}.{quote(k)}"

    return " AND ".join(match(k) for k in keys)


def partition_pruning(table: DeltaTable, rows: pl.DataFrame) -> str:
    """`t.<part> IN (<literal values of rows>)` for each partition column, or "".

    delta-rs prunes target files only on literal predicates, so the merge predicate carries
    the partition values present in the source. `rows` must hold every partition a matched
    key lives in: see partitions_holding."""
    clauses = []
    for column in table.metadata().partition_columns:
        if column not in rows.columns:
            continue
        values = rows.get_column(column).unique().sort(nulls_last=True).to_list()
        literals = [_sql_literal(v) for v in values if v is not None]
        parts = [f"t.{quote(column)} IN ({', '.join(literals)})"] if literals else []
        if None in values:
            parts.append(f"t.{quote(column)} IS NULL")
        if parts:
            clauses.append("(" + " OR ".join(parts) + ")")
    return " AND ".join(clauses)


def partitions_holding(table: DeltaTable, rows: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """The partition values of `rows`, plus those of the table's rows that hold a key of
    `rows` in another partition: a key whose partition column changed (a case's opening
    date corrected into another year) must be matched where it was, or a merge pruned to
    the batch's partitions adds it a second time. Reads only the key and partition columns
    of the other partitions' files, and nothing when a key cannot move (every partition
    column is a key column)."""
    partitions = [c for c in table.metadata().partition_columns if c in rows.columns]
    own = rows.select(partitions).unique()
    if not partitions or set(partitions) <= set(keys) or rows.is_empty():
        return own
    batch_keys = rows.select(keys).unique()
    elsewhere = (
        pl.scan_delta(table.table_uri, version=table.version())
        .join(own.lazy(), on=partitions, how="anti", nulls_equal=True)
        .join(batch_keys.lazy(), on=list(keys), how="semi", nulls_equal=True)
        .select(partitions)
        .unique()
        .collect()
    )
    return pl.concat([own, elsewhere], how="vertical_relaxed").unique()


def refuse_duplicate_keys(uri: str, frame: pl.DataFrame, keys: Sequence[str]) -> None:
    """A merge needs at most one source row per key; say which keys repeat, with examples."""
    counts = frame.group_by(list(keys)).len().filter(pl.col("len") > 1)
    if counts.is_empty():
        return
    examples = ", ".join(
        str(dict(zip(keys, row[:-1], strict=True)))
        for row in counts.sort(list(keys), nulls_last=True).head(_EXAMPLES).rows()
    )
    raise LakeError(
        f"{uri}: {counts.height} key value(s) occur more than once in the batch on keys "
        f"{list(keys)}, e.g. {examples}. A merge needs one row per key: deduplicate the "
        "source or fix `keys:` in the dataset YAML. Nothing was written"
    )


def merge_metrics(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k.startswith("num_")}


# --------------------------------------------------------------------------------------------
# Schema evolution
# --------------------------------------------------------------------------------------------


def _evolve_schema(table: DeltaTable, plan: SchemaPlan, *, keep_partitions: bool) -> DeltaTable:
    """Widen column types by rewriting the table in one overwrite commit.

    delta-rs 1.6 knows the `typeWidening` feature's name but cannot write it, so widening a
    type means rewriting every file. The rewrite commits against the version it read, so a
    concurrent writer makes it fail rather than be overwritten (a compaction does not:
    `undo_racing_compactions`). Added columns are left to the
    batch's own commit (merge_schema or alter.add_columns)."""
    if not plan.widened:
        return table
    old = pl.read_delta(table.table_uri, version=table.version())
    wider = old.with_columns(pl.col(c).cast(t) for c, t in plan.widened.items())
    props = commit_properties(metadata={"kommunelake.widened": ", ".join(plan.changes)})
    read_version = table.version()  # the object moves to the version it commits
    write_deltalake(
        table,
        wider.to_arrow(),
        mode="overwrite",
        schema_mode="overwrite",
        partition_by=table.metadata().partition_columns if keep_partitions else None,
        commit_properties=props,
    )
    undo_racing_compactions(table.table_uri, props, read_version)
    return DeltaTable(table.table_uri)


def add_columns_to(table: DeltaTable, frame: pl.DataFrame, columns: Sequence[str]) -> DeltaTable:
    """Add nullable columns (metadata-only commit): for merges whose source has helper
    columns, where merge_schema would add those too."""
    if not columns:
        return table
    fields = Schema.from_arrow(frame.select(columns).clear().to_arrow().schema).fields
    table.alter.add_columns(fields, commit_properties=commit_properties())
    return DeltaTable(table.table_uri)


# --------------------------------------------------------------------------------------------
# Modes
# --------------------------------------------------------------------------------------------


def _append(
    uri: str,
    table: DeltaTable | None,
    plan: SchemaPlan,
    props: CommitProperties,
    partition_by: Sequence[str],
    replace_where: str | None = None,
) -> int:
    if table is not None and replace_where is not None:
        # delete-and-add in one commit: readers never see the batch missing or twice
        write_deltalake(
            table,
            plan.frame.to_arrow(),
            mode="overwrite",
            predicate=replace_where,
            schema_mode="merge" if plan.added else None,
            commit_properties=props,
        )
    elif table is not None and plan.widened:
        # Widening rewrites the table anyway: old rows (widened) + the batch in one commit.
        old = pl.read_delta(uri, version=table.version())
        wider = old.with_columns(pl.col(c).cast(t) for c, t in plan.widened.items())
        combined = pl.concat([wider, plan.frame], how="diagonal_relaxed")
        read_version = table.version()  # the object moves to the version it commits
        write_deltalake(
            table,
            combined.to_arrow(),
            mode="overwrite",
            schema_mode="overwrite",
            partition_by=table.metadata().partition_columns,
            commit_properties=props,
        )
        undo_racing_compactions(uri, props, read_version)
    else:
        write_deltalake(
            table if table is not None else uri,
            plan.frame.to_arrow(),
            mode="append",
            partition_by=list(partition_by) or None,
            schema_mode="merge" if plan.added else None,
            commit_properties=props,
        )
    return DeltaTable(uri).version()


def _overwrite(
    uri: str,
    table: DeltaTable | None,
    plan: SchemaPlan,
    props: CommitProperties,
    partition_by: Sequence[str],
) -> int:
    schema_mode = "overwrite" if plan.widened else "merge" if plan.added else None
    partitions = table.metadata().partition_columns if table is not None else list(partition_by)
    write_deltalake(
        table if table is not None else uri,
        plan.frame.to_arrow(),
        mode="overwrite",
        schema_mode=schema_mode,
        partition_by=partitions or None,
        # A plain overwrite only removes the files it read: delta-rs commits it over a
        # compaction that rewrote them meanwhile, and the compacted file (the old rows) stays
        # live beside the new ones. With a predicate it checks what it replaces and refuses
        # (CommitFailedError), so write_batch writes the snapshot again on the new version.
        predicate="true" if table is not None else None,
        commit_properties=props,
    )
    return DeltaTable(uri).version()


def _merge(
    table: DeltaTable,
    frame: pl.DataFrame,
    keys: Sequence[str],
    props: CommitProperties,
    add_columns: bool,
) -> Commit:
    # A key column with nulls in the batch matches null-safely: SQL `=` never matches null, so
    # a row keyed (a, null) would be inserted again by every batch. A batch refuses a repeated
    # key counting null as a value, and unique_keys counts it so: the merge must too.
    nullable = [k for k in keys if frame.get_column(k).null_count()]
    predicate = " AND ".join(
        p
        for p in (
            key_predicate(keys, null_safe=nullable),
            partition_pruning(table, partitions_holding(table, frame, keys)),
        )
        if p
    )
    metrics = (
        table.merge(
            frame.to_arrow(),
            predicate,
            source_alias="s",
            target_alias="t",
            merge_schema=add_columns,
            commit_properties=props,
        )
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
    return Commit(DeltaTable(table.table_uri).version(), True, metrics=merge_metrics(metrics))


def _unlocked(uri: str) -> bool:
    """Object storage: no lock (see `exclusive`), so two first loads can both find no table."""
    return storage.parse_lake_uri(uri).is_remote


def _create_empty(
    uri: str, frame: pl.DataFrame, mode: LoadMode, partition_by: Sequence[str]
) -> DeltaTable:
    """Create a keyed table with the batch's schema and partitioning but no rows and no app
    transaction, so the first batch goes through the merge like every later one.

    On object storage two first loads can both find no table, and delta-rs commits the
    loser's create as the next version without a conflict check: its rows land beside the
    winner's without a merge (keys twice), with its app transaction, so undoing them would
    lose the batch. Racing empty creates add at most a commit without rows (a new metaData);
    the merges after them conflict and are written again like any concurrent merges. A crash
    between the two commits leaves an empty table, which the re-run fills. Local disk keeps
    the cheaper create with rows: its lock rules out the race, and a merge into an empty
    table costs about a quarter more CPU."""
    empty = frame.clear()
    if mode == "scd2":
        empty = _with_scd2_columns(empty, None)
    try:
        write_deltalake(
            uri,
            empty.to_arrow(),
            mode="append",
            partition_by=list(partition_by) or None,
            commit_properties=commit_properties(),
        )
    except CommitFailedError:
        # delta-rs 1.6.6 sometimes refuses the loser's create instead ("Metadata changed
        # since last commit", seen on S3): the racer's table is there to merge into
        if not DeltaTable.is_deltatable(uri):
            raise
    return DeltaTable(uri)


def _with_scd2_columns(frame: pl.DataFrame, valid_at: dt.datetime | None) -> pl.DataFrame:
    """The first batch of an scd2 table: every row a current version from `valid_at`."""
    return frame.with_columns(
        pl.lit(valid_at or dt.datetime.now(dt.UTC)).cast(UTC_US).alias("valid_from"),
        pl.lit(None, UTC_US).alias("valid_to"),
        pl.lit(True).alias("is_current"),
    )


def _create_keyed(
    uri: str,
    frame: pl.DataFrame,
    mode: LoadMode,
    keys: Sequence[str],
    props: CommitProperties,
    partition_by: Sequence[str],
    valid_at: dt.datetime | None,
) -> Commit:
    if mode == "scd2":
        frame = _with_scd2_columns(frame, valid_at)
    write_deltalake(
        uri,
        frame.to_arrow(),
        mode="append",
        partition_by=list(partition_by) or None,
        commit_properties=props,
    )
    return Commit(
        DeltaTable(uri).version(), True, metrics={"num_target_rows_inserted": frame.height}
    )


def _check_partitioning(
    uri: str, table: DeltaTable | None, partition_by: Sequence[str], frame: pl.DataFrame
) -> None:
    missing = [c for c in partition_by if c not in frame.columns]
    if missing:
        raise LakeError(f"{uri}: partition column(s) {missing} are not in the batch")
    columns = table.metadata().partition_columns if table is not None else partition_by
    _refuse_long_partition_values(uri, frame, columns)
    if table is None or not partition_by:  # none asked: the table's own (see check_partitioning)
        return
    refuse_other_partitioning(uri, table.metadata().partition_columns, partition_by)


# A partition is a folder named `column=value`, the value percent-encoded (æ takes 6 bytes).
# Local file systems allow 255 bytes per name: delta-rs then fails mid-write with a Rust
# panic and leaves the files it wrote so far.
PARTITION_NAME_LIMIT = 255


def _refuse_long_partition_values(uri: str, frame: pl.DataFrame, columns: Sequence[str]) -> None:
    for column in columns:
        if column not in frame.columns or frame.schema[column] != pl.String:
            continue  # numbers and dates make short names
        values = frame[column].unique().drop_nulls()
        longest = max((len(percent_encoded(v, safe="")) for v in values), default=0)
        size = len(percent_encoded(column, safe="")) + 1 + longest
        if size > PARTITION_NAME_LIMIT:
            # the value itself is not shown: free text may hold what logs must not
            raise LakeError(
                f"{uri}: partition column {column!r} has a value whose folder name would be "
                f"{size} bytes (percent-encoded) where file systems allow "
                f"{PARTITION_NAME_LIMIT}. Partition by a column of short values (a year, a "
                "code), not free text: change `partition_by:` in the dataset YAML. "
                "Nothing was written"
            )


def check_partitioning(uri: str, partition_by: Sequence[str]) -> None:
    """Refuse a load whose `partition_by:` is not the table's, none included.

    write_batch takes no partition columns to mean the table's own. A loader that knows
    what the dataset YAML says calls this first: a `partition_by:` taken out of the YAML
    leaves the table partitioned, and loading on as if it were not would hide that."""
    if (table := open_table(uri)) is not None:
        refuse_other_partitioning(uri, table.metadata().partition_columns, partition_by)


def refuse_other_partitioning(
    uri: str, existing: Sequence[str], partition_by: Sequence[str]
) -> None:
    if list(existing) != list(partition_by):
        asked = list(partition_by) or "no partitioning (`partition_by:` is not set)"
        raise LakeError(
            f"{uri}: the table is partitioned by {list(existing) or 'nothing'}, the load asks "
            f"for {asked}. Repartitioning rewrites the table: do it as a migration, or change "
            f"`partition_by:` in the dataset YAML back to {list(existing)}. Nothing was written"
        )


def _refuse_case_twins(uri: str, frame: pl.DataFrame) -> None:
    """Delta column names are case-insensitive: delta-rs refuses `NOTE` beside `note` with a
    bare Exception (a traceback, not a LakeError) in the middle of the write."""
    seen: dict[str, str] = {}
    twins = []
    for column in frame.columns:
        if (first := seen.setdefault(column.casefold(), column)) != column:
            twins.append(f"{first!r} and {column!r}")
    if twins:
        raise LakeError(
            f"{uri}: the batch has columns that differ only by case ({', '.join(twins)}), and "
            "Delta column names are case-insensitive. Rename one of each pair (`columns:` in "
            "the dataset YAML, or the contract). Nothing was written"
        )


def _normalise(frame: pl.DataFrame) -> pl.DataFrame:
    # Delta stores categoricals as strings: compare and write them as such
    casts = [
        pl.col(c).cast(pl.String)
        for c, t in frame.schema.items()
        if isinstance(t, pl.Categorical | pl.Enum)
    ]
    return frame.with_columns(casts) if casts else frame


# --------------------------------------------------------------------------------------------
# Snapshot deletions
# --------------------------------------------------------------------------------------------


def _with_held_rows(
    uri: str, version: int, plan: SchemaPlan, keys: Sequence[str], held: pl.DataFrame
) -> SchemaPlan:
    """The snapshot with the stored rows of `held` keys it lacks: their new rows failed the
    contract, so the last valid ones stay (with their own `_batch_id`) rather than the keys
    vanishing from silver and being recorded as deleted."""
    frame = plan.frame
    held = held.select(keys).cast({k: frame.schema[k] for k in keys})
    held = held.join(frame.select(keys), on=list(keys), how="anti", nulls_equal=True)
    if held.is_empty():
        return plan
    stored = (
        pl.scan_delta(uri, version=version)
        .with_columns(pl.col(k).cast(frame.schema[k]) for k in keys)
        .join(held.lazy(), on=list(keys), how="semi", nulls_equal=True)
        .collect()
    )
    if stored.is_empty():
        return plan
    log.info(
        "%s: kept the stored rows of %d keys whose rows in this snapshot were quarantined",
        uri,
        stored.height,
    )
    kept = stored.select(c for c in stored.columns if c in frame.columns)
    merged = pl.concat([frame, kept], how="diagonal_relaxed").cast(frame.schema)
    return SchemaPlan(merged, plan.added, plan.widened, plan.breaks)


def vanished_keys(
    uri: str, frame: pl.DataFrame, keys: Sequence[str], *, version: int | None = None
) -> pl.DataFrame:
    """Key values in the table (at `version`) that the new snapshot no longer has."""
    now = frame.select(list(keys))
    # The batch's keys have the table's type or a wider one (a widened key column), so the
    # older keys are cast up: casting the batch down fails on values beyond the old type.
    before = pl.scan_delta(uri, version=version).select(list(keys)).unique().collect()
    before = before.cast(now.schema)
    return before.join(now, on=list(keys), how="anti", nulls_equal=True).sort(list(keys))


def _replayed(uri: str, app_id: str, mode: LoadMode, keys: Sequence[str]) -> Commit:
    """The Commit of a batch already in the table. A snapshot's vanished keys are recovered
    from the versions around its commit, so a crash between the snapshot and recording its
    deletions is finished by simply re-running the batch."""
    table = DeltaTable(uri)
    deleted = None
    if mode == "snapshot" and keys:
        version = _version_of(table, app_id)
        if version is not None and version > 0:
            after = pl.read_delta(uri, version=version, columns=list(keys))
            try:
                deleted = vanished_keys(uri, after, keys, version=version - 1)
            except FileNotFoundError:
                # Vacuum removed the version before it (the batch's bookkeeping was cut off
                # longer ago than the retention): the load is done, only this record is lost.
                log.warning(
                    "%s: batch %s was committed earlier, but the table version before it "
                    "has been vacuumed, so the keys this snapshot deleted cannot be recovered;"
                    " quality.deletions gets no rows for it",
                    uri,
                    app_id,
                )
    return Commit(table.version(), False, skipped="already committed", deleted=deleted)


def _landed(
    uri: str, app_id: str, mode: LoadMode, keys: Sequence[str], changes: tuple[str, ...]
) -> Commit:
    """The Commit of a batch whose commit reported an error but is in the log: committed
    during this call (it was not there when the call began), exactly once."""
    replayed = _replayed(uri, app_id, mode, keys)
    entry = _entry_of(DeltaTable(uri), app_id) or {}
    metrics = entry.get("operationMetrics") if entry.get("operation") == "MERGE" else None
    return Commit(
        int(entry.get("version", replayed.version)),
        True,
        deleted=replayed.deleted,
        metrics=merge_metrics(metrics or {}),
        schema_changes=changes,
    )


def _version_of(table: DeltaTable, app_id: str) -> int | None:
    entry = _entry_of(table, app_id)
    return None if entry is None else int(entry["version"])


def _entry_of(table: DeltaTable, app_id: str) -> dict[str, Any] | None:
    """The history entry (commit info) of the batch's commit."""
    for entry in table.history():
        if entry.get(APP_ID_KEY) == app_id:
            return entry
    return None


def record_deletions(
    uri: str,
    deleted: pl.DataFrame | None,
    *,
    dataset: str,
    batch_id: str,
    deleted_at: dt.datetime | None = None,
) -> Commit:
    """Append vanished keys to a deletions table (dataset, batch_id, key JSON, deleted_at).

    Idempotent per (dataset, batch_id), so it can follow `write_batch` on every run."""
    if deleted is None or deleted.is_empty():
        version = table_version(uri)
        return Commit(-1 if version is None else version, False, skipped="no deletions")
    rows = deleted.select(
        pl.lit(dataset).alias("dataset"),
        pl.lit(batch_id).alias("batch_id"),
        pl.struct(deleted.columns).struct.json_encode().alias("key"),
        pl.lit(deleted_at or dt.datetime.now(dt.UTC)).cast(UTC_US).alias("deleted_at"),
    )
    return write_batch(uri, rows, mode="append", app_id=f"deletions:{dataset}:{batch_id}")


def _sql_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"CAST('{value.isoformat()}' AS TIMESTAMP)"
    if isinstance(value, dt.date):
        return f"CAST('{value.isoformat()}' AS DATE)"
    return "'" + str(value).replace("'", "''") + "'"
