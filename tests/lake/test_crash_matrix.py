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

22 kills in all, three to five per point (CRASH_MATRIX_SCALE=N kills N times as often, for a
deeper search by hand). The children run two at a time, beside the checks of those already
killed; the file needs about 70 CPU-seconds (half in this process, half in the children),
so well under a minute on two idle cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from bench.generate import generate as generate_cases
from connectors.demo import generate
from lake.duck import duck_connect, sql_string
from lake.home import Home
from lake.quality import quarantine_app_id
from lake.serving import build_serving
from pipelines.catalog import catalog_tables
from pipelines.ingest import load_dataset
from tests.conftest import TEST_KEY
from tests.lake import crash_driver

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
# CRASH_MATRIX_SCALE=N kills N times as often per site: a deeper search by hand, not for CI.
SCALE = int(os.environ.get("CRASH_MATRIX_SCALE", "1"))
CASES = [
    (point, site, slice_, kills * SCALE)
    for point, sites in POINTS.items()
    for site, kills in sites
    for slice_ in range(kills * SCALE)
]
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
class Killed:
    case: Case
    home: Home
    returncode: int
    stderr: str


@dataclass(frozen=True)
class Lake:
    """What a home holds, without the columns that differ between runs of the same batches."""

    tables: dict[str, pl.DataFrame | None]  # "silver/cpr_persons", "quality/runs", ...


# --------------------------------------------------------------------------------------------
# The home before the run, the uninterrupted run, and the children
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Home:
    """A loaded first delivery and its serving file; the second delivery in the drop folders."""
    home = Home(tmp_path_factory.mktemp("template") / "home")
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


@pytest.fixture(scope="module")
def duck():
    """One DuckDB connection (lake.duck, `delta` loaded) for every check: loading the
    extension costs about 0.4 s a connection."""
    con = duck_connect()
    yield con
    con.close()


@pytest.fixture(scope="module")
def before(template) -> Lake:
    return snapshot(template)


@pytest.fixture(scope="module")
def serving_before(template, duck) -> frozenset[str]:
    return serving_objects(duck, template.serving_db)


@pytest.fixture(scope="module")
def serving_after(counts, duck) -> frozenset[str]:
    return serving_objects(duck, counts[1].serving_db)


@pytest.fixture(scope="module")
def counts(template, tmp_path_factory) -> tuple[dict[str, int], Home]:
    """The uninterrupted run (a child too, with the wrappers counting, never killing)."""
    home = copy_home(template, tmp_path_factory.mktemp("reference"))
    counted = home.root.parent / "counts.json"
    child = _child([str(home.root), "--count", str(counted)])
    assert child.returncode == 0, child.stderr[-3000:]
    passages = json.loads(counted.read_text())
    assert set(passages) == {site for sites in POINTS.values() for site, _ in sites}
    assert all(passages.values()), passages  # every site is reached by the run
    return passages, home


@pytest.fixture(scope="module")
def after(counts) -> Lake:
    return snapshot(counts[1])


@pytest.fixture(scope="module")
def kills(request, template, counts, tmp_path_factory):
    """Start every selected case's child, two at a time; tests wait for their own."""
    selected = [
        item.callspec.params["case"]
        for item in request.session.items
        if item.module is sys.modules[__name__]
        and "case" in getattr(getattr(item, "callspec", None), "params", {})
    ]
    root = tmp_path_factory.mktemp("kills")
    pool = ThreadPoolExecutor(max_workers=2)
    futures: dict[tuple[str, str, int, int], Future[Killed]] = {
        key: pool.submit(_kill, draw(*key, counts[0]), template, root) for key in selected
    }
    yield futures
    pool.shutdown(cancel_futures=True)


def draw(point: str, site: str, slice_: int, slices: int, passages: dict[str, int]) -> Case:
    """The case killing `site` at a passage in the slice_-th of `slices` equal slices of its
    passages (seeded: the same case every time)."""
    rng = random.Random(f"{site}/{slice_}/{slices}")
    position = (slice_ + rng.random()) * passages[site] / slices
    return Case(point, slice_, site, 1 + int(position), rng.uniform(0.05, 0.95))


def _kill(case: Case, template: Home, root: Path) -> Killed:
    home = copy_home(template, root / f"{case.site.replace(':', '-')}-{case.index}")
    child = _child([str(home.root), case.site, str(case.nth), str(case.param)])
    return Killed(case, home, child.returncode, child.stderr)


