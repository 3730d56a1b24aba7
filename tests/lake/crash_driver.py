"""The child process of tests/lake/test_crash_matrix.py: one scheduled run, SIGKILLed at a site.

    python -m tests.lake.crash_driver HOME SITE NTH PARAM
    python -m tests.lake.crash_driver HOME --count COUNTS.json
    python -m tests.lake.crash_driver HOME

The lake is HOME/lake, or KOMMUNELAKE_LAKE_URI (e.g. s3://bucket/prefix, with the AWS_*
variables) as for any kommunelake process; the sites work on local disk and on S3.

A run is what a scheduled load of the file datasets does, with plain functions: `load_dataset`
for each of `datasets()`, `maintain` (compact, checkpoint, vacuum) of each silver table, then
the serving rebuild. SITE names a place in that run and NTH which passage through it dies: the
process SIGKILLs itself there (after printing `KILL <site> <nth> <how>` to stderr). PARAM in
[0, 1) says how far into a write to die where a site needs it. With --count nothing dies: the
passages through every site are counted into COUNTS.json, so the test can draw NTH. With the
home alone it is a plain run, without wrappers: the re-run after a kill.

The wrappers are installed in this process only; production code has no hooks. Only the
parent test and this process import this module; it imports no Dagster (the serving catalog
comes from Parquet files the test wrote into the home), so a child starts in about 2 s.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
from deltalake import DeltaTable
from deltalake.table import TableMerger, TableOptimizer

import lake.bulk
import lake.landing
import lake.quality
import lake.serving
import lake.storage
import lake.tables
import pipelines.delivery
from connectors.formats import chunks
from lake.home import Home, resolve_home
from lake.maintenance import maintain
from lake.serving import build_serving
from pipelines.ingest import load_dataset
from pipelines.specs import DatasetSpec, load_spec, spec_by_name

REPO = Path(__file__).resolve().parents[2]
# Equal to tests.conftest.TEST_KEY (asserted by the test); importing conftest would start
# the demo services' imports and cost every child 0.6 s.
KEY = b"test-key-" + b"x" * 32
CHUNK_BYTES = 48 * 1024  # the case extract then streams as several Parquet parts
CATALOG_DIR = "crash_catalog"  # <home>/crash_catalog/<table>.parquet: build_serving's catalog

SITES = (
    "landing:stored",  # a file's bytes stored in landing, its manifest row not committed
    "land:after",  # a file landed (bytes and manifest row), nothing loaded from it
    "parquet:partial",  # a streamed Parquet part half written (PARAM: how much of it); on S3
    # its upload half done: PARAM of the bytes sent as the first part of a multipart upload
    "delta_write:during",  # a Delta write/merge has put its first data file down, no commit
    "commit:before",  # any load commit (manifest, quarantine, silver, deletions, runs)
    "commit:after",  # ... and right after it
    "record_run:before",  # silver committed, its quality.runs row not
    "compact:during",  # compaction has written its first file
    "checkpoint:file",  # the checkpoint file has appeared in _delta_log
    "checkpoint:timer",  # PARAM x 20 ms into create_checkpoint
    "serving:statement",  # before the NTH statement on the new serving file
    "serving:checkpoint",  # PARAM x 20 ms into the serving file's CHECKPOINT
    "serving:replace",  # the new serving file complete, not yet moved over the old one
)
SAME_PASSAGES = {"checkpoint:timer": "checkpoint:file"}  # site → the site counting its passages


def datasets() -> list[DatasetSpec]:
    """Snapshot with keys (write_batch + deletions), merge from Excel, streamed append."""
    return [
        spec_by_name("cpr_persons"),
        spec_by_name("home_care_visits"),
        load_spec(REPO / "bench" / "case_extract.yaml"),
    ]


@contextmanager
def small_chunks() -> Iterator[None]:
    saved = chunks.CHUNK_BYTES
    chunks.CHUNK_BYTES = CHUNK_BYTES
    try:
        yield
    finally:
        chunks.CHUNK_BYTES = saved


def read_catalog(home: Home) -> dict[str, pl.DataFrame]:
    return {p.stem: pl.read_parquet(p) for p in sorted((home.root / CATALOG_DIR).glob("*.parquet"))}


def run(home: Home, specs: list[DatasetSpec] | None = None) -> None:
    """One scheduled run: load, maintain, serve."""
    specs = specs or datasets()
    with small_chunks():
        for spec in specs:
            load_dataset(spec, home, KEY)
    for spec in specs:  # as the maintenance assets call it
        maintain(home.table_uri("silver", spec.name), storage_options=home.storage_options())
    build_serving(home, read_catalog(home))


# --------------------------------------------------------------------------------------------
# Sites: wrappers that count passages and kill at the chosen one
# --------------------------------------------------------------------------------------------


class Killer:
    def __init__(self, site: str | None, nth: int, param: float) -> None:
        self.site, self.nth, self.param = site, nth, param
        self.counts: Counter[str] = Counter()

    def hit(self, site: str) -> bool:
        """Count a passage through `site`; True when this passage is the one to die at."""
        self.counts[site] += 1
        target = SAME_PASSAGES.get(self.site or "", self.site)
        return site == target and self.counts[site] == self.nth

    def passages(self) -> dict[str, int]:
        counts = dict(self.counts)
        counts.update({alias: counts.get(site, 0) for alias, site in SAME_PASSAGES.items()})
        return dict(sorted(counts.items()))

    def die(self, how: str) -> None:
        os.write(2, f"KILL {self.site} {self.nth} {how}\n".encode())
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)  # never reached: SIGKILL cannot be caught

    def around(self, site: str, call: Callable[[], Any], watch: str | None = None) -> Any:
        """Run `call`; at the chosen passage die during it (when a new entry appears in the
        folder `watch`, or PARAM x 20 ms in without `watch`)."""
        if not self.hit(site):
            return call()
        stop = threading.Event()
        before = None if watch is None else set(_entries(watch))
        thread = threading.Thread(target=self._watch, args=(watch, before, stop), daemon=True)
        thread.start()
        try:
            result = call()
        finally:
            stop.set()
        thread.join()
        self.die("after-return")  # the write ended before the watcher saw it
        return result

    def _watch(self, folder: str | None, before: set[str] | None, stop: threading.Event) -> None:
        if folder is None or before is None:
            deadline = time.monotonic() + self.param * 0.02
            while time.monotonic() < deadline:
                if stop.is_set():
                    return
            self.die("during")
            return
        remote = lake.storage.parse_lake_uri(folder).is_remote
        while not stop.is_set():
            if set(_entries(folder)) - before:
                self.die("during")
                return
            if remote:
                time.sleep(0.002)  # a LIST request per poll: leave the store some room


def _entries(folder: str) -> list[str]:
    """The names directly in a local folder or under an object-store prefix."""
    if not lake.storage.parse_lake_uri(folder).is_remote:
        try:
            return os.listdir(folder)
        except FileNotFoundError:
            return []
    from pyarrow import fs

    filesystem, path = lake.storage.filesystem(folder)
    selector = fs.FileSelector(path, allow_not_found=True, recursive=False)
    return [info.base_name for info in filesystem.get_file_info(selector)]


def _local(uri: str) -> str:
    return uri.removeprefix("file://").rstrip("/")


def _table_dir(target: object) -> str:
    return _local(target.table_uri if isinstance(target, DeltaTable) else os.fspath(target))


def install(killer: Killer) -> None:
    """Wrap the functions each site sits in (in this process only)."""
    hit, die, around = killer.hit, killer.die, killer.around

    def after(site: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = function(*args, **kwargs)
            if hit(site):
                die("after-return")
            return result

        return wrapper

    # Landing stores bytes (`land`, `write_once`) or streams a file (`land_file`, `copy_in` or
    # `copy_once`): landing's own calls only (streamed parts on S3 use write_once too).
    for name in ("land", "land_file"):
        if hasattr(pipelines.delivery, name):
            setattr(
                pipelines.delivery, name, after("land:after", getattr(pipelines.delivery, name))
            )
    lake.landing.storage = _Storage(
        {
            name: after("landing:stored", getattr(lake.storage, name))
            for name in ("write_once", "copy_in", "copy_once")
            if hasattr(lake.storage, name)
        }
    )

    def commit(function: Callable[..., Any], table_of: Callable[..., str] | None = None):
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if hit("commit:before"):
                die("before-call")

            def call() -> Any:
                return function(*args, **kwargs)

            result = around("delta_write:during", call, table_of(*args)) if table_of else call()
            if hit("commit:after"):
                die("after-return")
            return result

        return wrapper

    def written_table(target: object, *_: Any, **__: Any) -> str:
        return _table_dir(target)

    def merged_table(merger: TableMerger) -> str:
        return _local(merger._table.table_uri())

    for module in (lake.tables, lake.quality, lake.landing):
        module.write_deltalake = commit(module.write_deltalake, written_table)
    TableMerger.execute = commit(TableMerger.execute, merged_table)
    DeltaTable.create_write_transaction = commit(DeltaTable.create_write_transaction)
    lake.bulk.create_table_with_add_actions = commit(lake.bulk.create_table_with_add_actions)

    write_parquet = pl.DataFrame.write_parquet
    upload_partially = threading.Event()  # set: the next part upload (S3) dies half done

    def partial_parquet(frame: pl.DataFrame, file: Any, *args: Any, **kwargs: Any) -> None:
        if not hit("parquet:partial"):
            return write_parquet(frame, file, *args, **kwargs)
        if not isinstance(file, str | os.PathLike):  # a part for object storage: in memory
            write_parquet(frame, file, *args, **kwargs)
            upload_partially.set()
            return None
        buffer = io.BytesIO()
        write_parquet(frame, buffer, *args, **kwargs)
        data = buffer.getvalue()
        with open(file, "wb") as out:
            out.write(data[: int(len(data) * killer.param)])
            out.flush()
            os.fsync(out.fileno())
        die(f"wrote {int(len(data) * killer.param)} of {len(data)} bytes")
        return None

    pl.DataFrame.write_parquet = partial_parquet

    def part_upload(uri: str, data: bytes, options: Any = None) -> bool:
        if not upload_partially.is_set():
            return lake.storage.write_once(uri, data, options)
        filesystem, path = lake.storage.filesystem(uri, options)
        out = filesystem.open_output_stream(path)
        sent = int(len(data) * killer.param)
        out.write(data[:sent])
        out.flush()  # starts a multipart upload and sends what was written as its first part
        die(f"sent {sent} of {len(data)} bytes, upload not completed")
        return True

    lake.bulk.storage = _Storage({"write_once": part_upload})

    record_run = lake.quality.record_run

    def record(*args: Any, **kwargs: Any) -> None:
        if hit("record_run:before"):
            die("before-call")
        return record_run(*args, **kwargs)

    lake.quality.record_run = record

    compact = TableOptimizer.compact

    def compacting(optimizer: TableOptimizer, *args: Any, **kwargs: Any) -> Any:
        return around(
            "compact:during",
            lambda: compact(optimizer, *args, **kwargs),
            _local(optimizer.table.table_uri),
        )

    TableOptimizer.compact = compacting

    create_checkpoint = DeltaTable.create_checkpoint

    def checkpoint(table: DeltaTable) -> None:
        log = _local(table.table_uri) + "/_delta_log"
        watch = None if killer.site == "checkpoint:timer" else log
        return around("checkpoint:file", lambda: create_checkpoint(table), watch)

    DeltaTable.create_checkpoint = checkpoint

    connect = lake.serving.duck_connect

    def serving_connect(*args: Any, **kwargs: Any) -> _Connection:
        return _Connection(connect(*args, **kwargs), killer)

    lake.serving.duck_connect = serving_connect
    lake.serving.os = _ServingOs(killer)


class _Connection:
    """A DuckDB connection for the serving build that dies before its NTH statement."""

    def __init__(self, con: Any, killer: Killer) -> None:
        self._con, self._killer = con, killer

    def execute(self, sql: str, *args: Any) -> Any:
        if self._killer.hit("serving:statement"):
            self._killer.die(f"before {sql.split(' AS ')[0][:60]!r}")
        if sql.strip().upper() == "CHECKPOINT":
            return self._killer.around("serving:checkpoint", lambda: self._con.execute(sql, *args))
        return self._con.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


class _Storage:
    """`lake.storage` for one module, with some of its functions replaced."""

    def __init__(self, replaced: dict[str, Callable[..., Any]]) -> None:
        self._replaced = replaced

    def __getattr__(self, name: str) -> Any:
        return self._replaced.get(name) or getattr(lake.storage, name)


class _ServingOs:
    """`os` for lake.serving: dies before the new file replaces the old one."""

    def __init__(self, killer: Killer) -> None:
        self._killer = killer

    def replace(self, source: Any, target: Any) -> None:
        if self._killer.hit("serving:replace"):
            self._killer.die("before os.replace")
        os.replace(source, target)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def main(argv: list[str]) -> int:
    home = resolve_home(argv[0])  # the lake: <home>/lake, or KOMMUNELAKE_LAKE_URI
    if len(argv) == 1:
        run(home)
        return 0
    if argv[1] == "--count":
        killer = Killer(None, 0, 0.0)
        install(killer)
        run(home)
        Path(argv[2]).write_text(json.dumps(killer.passages()))
        return 0
    site, nth, param = argv[1], int(argv[2]), float(argv[3])
    if site not in SITES:
        raise SystemExit(f"unknown site {site!r}; one of {SITES}")
    install(Killer(site, nth, param))
    run(home)
    return 0  # the site was never reached: the test sees returncode 0, not -9


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
