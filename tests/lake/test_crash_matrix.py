"""Crash matrix: a run SIGKILLed anywhere leaves every table whole and converges on re-run.

A home holds one loaded delivery of three file datasets (a keyed snapshot from CSV, a merge
from Excel, a streamed append of several Parquet parts) and a serving file; a second delivery
of each waits in the drop folders. A child process (tests/lake/crash_driver.py, started with
this interpreter) runs the next scheduled run over it — land, load, maintain, rebuild the
serving file — and SIGKILLs itself at a site of one of six points:

    after_landing       bytes stored / a file landed, nothing loaded from it
    parquet_write       a streamed part half written / a Delta write with its first file down
    before_commit       before any commit of the run (manifest, quarantine, silver, ...)
    before_bookkeeping  right after any commit / silver committed without its runs row
    checkpoint          during maintenance: compaction, the checkpoint file, mid-checkpoint
    serving_rebuild     before any statement on the new file, mid-CHECKPOINT, before replace

Which passage through the site dies is drawn (seeded) from the passages an uninterrupted run
makes, spread over the run: three kills of a site die early, midway and late.

After the kill, every Delta table must be readable (deltalake and DuckDB) and hold whole
batches only — exactly the state before the run or after it, never half or twice a batch —
with app transactions and commit metadata agreeing with the rows, and the serving file must
be the old one or a complete new one. The same run again, unkilled, must then give exactly
the lake of an uninterrupted run.

The matrix runs on three stores, one test class each. TestOnLocalDisk: the lake in the home,
22 kills, three to five per point. TestOnS3: the lake on S3 (the moto server of
tests/lake/objectstores.py), each home's lake a prefix of one bucket, configured as for any
run (KOMMUNELAKE_LAKE_URI and the AWS_* variables); drop folders and the serving file stay
local, as in production, and each killed child gets its own copy of the template's objects.
10 kills, every point at least once (S3_POINTS): a run on moto takes about three times as
long. There a half-written part is an unfinished multipart upload, a watched "folder" is a
prefix listed until the new object appears, and after the kill and after the re-run the
lake must hold nothing a later run would trip over: no lock object, no temporary log entry,
no checkpoint pointer without its checkpoint. TestOnAzure: the same kills with the lake in a
container of Azurite (tests/lake/objectstores.py; skipped without `make azurite`), where a
half-written part is a block list never committed. (CRASH_MATRIX_SCALE=N kills N times as
often, for a deeper search by hand.)

Two threads each take a case at a time: kill its child, check, re-run (a new child, as the
next scheduled run is a new process), check again; so at most two children run at once. On
two cores: local disk about 45 s (about 80 CPU-seconds), S3 about 95 s (about 150, over a third
of it moto's).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from bench.generate import generate as generate_cases
from connectors.demo import generate
from lake import storage
from lake.duck import duck_connect, sql_string
from lake.home import Home
from lake.quality import quarantine_app_id
from lake.serving import build_serving
from lake.tables import LOCK_NAME
from pipelines.catalog import catalog_tables
from pipelines.ingest import load_dataset
from tests.conftest import TEST_KEY
from tests.lake import crash_driver, objectstores

# point → (site, kills); a site's kills are spread over its passages (one in each of as many
# equal slices of the run), so three kills of 13 commits die early, midway and late.
POINTS = {
    "after_landing": (("landing:stored", 1), ("land:after", 2)),
    "parquet_write": (("parquet:partial", 2), ("delta_write:during", 2)),
    "before_commit": (("commit:before", 3),),
    "before_bookkeeping": (("record_run:before", 3), ("commit:after", 2)),
    "checkpoint": (("checkpoint:file", 1), ("compact:during", 2), ("checkpoint:timer", 1)),
    "serving_rebuild": (
        ("serving:statement", 1),
        ("serving:checkpoint", 1),
        ("serving:replace", 1),
    ),
}
# With the lake on S3: every point, fewer kills (a child on moto takes about three times as
# long). The serving file is local either way; its rebuild reads the lake over S3.
S3_POINTS = {
    "after_landing": (("landing:stored", 1),),
    "parquet_write": (("parquet:partial", 1), ("delta_write:during", 1)),
    "before_commit": (("commit:before", 2),),
    "before_bookkeeping": (("record_run:before", 1), ("commit:after", 2)),
    "checkpoint": (("checkpoint:file", 1),),
    "serving_rebuild": (("serving:statement", 1),),
}
STORES = {"local": POINTS, "s3": S3_POINTS, "azure": S3_POINTS}
# CRASH_MATRIX_SCALE=N kills N times as often per site: a deeper search by hand, not for CI.
SCALE = int(os.environ.get("CRASH_MATRIX_SCALE", "1"))
CASES = {
    store: [
        (point, site, slice_, kills * SCALE)
        for point, sites in points.items()
        for site, kills in sites
        for slice_ in range(kills * SCALE)
    ]
    for store, points in STORES.items()
}
REPO = Path(__file__).resolve().parents[2]
DATASETS = [spec.name for spec in crash_driver.datasets()]
CHILD_TIMEOUT = 120

# Columns that differ between two runs of the same batches (wall-clock time, home path).
_CLOCK = {
    "silver": ["_ingested_at"],
    "quarantine": ["quarantined_at"],
    "deletions": ["deleted_at"],
    "runs": ["started_at", "finished_at", "dagster_run_id"],
    "manifest": ["fetched_at", "path"],
}


@dataclass(frozen=True)
class Case:
    point: str
    index: int  # which of the site's kills
    site: str
    nth: int
    param: float

    def __str__(self) -> str:
        return f"{self.point}: {self.site} #{self.nth} (param {self.param:.2f})"


@dataclass(frozen=True)
class Store:
    """Where the lakes of the homes are: in each home (local) or, on S3 or Azure, under a
    prefix of one bucket (container) named after the home's folder below the test's
    temporary root."""

    name: str  # local | s3 | azure
    base: Path
    server: objectstores.Server | None = None
    bucket: str = ""  # the S3 bucket or Azure container
    # boto3 (S3) or an azure-storage-blob ContainerClient: copies, lists and reads objects
    client: Any = field(default=None, compare=False, repr=False)

    @property
    def scheme(self) -> str:
        return {"s3": "s3", "azure": "az"}[self.name]

    def home(self, root: Path) -> Home:
        if self.server is None:
            return Home(root)
        return Home(root, f"{self.scheme}://{self.bucket}/{root.relative_to(self.base).as_posix()}")

    def copy_home(self, template: Home, folder: Path) -> Home:
        """The template's home in `folder`, with its own copy of the lake."""
        shutil.copytree(template.root, folder / "home")
        home = self.home(folder / "home")
        if self.server is not None:
            source, target = template.location.prefix, home.location.prefix
            for key in self.keys(template):
                copy = target + key.removeprefix(source)
                if self.name == "s3":
                    self.client.copy_object(
                        Bucket=self.bucket, Key=copy, CopySource={"Bucket": self.bucket, "Key": key}
                    )
                else:
                    self.client.upload_blob(copy, self.read(key))
        return home

    def keys(self, home: Home) -> list[str]:
        """Every object of the home's lake (object storage only)."""
        prefix = home.location.prefix + "/"
        if self.name == "azure":
            return [blob.name for blob in self.client.list_blobs(name_starts_with=prefix)]
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def read(self, key: str) -> bytes:
        if self.name == "azure":
            return self.client.download_blob(key).readall()
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def connect(self):
        """A DuckDB connection as lake.connect() makes one: lake.duck, `delta` loaded, for S3
        also httpfs (Azure: azure) and a secret for the bucket. Loading the extensions costs
        about 0.4 s, so each thread checking kills keeps one."""
        return duck_connect(lake_uri=f"{self.scheme}://{self.bucket}" if self.server else None)

    def environment(self, home: Home) -> dict[str, str]:
        """A child's environment: the home's lake configured as for any kommunelake run."""
        env = {k: v for k, v in os.environ.items() if k != storage.LAKE_URI_VARIABLE}
        if home.is_remote:
            env[storage.LAKE_URI_VARIABLE] = home.lake_root
        return env