def _child(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.lake.crash_driver", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )


def copy_home(template: Home, folder: Path) -> Home:
    shutil.copytree(template.root, folder / "home")
    return Home(folder / "home")


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
    tables = {}
    for table, uri in table_uris(home).items():
        if not DeltaTable.is_deltatable(uri):
            tables[table] = None
            continue
        frame = pl.read_delta(uri).drop(_CLOCK[_kind(table)])
        tables[table] = frame.sort(frame.columns, nulls_last=True)
    return Lake(tables)


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


def batch_commits(uri: str, batch_id: str) -> int:
    """Commits of the table whose metadata names the batch (a doubled batch has two)."""
    return sum(e.get("kommunelake.batch_id") == batch_id for e in DeltaTable(uri).history())


def has_txn(uri: str, app_id: str) -> bool:
    return DeltaTable.is_deltatable(uri) and DeltaTable(uri).transaction_version(app_id) is not None


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


def assert_whole_batches(home: Home, before: Lake, after: Lake, state: Lake, case: object) -> None:
    """Each table is exactly its state before the run or after it, as its log says."""
    new = new_batches(before, after)
    for name in DATASETS:
        batch = new[name]
        silver_uri = home.table_uri("silver", name)
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
        assert has_txn(silver_uri, f"silver:{name}:{batch}") == committed, (
            f"{case}: silver/{name}: app transaction and rows disagree (rows committed: "
            f"{committed})"
        )
        assert batch_commits(silver_uri, batch) == int(committed), (
            f"{case}: silver/{name} has {batch_commits(silver_uri, batch)} commits of {batch}"
        )

        quarantine = state.tables[f"quarantine/{name}"]
        quarantined = quarantine.equals(after.tables[f"quarantine/{name}"])
        assert quarantined or quarantine.equals(before.tables[f"quarantine/{name}"]), (
            f"{case}: quarantine/{name} is half a batch: {per_batch(quarantine, 'batch_id')}"
        )
        # The commit's id names the batch and its outcome: the rows it holds for the batch.
        held = quarantine.filter(pl.col("batch_id") == batch) if quarantine is not None else None
        app_id = quarantine_app_id(name, batch, held) if held is not None else ""
        assert has_txn(home.table_uri("quarantine", name), app_id) == quarantined, (
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
        assert has_txn(home.runs_uri, f"run:{name}:{row['batch_id']}:{row['status']}"), case

    deletions = state.tables["quality/deletions"]  # the run's snapshot makes the first ones
    recorded = deletions is not None and deletions.equals(after.tables["quality/deletions"])
    assert recorded or deletions is None, f"{case}: quality/deletions holds part of a batch"
    uri = home.table_uri("quality", "deletions")
    assert has_txn(uri, f"deletions:cpr_persons:{new['cpr_persons']}") == recorded, case

    landed = state.tables["landing/_manifest"]
    assert landed["sha256"].is_unique().all(), f"{case}: a file landed twice"
    for one, other in ((landed, after), (before.tables["landing/_manifest"], state)):
        missing = one.join(
            other.tables["landing/_manifest"], on=landed.columns, how="anti", nulls_equal=True
        )
        assert missing.is_empty(), f"{case}: landing/_manifest: {missing}"
    for file in pl.read_delta(home.manifest_uri).iter_rows(named=True):
        assert has_txn(home.manifest_uri, f"landing:{file['dataset']}:{file['sha256']}"), case
        data = Path(file["path"]).read_bytes()
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


def test_an_uninterrupted_run_loads_every_new_delivery(before, after) -> None:
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


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{p}-{s.replace(':', '_')}-{i}" for p, s, i, _ in CASES]
)
def test_a_killed_run_leaves_whole_batches_and_converges(
    case, kills, template, before, after, duck, serving_before, serving_after
) -> None:
    killed = kills[case].result(timeout=CHILD_TIMEOUT * (len(kills) + 1))
    what = killed.case
    assert killed.returncode == -9, (
        f"{what}: the child was not killed (returncode {killed.returncode}):\n"
        f"{killed.stderr[-3000:]}"
    )
    assert f"KILL {what.site} {what.nth} " in killed.stderr, killed.stderr[-3000:]
    home = killed.home

    state = snapshot(home)  # every table reads through deltalake ...
    assert_duckdb_reads(duck, home, state, what)  # ... and DuckDB alike
    assert_whole_batches(home, before, after, state, what)
    old = template.serving_db.read_bytes()
    assert_serving_whole(duck, home, old, (serving_before, serving_after), what)

    crash_driver.run(home)  # the same run again, not killed, in this process
    state = snapshot(home)
    assert_duckdb_reads(duck, home, state, what)
    assert_converged(duck, home, state, after, serving_after, what)
    assert_whole_batches(home, before, after, state, what)
