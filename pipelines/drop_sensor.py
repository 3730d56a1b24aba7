"""Drop folders start runs: one run per new file, keyed by its content.

The run key is `<dataset>:<sha256>`, and Dagster never starts two runs with the same key, so
the same bytes dropped twice (under any name) load once. A file moved back from rejected/
is retried: its key gets `:retry<n>`, n being how often its batch was rejected. Hashes are
cached in the sensor's cursor by (path, size, mtime), so an unchanged folder costs a
directory listing per tick.
A file modified in the last few seconds may still be arriving (a copy or an SFTP upload in
progress) and waits for the next tick. Datasets with an SFTP source are picked up into their
drop folder first, so they follow the same path.

No `from __future__ import annotations`: Dagster reads the `lake: LakeResource` hint.
"""

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path

import dagster as dg
import polars as pl

from connectors.files import drop_files, is_settled
from connectors.sftp import SftpError
from lake import quality
from lake.errors import LakeError
from lake.privacy import redact, shown_name
from pipelines.abandoned_runs import fail_abandoned_runs
from pipelines.checks import silver_key
from pipelines.delivery import SETTLE_TAG, SnapshotHead, pick_up, snapshot_heads, subfolder_lines
from pipelines.resources import LakeResource
from pipelines.specs import DatasetSpec, usable_specs


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def path_digest(path: Path) -> str:
    """The sensor cursor's key for a file: Dagster stores the cursor, and a file's name may
    hold a CPR number (privacy.shown_name), so the path itself is not kept there."""
    return hashlib.sha256(str(path).encode()).hexdigest()[:32]


def drop_requests(
    drop: Path,
    specs: Sequence[DatasetSpec],
    cache: dict[str, list],
    now: float,
    warn: Callable[[str], None],
    rejections: Mapping[tuple[str, str], int],
    heads: Mapping[str, SnapshotHead] | None = None,
) -> tuple[list[dg.RunRequest], dict[str, list]]:
    """Run requests for the files in every dataset's drop folder, and the new hash cache.

    `rejections` counts the rejected loads of each (dataset, batch id): a file moved back
    from rejected/ (after a fix in the YAML) gets a new run key, so it is retried once; the
    same bytes otherwise keep their key and never load twice. An earlier snapshot's bytes
    dropped again after a newer one loaded (`heads`, `SnapshotHead.resent`) get a key of
    their own too: the run moves the file aside, saying why it is not loaded.

    A folder or file that cannot be read (permissions, an I/O error, deleted since the
    listing) is named through `warn` and skipped: it must not stop the other files' runs."""
    requests, seen = [], {}
    for spec in specs:
        try:
            paths = drop_files(drop / spec.name, spec.patterns)
        except OSError as error:
            warn(f"{spec.name}: cannot list drop/{spec.name}: {error}; its files get no run")
            continue
        for path in paths:
            try:
                if not is_settled(path, now):
                    continue
                stat = path.stat()
                entry = path_digest(path)
                size, mtime, sha = cache.get(entry, (None, None, None))
                if (size, mtime) != (stat.st_size, stat.st_mtime_ns):
                    sha = file_sha256(path)
            except OSError as error:
                warn(
                    f"{spec.name}: cannot read {shown_name(path.name)}:"
                    f" {redact(str(error))}; it gets no run until it can"
                )
                continue
            seen[entry] = [stat.st_size, stat.st_mtime_ns, sha]
            retry = rejections.get((spec.name, sha[:16]), 0)  # the batch id: 16 hex digits
            key = f"{spec.name}:{sha}" + (f":retry{retry}" if retry else "")
            head = (heads or {}).get(spec.name)
            if head is not None and head.resent(sha, path):
                key += f":resent{stat.st_mtime_ns}"
            requests.append(
                dg.RunRequest(
                    run_key=key,
                    asset_selection=[silver_key(spec.name)],
                    tags={
                        "kommunelake/dataset": spec.name,
                        "kommunelake/file": shown_name(path.name),
                        SETTLE_TAG: "true",  # the run leaves files still arriving, too
                    },
                )
            )
    return requests, seen


def rejection_counts(history: pl.DataFrame) -> dict[tuple[str, str], int]:
    """How often each (dataset, batch id) was rejected; `history` is `quality.runs(home)`."""
    rejected = history.filter(pl.col("status") == "rejected")
    counts = rejected.group_by("dataset", "batch_id").len()
    return {(dataset, batch): n for dataset, batch, n in counts.iter_rows()}