@dataclass(frozen=True)
class Lake:
    """What a home holds, without the columns that differ between runs of the same batches."""

    tables: dict[str, pl.DataFrame | None]  # "silver/cpr_persons", "quality/runs", ...
    # The same tables as opened for reading them: their logs answer the app-transaction and
    # history checks without opening them again (each open lists and reads the log).
    logs: dict[str, DeltaTable | None] = field(default_factory=dict, compare=False, repr=False)


# --------------------------------------------------------------------------------------------
# The home before the run, the uninterrupted run, and the children
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="class")
def store(request, tmp_path_factory) -> Iterator[Store]:
    """The store of the test class (its STORE); every fixture below is made once per class.
    S3: moto, one bucket, and the AWS_* variables set in this process too: the template is
    loaded and every lake read here."""
    base = tmp_path_factory.getbasetemp()
    if request.cls.STORE == "local":
        yield Store("local", base)
        return
    if request.cls.STORE == "azure":
        if not objectstores.azurite_installed():
            pytest.skip(objectstores.AZURITE_MISSING)
        with (
            objectstores.azurite_server(tmp_path_factory.mktemp("azurite")) as server,
            pytest.MonkeyPatch.context() as patch,
        ):
            for name, value in objectstores.azure_environment(server).items():
                patch.setenv(name, value)
            container = objectstores.create_container(server)
            client = objectstores.container_client(server, container)
            yield Store("azure", base, server, container, client)
        return
    with (
        objectstores.moto_server(tmp_path_factory.mktemp("moto")) as server,
        pytest.MonkeyPatch.context() as patch,
    ):
        for name, value in objectstores.s3_environment(server).items():
            patch.setenv(name, value)
        client = objectstores.s3_client(server)
        yield Store("s3", base, server, objectstores.create_bucket(server), client)


@pytest.fixture(scope="class")
def template(store, tmp_path_factory) -> Home:
    """A loaded first delivery and its serving file; the second delivery in the drop folders."""
    home = store.home(tmp_path_factory.mktemp("template") / "home")
    generate(home.root, persons=300)
    cases = home.drop / "case_extract"
    cases.mkdir(parents=True)
    generate_cases(2000, cases / "cases_a.csv", seed=1)
    specs = crash_driver.datasets()
    with crash_driver.small_chunks():
        for spec in specs:
            [batch] = load_dataset(spec, home, TEST_KEY).batches
            assert batch.status == "loaded", batch
    (home.root / crash_driver.CATALOG_DIR).mkdir()
    for name, frame in catalog_tables(specs).items():
        frame.write_parquet(home.root / crash_driver.CATALOG_DIR / f"{name}.parquet")
    build_serving(home, crash_driver.read_catalog(home))

    # The next delivery: a new snapshot (other persons, so keys vanish), a month of visits,
    # and a case extract repeating a key of its first piece in its last (cross-part repeat).
    later = tmp_path_factory.mktemp("later")
    generate(later, persons=300, seed=2027)
    shutil.copy(
        later / "drop" / "cpr_persons" / "cpr_personer.csv",
        home.drop / "cpr_persons" / "cpr_personer_b.csv",
    )
    shutil.copy(
        later / "drop" / "home_care_visits" / "hjemmepleje_besoeg_2026-10.xlsx",
        home.drop / "home_care_visits" / "hjemmepleje_besoeg_2026-11.xlsx",
    )
    extract = cases / "cases_b.csv"
    generate_cases(2000, extract, seed=2)
    lines = extract.read_text(encoding="utf-8").splitlines(keepends=True)
    extract.write_text("".join([*lines, lines[1]]), encoding="utf-8")
    return home