def unknown_folders(drop: Path, datasets: Collection[str]) -> list[str]:
    """A line for each folder in drop/ that holds files but is no dataset's (a mistyped
    `sickleave/`): its files are never loaded, and nothing else would say so."""
    try:
        folders = sorted(p for p in drop.iterdir() if p.is_dir())
    except OSError:
        return []  # no drop/ yet, or unreadable: drop_requests names each dataset's folder
    lines = []
    for folder in folders:
        if folder.name in datasets or folder.name.startswith((".", "_")):
            continue
        try:
            files = drop_files(folder, ["*"])
        except OSError:
            continue
        if files:
            name = shown_name(folder.name)
            lines.append(
                f"drop/{name}/ holds {len(files)} file(s), but no dataset named {name} loads"
                " (no pipelines/datasets/<name>.yaml, or one with an error): they are not"
                " loaded; move them to their dataset's folder"
            )
    return lines


@contextlib.contextmanager
def forwarded_warnings(logger: str, dataset: str, warn: Callable[[str], None]) -> Iterator[None]:
    """Pass the warnings of `logger` to `warn` meanwhile: the daemon shows a tick's log in
    the UI from the sensor's own logger only, so a pickup's warnings (a file the server
    will not delete, one changed while downloading) reached only the daemon's stderr."""

    class _Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            warn(f"{dataset}: {record.getMessage()}")

    handler = _Forward(logging.WARNING)
    logging.getLogger(logger).addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger(logger).removeHandler(handler)


def loaded_specs(
    specs: Sequence[DatasetSpec],
    repository: dg.RepositoryDefinition | None,
    warn: Callable[[str], None],
) -> list[DatasetSpec]:
    """The datasets whose silver asset the running code location has. The YAMLs are read on
    every tick (a fixed one is watched again at once, as its asset is there), but a YAML
    added since the location loaded has no asset yet: a run request for it fails the whole
    tick in the daemon, and with it every other dataset's new files. Its files wait."""
    if repository is None:  # evaluated outside a code location (a direct call in a test)
        return list(specs)
    known = repository.asset_graph.get_all_asset_keys()
    loaded = []
    for spec in specs:
        if silver_key(spec.name) in known:
            loaded.append(spec)
        else:
            warn(
                f"{spec.name}: the dataset is not loaded in the running code location yet;"
                " its files wait: reload the code location (Deployment > Reload in the UI,"
                " or restart `kommunelake ui`)"
            )
    return loaded


def drop_folder_sensor(
    specs: Callable[[], Sequence[DatasetSpec]] = usable_specs,
    clock: Callable[[], float] = time.time,
) -> dg.SensorDefinition:
    @dg.sensor(
        name="drop_folders",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        # The daemon refuses a run request for assets unless the sensor names its targets:
        # without this, every tick with a new file failed and nothing was ever loaded.
        target=dg.AssetSelection.key_prefixes("silver"),
        description="Starts a load of a dataset for each new file in drop/<dataset>/ (run key "
        "= content hash, so the same file twice loads once). Gold and serving follow by "
        "automation once the dataset's blocking checks pass.",
    )
    def _sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
        cache = json.loads(context.cursor) if context.cursor else {}
        home = lake.lake_home()
        # A dead run would hold the queue, and so every run this sensor requests.
        instance = context.instance
        daemon_runs = isinstance(instance.run_launcher, dg.DefaultRunLauncher)
        for line in fail_abandoned_runs(instance, daemon_runs=daemon_runs):
            context.log.warning(line)
        every = list(specs())
        for line in unknown_folders(home.drop, {spec.name for spec in every}):
            context.log.warning(line)
        watched = loaded_specs(every, context.repository_def, context.log.warning)
        for spec in watched:
            if spec.source.get("type") != "sftp":
                continue
            # One vendor's server being down must not stop the other datasets' pickups.
            try:
                with forwarded_warnings("connectors.sftp", spec.name, context.log.warning):
                    pick_up(spec, home)
            except (LakeError, SftpError) as error:
                context.log.warning(f"{spec.name}: SFTP pickup failed: {redact(str(error))}")
        in_subfolders = [line for spec in watched for line in subfolder_lines(spec, home)]
        for line in in_subfolders:
            context.log.warning(line)
        history = quality.runs(home)  # once per tick: the sensor runs every 30 s
        requests, seen = drop_requests(
            home.drop,
            watched,
            cache,
            clock(),
            context.log.warning,
            rejection_counts(history),
            snapshot_heads(history, watched),
        )
        if not requests:
            reason = "no files in the drop folders"
            if in_subfolders:
                reason += (
                    f"; {len(in_subfolders)} sub-folder(s) of a drop folder hold files, which"
                    " are not loaded (see the tick log)"
                )
            return dg.SensorResult(skip_reason=reason, cursor=json.dumps(seen))
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen))

    return _sensor