@pytest.fixture(scope="class")
def duck(store):
    """A DuckDB connection for the fixtures (the threads checking kills keep their own)."""
    con = store.connect()
    yield con
    con.close()


@pytest.fixture(scope="class")
def before(template) -> Lake:
    return snapshot(template)


@pytest.fixture(scope="class")
def serving_before(template, duck) -> frozenset[str]:
    return serving_objects(duck, template.serving_db)


@pytest.fixture(scope="class")
def serving_after(counts, duck) -> frozenset[str]:
    return serving_objects(duck, counts[1].serving_db)


@pytest.fixture(scope="class")
def counts(store, template, tmp_path_factory) -> tuple[dict[str, int], Home]:
    """The uninterrupted run (a child too, with the wrappers counting, never killing)."""
    home = store.copy_home(template, tmp_path_factory.mktemp("reference"))
    counted = home.root.parent / "counts.json"
    child = _child(store, home, ["--count", str(counted)])
    assert child.returncode == 0, child.stderr[-3000:]
    passages = json.loads(counted.read_text())
    assert set(passages) == {site for sites in POINTS.values() for site, _ in sites}
    assert all(passages.values()), passages  # every site is reached by the run
    return passages, home


@pytest.fixture(scope="class")
def after(counts) -> Lake:
    return snapshot(counts[1])


@dataclass(frozen=True)
class Matrix:
    """What every kill on a store is checked against."""

    store: Store
    template: Home
    before: Lake
    after: Lake
    serving_before: frozenset[str]
    serving_after: frozenset[str]
    root: Path  # the killed homes' folders
    connections: dict[int, Any] = field(default_factory=dict)  # thread id → DuckDB

    def duck(self):
        """This thread's DuckDB connection (one per thread: attached files are per database)."""
        ident = threading.get_ident()
        if ident not in self.connections:
            self.connections[ident] = self.store.connect()
        return self.connections[ident]


@pytest.fixture(scope="class")
def kills(
    request, store, template, counts, before, after, serving_before, serving_after, tmp_path_factory
):
    """Kill and check every selected case of the class, two at a time in threads, each while
    the other's child runs; a test waits for its own (see kill_and_check)."""
    selected = [
        item.callspec.params["case"]
        for item in request.session.items
        if item.module is sys.modules[__name__]
        and item.cls is request.cls
        and "case" in getattr(getattr(item, "callspec", None), "params", {})
    ]
    root = tmp_path_factory.mktemp("kills")
    matrix = Matrix(store, template, before, after, serving_before, serving_after, root)
    pool = ThreadPoolExecutor(max_workers=2)
    futures: dict[tuple[str, str, int, int], Future[None]] = {
        key: pool.submit(kill_and_check, matrix, draw(*key, counts[0])) for key in selected
    }
    yield futures
    pool.shutdown(cancel_futures=True)
    for con in matrix.connections.values():
        con.close()


def draw(point: str, site: str, slice_: int, slices: int, passages: dict[str, int]) -> Case:
    """The case killing `site` at a passage in the slice_-th of `slices` equal slices of its
    passages (seeded: the same case every time)."""
    rng = random.Random(f"{site}/{slice_}/{slices}")
    position = (slice_ + rng.random()) * passages[site] / slices
    return Case(point, slice_, site, 1 + int(position), rng.uniform(0.05, 0.95))


def kill_and_check(matrix: Matrix, case: Case) -> None:
    """Kill a child at the case's site on a copy of the template, check what it left, run
    the same run again (unkilled, a new process as the next scheduled run is) and check that
    it converged."""
    store, template = matrix.store, matrix.template
    home = store.copy_home(template, matrix.root / f"{case.site.replace(':', '-')}-{case.index}")
    killed = _child(store, home, [case.site, str(case.nth), str(case.param)])
    assert killed.returncode == -9, (
        f"{case}: the child was not killed (returncode {killed.returncode}):\n"
        f"{killed.stderr[-3000:]}"
    )
    assert f"KILL {case.site} {case.nth} " in killed.stderr, killed.stderr[-3000:]
    before, after, duck = matrix.before, matrix.after, matrix.duck()

    state = snapshot(home)  # every table reads through deltalake ...
    assert_duckdb_reads(duck, home, state, case)  # ... and DuckDB alike
    assert_whole_batches(before, after, state, case)
    old = template.serving_db.read_bytes()
    assert_serving_whole(duck, home, old, (matrix.serving_before, matrix.serving_after), case)
    assert_nothing_in_the_way(store, home, case)

    rerun = _child(store, home, [])  # the same run again, not killed
    assert rerun.returncode == 0, f"{case}: the re-run failed:\n{rerun.stderr[-3000:]}"
    state = snapshot(home)
    assert_duckdb_reads(duck, home, state, case)
    assert_converged(duck, home, state, after, matrix.serving_after, case)
    assert_whole_batches(before, after, state, case)
    assert_nothing_in_the_way(store, home, case)


def _child(store: Store, home: Home, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.lake.crash_driver", str(home.root), *args],
        cwd=REPO,
        env=store.environment(home),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )


# --------------------------------------------------------------------------------------------
# Reading a lake
# --------------------------------------------------------------------------------------------


def table_uris(home: Home) -> dict[str, str]:
    uris = {"landing/_manifest": home.manifest_uri, "quality/runs": home.runs_uri}
    uris["quality/deletions"] = home.table_uri("quality", "deletions")
    for name in DATASETS:
        for layer in ("silver", "quarantine"):
            uris[f"{layer}/{name}"] = home.table_uri(layer, name)
    return uris


def _kind(table: str) -> str:
    layer, name = table.split("/")
    return {"_manifest": "manifest", "runs": "runs", "deletions": "deletions"}.get(name, layer)


def snapshot(home: Home) -> Lake:
    tables, logs = {}, {}
    for table, uri in table_uris(home).items():
        try:
            logs[table] = DeltaTable(uri)
        except TableNotFoundError:
            tables[table] = logs[table] = None
            continue
        frame = pl.read_delta(logs[table]).drop(_CLOCK[_kind(table)])
        tables[table] = frame.sort(frame.columns, nulls_last=True)
    return Lake(tables, logs)


@contextmanager
def attached(con, path: Path) -> Iterator[None]:
    """The serving file at `path`, read-only, as database `serving` of `con`."""
    con.execute(f"ATTACH {sql_string(str(path))} AS serving (READ_ONLY)")
    try:
        yield
    finally:
        con.execute("DETACH serving")


def serving_objects(con, path: Path) -> frozenset[str]:
    """The views, tables and macros of a serving file (opening it proves it whole)."""
    with attached(con, path):
        rows = con.execute(
            "SELECT schema_name || '.' || view_name FROM duckdb_views() "
            "WHERE database_name = 'serving' AND NOT internal "
            "UNION ALL SELECT schema_name || '.' || table_name FROM duckdb_tables() "
            "WHERE database_name = 'serving' "
            "UNION ALL SELECT schema_name || '.' || function_name FROM duckdb_functions() "
            "WHERE database_name = 'serving' AND function_type LIKE '%macro' AND NOT internal"
        ).fetchall()
    return frozenset(name for (name,) in rows)


def new_batches(before: Lake, after: Lake) -> dict[str, str]:
    """Dataset → batch id of the delivery the run loads."""
    runs = after.tables["quality/runs"]
    old = set(before.tables["quality/runs"]["batch_id"])
    return {
        r["dataset"]: r["batch_id"] for r in runs.iter_rows(named=True) if r["batch_id"] not in old
    }


def batch_commits(log: DeltaTable, batch_id: str) -> int:
    """Commits of the table whose metadata names the batch (a doubled batch has two)."""
    return sum(e.get("kommunelake.batch_id") == batch_id for e in log.history())


def has_txn(log: DeltaTable | None, app_id: str) -> bool:
    return log is not None and log.transaction_version(app_id) is not None


def per_batch(frame: pl.DataFrame | None, column: str) -> dict[str, int]:
    if frame is None or frame.is_empty():
        return {}
    return dict(frame.group_by(column).len().iter_rows())


# --------------------------------------------------------------------------------------------
# What must hold after a kill, and after the re-run
# --------------------------------------------------------------------------------------------


def assert_duckdb_reads(con, home: Home, state: Lake, case: object) -> None:
    """DuckDB (through lake.duck) reads every Delta table as deltalake did for `state`:
    the same rows, and in silver the same rows per batch."""
    scans = {
        table: f"delta_scan({sql_string(uri)})"
        for table, uri in table_uris(home).items()
        if state.tables[table] is not None
    }
    counts = " UNION ALL ".join(f"SELECT '{t}', NULL, count(*) FROM {s}" for t, s in scans.items())
    batches = " UNION ALL ".join(
        f"SELECT '{t}', _batch_id, count(*) FROM {s} GROUP BY _batch_id"
        for t, s in scans.items()
        if t.startswith("silver/")
    )
    rows = con.execute(f"{counts} UNION ALL {batches}").fetchall()
    duck = {table: count for table, batch, count in rows if batch is None}
    assert duck == {t: state.tables[t].height for t in scans}, f"{case}: DuckDB reads {duck}"
    for name in DATASETS:
        table = f"silver/{name}"
        per_batch_duck = {batch: n for t, batch, n in rows if t == table and batch is not None}
        assert per_batch_duck == per_batch(state.tables[table], "_batch_id"), f"{case}: {table}"


def assert_whole_batches(before: Lake, after: Lake, state: Lake, case: object) -> None:
    """Each table is exactly its state before the run or after it, as its log says."""
    new = new_batches(before, after)
    for name in DATASETS:
        batch = new[name]
        silver_log = state.logs[f"silver/{name}"]
        silver = state.tables[f"silver/{name}"]
        committed = silver.equals(after.tables[f"silver/{name}"])
        assert committed or silver.equals(before.tables[f"silver/{name}"]), (
            f"{case}: silver/{name} is neither the state before the run nor after it: "
            f"rows per batch {per_batch(silver, '_batch_id')}"
        )
        expected = after if committed else before
        assert per_batch(silver, "_batch_id") == per_batch(
            expected.tables[f"silver/{name}"], "_batch_id"
        ), f"{case}: silver/{name} rows per batch"
        assert has_txn(silver_log, f"silver:{name}:{batch}") == committed, (
            f"{case}: silver/{name}: app transaction and rows disagree (rows committed: "
            f"{committed})"
        )
        assert batch_commits(silver_log, batch) == int(committed), (
            f"{case}: silver/{name} has {batch_commits(silver_log, batch)} commits of {batch}"
        )

        quarantine = state.tables[f"quarantine/{name}"]
        quarantined = quarantine.equals(after.tables[f"quarantine/{name}"])
        assert quarantined or quarantine.equals(before.tables[f"quarantine/{name}"]), (
            f"{case}: quarantine/{name} is half a batch: {per_batch(quarantine, 'batch_id')}"
        )
        # The commit's id names the batch and its outcome: the rows it holds for the batch.
        held = quarantine.filter(pl.col("batch_id") == batch) if quarantine is not None else None
        app_id = quarantine_app_id(name, batch, held) if held is not None else ""
        assert has_txn(state.logs[f"quarantine/{name}"], app_id) == quarantined, (
            f"{case}: quarantine/{name}: app transaction and rows disagree"
        )
        assert quarantined or not committed, f"{case}: {name} in silver before its quarantine"

    runs, runs_after = state.tables["quality/runs"], after.tables["quality/runs"]
    assert runs.join(runs_after, on=runs.columns, how="anti", nulls_equal=True).is_empty(), (
        f"{case}: quality/runs has rows an uninterrupted run does not"
    )
    assert runs.select("dataset", "batch_id", "status").is_unique().all(), f"{case}: doubled run"
    assert (
        before.tables["quality/runs"]
        .join(runs, on=runs.columns, how="anti", nulls_equal=True)
        .is_empty()
    ), f"{case}: quality/runs lost rows"
    for row in runs.filter(pl.col("batch_id").is_in(list(new.values()))).iter_rows(named=True):
        name = row["dataset"]
        assert state.tables[f"silver/{name}"].equals(after.tables[f"silver/{name}"]), (
            f"{case}: quality/runs records {name} batch {row['batch_id']} as {row['status']}, "
            "silver does not hold it"
        )
        run = f"run:{name}:{row['batch_id']}:{row['status']}"
        assert has_txn(state.logs["quality/runs"], run), case

    deletions = state.tables["quality/deletions"]  # the run's snapshot makes the first ones
    recorded = deletions is not None and deletions.equals(after.tables["quality/deletions"])
    assert recorded or deletions is None, f"{case}: quality/deletions holds part of a batch"
    deleted = f"deletions:cpr_persons:{new['cpr_persons']}"
    assert has_txn(state.logs["quality/deletions"], deleted) == recorded, case

    landed = state.tables["landing/_manifest"]
    assert landed["sha256"].is_unique().all(), f"{case}: a file landed twice"
    for one, other in ((landed, after), (before.tables["landing/_manifest"], state)):
        missing = one.join(
            other.tables["landing/_manifest"], on=landed.columns, how="anti", nulls_equal=True
        )
        assert missing.is_empty(), f"{case}: landing/_manifest: {missing}"
    manifest = state.logs["landing/_manifest"]
    for file in pl.read_delta(manifest).iter_rows(named=True):
        assert has_txn(manifest, f"landing:{file['dataset']}:{file['sha256']}"), case
        data = storage.read_bytes(file["path"])  # a local path or an s3:// URI
        assert (len(data), hashlib.sha256(data).hexdigest()) == (file["size"], file["sha256"])
    batches = set(landed["sha256"].str.slice(0, 16))
    started = set(runs["batch_id"]) | {
        b for name in DATASETS for b in per_batch(state.tables[f"quarantine/{name}"], "batch_id")
    }
    assert started <= batches, f"{case}: batches loaded without a manifest row"


def assert_serving_whole(con, home: Home, old: bytes, objects: tuple[frozenset[str], ...], case):
    """The serving file is the old file, byte for byte, or a complete new one."""
    if home.serving_db.read_bytes() == old:
        return
    assert serving_objects(con, home.serving_db) in objects, f"{case}: a partial serving file"


_LOG_ENTRY = re.compile(r"\d{20}\.(json|checkpoint\.parquet)|_last_checkpoint")


def assert_nothing_in_the_way(store: Store, home: Home, case: object) -> None:
    """Object storage: nothing a later run would trip over. No lock object (commits take no
    lock there), no probe marker, in every log only entries, checkpoints and
    `_last_checkpoint` (no temporary commit waiting for its copy), and that pointer naming a
    checkpoint that is there. (Local disk: the serving folder, checked in assert_converged;
    a table's lock file is an flock the kernel drops with its process.)"""
    if store.server is None:
        return
    keys = store.keys(home)
    present = set(keys)
    prefix = home.location.prefix + "/"
    odd = []
    for key in keys:
        path = PurePosixPath(key.removeprefix(prefix))
        if path.name == LOCK_NAME or path.parts[0] == "_atomic_probe":
            odd.append(key)
        elif path.parent.name == "_delta_log":
            if not _LOG_ENTRY.fullmatch(path.name):
                odd.append(key)
            elif path.name == "_last_checkpoint":
                pointer = json.loads(store.read(key))
                checkpoint = f"{path.parent}/{pointer['version']:020d}.checkpoint.parquet"
                if prefix + checkpoint not in present:
                    odd.append(f"{key} -> {checkpoint} (missing)")
    assert not odd, f"{case}: left in the lake: {odd}"


def assert_converged(con, home: Home, state: Lake, after: Lake, serving: frozenset[str], case):
    """The lake and serving file are exactly those of an uninterrupted run."""
    for table, frame in after.tables.items():
        got = state.tables[table]
        assert (got is None) == (frame is None), f"{case}: {table} exists in one run only"
        if frame is not None:
            assert got.equals(frame), (
                f"{case}: {table} after the re-run differs from an uninterrupted run:\n"
                f"{got.join(frame, on=frame.columns, how='anti', nulls_equal=True)}\n"
                f"{frame.join(got, on=frame.columns, how='anti', nulls_equal=True)}"
            )
    leftovers = sorted(p.name for p in home.serving_db.parent.iterdir())
    assert leftovers == [home.serving_db.name], f"{case}: left in serving/: {leftovers}"
    assert serving_objects(con, home.serving_db) == serving, f"{case}: serving objects"
    expected = {f"silver.{name}": after.tables[f"silver/{name}"].height for name in DATASETS}
    expected["quality.quarantine"] = sum(
        after.tables[f"quarantine/{name}"].height for name in DATASETS
    )
    expected["quality.runs"] = after.tables["quality/runs"].height
    with attached(con, home.serving_db):
        got = {
            view: con.execute(f"SELECT count(*) FROM serving.{view}").fetchall()[0][0]
            for view in expected
        }
    assert got == expected, f"{case}: the new serving file reads {got}"


# --------------------------------------------------------------------------------------------
# The matrix
# --------------------------------------------------------------------------------------------


def test_the_key_is_the_suites() -> None:
    assert crash_driver.KEY == TEST_KEY


class CrashMatrix:
    """The matrix on one store (STORE); each class below runs it on one, with its own
    template, uninterrupted run and children (the fixtures are class-scoped)."""

    STORE = ""

    def test_an_uninterrupted_run_loads_every_new_delivery(
        self, store, before, after, counts
    ) -> None:
        new = new_batches(before, after)
        assert sorted(new) == sorted(DATASETS)
        runs = after.tables["quality/runs"].filter(pl.col("batch_id").is_in(list(new.values())))
        assert runs["status"].to_list() == ["loaded"] * len(DATASETS)
        repeats = after.tables["quarantine/case_extract"].filter(
            (pl.col("batch_id") == new["case_extract"]) & (pl.col("check") == "duplicate_key")
        )
        assert repeats.height == 1  # the key repeated across parts
        assert before.tables["quality/deletions"] is None
        assert after.tables["quality/deletions"].height > 0  # the snapshot dropped keys
        assert_nothing_in_the_way(store, counts[1], "the uninterrupted run")

    def test_a_killed_run_leaves_whole_batches_and_converges(self, case, kills) -> None:
        # Killed, checked, re-run and checked again in kill_and_check, beside another case.
        kills[case].result(timeout=CHILD_TIMEOUT * 2 * (len(kills) + 1))


class TestOnLocalDisk(CrashMatrix):
    STORE = "local"


class TestOnS3(CrashMatrix):
    STORE = "s3"


class TestOnAzure(CrashMatrix):
    STORE = "azure"


def pytest_generate_tests(metafunc) -> None:
    """The kills of the class's store: `case` is (point, site, which kill, kills)."""
    if "case" in metafunc.fixturenames:
        cases = CASES[metafunc.cls.STORE]
        ids = [f"{p}-{s.replace(':', '_')}-{i}" for p, s, i, _ in cases]
        metafunc.parametrize("case", cases, ids=ids)
