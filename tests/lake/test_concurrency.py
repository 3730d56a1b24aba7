"""Concurrent and ambiguous Delta commits (issue #5).

- Every commit kommunelake makes carries the shared retry budget (lake.tables.COMMIT_RETRIES).
- 8 spawned processes append 20 batches each through `write_batch`, on local disk, on S3
  (moto) and on Azure (Azurite): the log ends up with versions 0..N without a gap, every
  batch is in the table exactly once (its rows, its app transaction, one commit), no
  referenced file is missing.
- An ambiguous commit — the log entry is written, the writer is told it failed — on S3 (a
  proxy in front of moto answers 500 or drops the connection after moto took the PUT) and on
  local disk (an LD_PRELOAD shim makes the link of the log entry report EIO): the call
  returns the batch as committed, re-running the batch adds nothing, the table equals one
  written without faults, and no file the log refers to is missing. (When the ambiguous
  commit is the one that creates the table, deltalake 1.6.6 writes it again as version 1:
  rows once, the commit twice; see the last test.)
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

import lake.bulk
import lake.history
import lake.tables
from lake import landing, quality
from lake.bulk import PartWriter
from lake.errors import LakeError
from lake.home import Home
from lake.tables import APP_ID_KEY, COMMIT_RETRIES, Commit, write_batch
from tests.lake import objectstores
from tests.lake.commit_faults import FaultyProxy, ambiguous_commit_proxy

REPO = Path(__file__).resolve().parents[2]
WRITERS, BATCHES, ROWS = 8, 20, 3
DELTA_DEFAULT_RETRIES = 15  # deltalake's own default, which ran out with 4 writers on moto


# --- fixtures -------------------------------------------------------------------------------


# moto and azurite: tests/conftest.py (one server each per module)


@pytest.fixture(scope="module")
def proxy(moto, tmp_path_factory) -> Iterator[FaultyProxy]:
    with ambiguous_commit_proxy(moto.url, tmp_path_factory.mktemp("proxy")) as server:
        yield server


@pytest.fixture(scope="module")
def link_fault_shim(tmp_path_factory) -> Path:
    """tests/lake/fail_after_link.c, compiled for LD_PRELOAD."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler (cc/gcc): the local ambiguous-commit shim cannot be built")
    shim = tmp_path_factory.mktemp("shim") / "fail_after_link.so"
    source = Path(__file__).with_name("fail_after_link.c")
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(shim), str(source), "-ldl"], check=True
    )
    return shim


def _s3_table(server: objectstores.Server | FaultyProxy, monkeypatch, name: str) -> str:
    """A table URI in a fresh bucket, with the AWS_* variables pointing at `server`."""
    for variable, value in objectstores.s3_environment(server).items():
        monkeypatch.setenv(variable, value)
    bucket = objectstores.create_bucket(server)
    return f"s3://{bucket}/silver/{name}"


def _azure_table(server: objectstores.Server, monkeypatch, name: str) -> str:
    """A table URI in a fresh Azurite container, with the AZURE_* variables set."""
    for variable, value in objectstores.azure_environment(server).items():
        monkeypatch.setenv(variable, value)
    return f"az://{objectstores.create_container(server)}/silver/{name}"


def _store(store: str, request, monkeypatch, tmp_path: Path, name: str):
    """(table URI, server or None, the variables a writer process needs) for a store."""
    if store == "local":
        return str(tmp_path / "table"), None, {}
    if store == "azure":
        server = request.getfixturevalue("azurite")
        return (
            _azure_table(server, monkeypatch, name),
            server,
            objectstores.azure_environment(server),
        )
    server = request.getfixturevalue("moto")
    return _s3_table(server, monkeypatch, name), server, objectstores.s3_environment(server)


# --- what every test checks on the table afterwards -----------------------------------------


def _stored_keys(uri: str, server: objectstores.Server | None) -> set[str]:
    """Every object of the table, as paths relative to the table's root."""
    if server is None:
        root = Path(uri)
        return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    if uri.startswith("az://"):
        container, _, prefix = uri.removeprefix("az://").partition("/")
        keys = objectstores.azure_keys(server, container)
        return {k[len(prefix) + 1 :] for k in keys if k.startswith(prefix + "/")}
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    pages = (
        objectstores.s3_client(server)
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket, Prefix=prefix + "/")
    )
    return {o["Key"][len(prefix) + 1 :] for page in pages for o in page.get("Contents", [])}


def _log_entries(stored: set[str]) -> list[str]:
    return sorted(k for k in stored if re.fullmatch(r"_delta_log/\d{20}\.json", k))


def _referenced(uri: str) -> set[str]:
    """The data files of the table's current version, relative to its root."""
    root = uri.rstrip("/").split("://", 1)[-1]
    files = DeltaTable(uri).file_uris()
    return {f.split("://", 1)[-1].split(root, 1)[1].lstrip("/") for f in files}


def _assert_whole(uri: str, server: objectstores.Server | None, app_ids: list[str]) -> int:
    """Versions 0..N without a gap, each app transaction in the log once and in one commit,
    every file the log refers to stored. Returns N."""
    table = DeltaTable(uri)
    newest = table.version()
    stored = _stored_keys(uri, server)
    assert _log_entries(stored) == [f"_delta_log/{v:020d}.json" for v in range(newest + 1)]
    history = table.history()
    assert sorted(int(e["version"]) for e in history) == list(range(newest + 1))
    for app_id in app_ids:
        assert table.transaction_version(app_id) == 1, app_id
        commits = [e["version"] for e in history if e.get(APP_ID_KEY) == app_id]
        assert len(commits) == 1, f"{app_id} committed in versions {commits}"
    referenced = _referenced(uri)
    assert referenced and referenced <= stored
    return newest


# --- the retry budget -----------------------------------------------------------------------

UTC_US = pl.Datetime("us", "UTC")
AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _spy_on_commits(monkeypatch) -> list[tuple[str, int | None]]:
    """Record the retry budget of every call into deltalake that commits (then make it)."""
    from deltalake.table import TableAlterer

    seen: list[tuple[str, int | None]] = []

    def spy(name: str, real: Callable) -> Callable:
        def call(*args, **kwargs):
            props = kwargs.get("commit_properties")
            seen.append((name, None if props is None else props.max_commit_retries))
            return real(*args, **kwargs)

        return call

    for module in (lake.tables, lake.history):
        monkeypatch.setattr(module, "write_deltalake", spy("write", module.write_deltalake))
    create = lake.bulk.create_table_with_add_actions
    monkeypatch.setattr(lake.bulk, "create_table_with_add_actions", spy("create", create))
    for cls, method in (
        (DeltaTable, "merge"),
        (DeltaTable, "create_write_transaction"),
        (TableAlterer, "add_columns"),
    ):
        monkeypatch.setattr(cls, method, spy(method, getattr(cls, method)))
    return seen


def test_every_commit_of_every_load_mode_uses_the_shared_retry_budget(tmp_path, monkeypatch):
    assert COMMIT_RETRIES > DELTA_DEFAULT_RETRIES
    seen = _spy_on_commits(monkeypatch)
    first = pl.DataFrame({"id": ["a", "b"], "v": [1, 2]}, schema={"id": pl.String, "v": pl.Int32})
    second = pl.DataFrame({"id": ["b", "c"], "v": [3, 4]}, schema={"id": pl.String, "v": pl.Int32})
    # a new column (merge_schema, or alter.add_columns for scd2) and a type widening (rewrite)
    third = second.with_columns(pl.col("v").cast(pl.Int64), pl.lit("x").alias("note"))
    for mode in ("append", "snapshot", "merge", "scd2"):
        uri = str(tmp_path / mode)
        for n, frame in enumerate((first, second, third)):
            write_batch(uri, frame, mode=mode, keys=["id"], app_id=f"{mode}-{n}", add_columns=True)
    # scd2 with only new keys commits as a plain append
    only_new = third.head(1).with_columns(pl.lit("d").alias("id"))
    write_batch(
        str(tmp_path / "scd2"),
        only_new,
        mode="scd2",
        keys=["id"],
        app_id="new",
        scd2_source="delta",
    )
    registration = pl.DataFrame(
        {"id": ["r1"], "registreringFra": [AT], "registreringTil": [None]},
        schema={"id": pl.String, "registreringFra": UTC_US, "registreringTil": UTC_US},
    ).with_columns(
        pl.col("registreringFra").alias("virkningFra"), pl.lit(None, UTC_US).alias("virkningTil")
    )
    closed = registration.with_columns(pl.lit(AT).alias("registreringTil"))
    for n, frame in enumerate((registration, closed)):
        write_batch(str(tmp_path / "reg"), frame, mode="bitemporal", keys=["id"], app_id=f"r{n}")
    for mode in ("append", "snapshot"):
        for batch in ("p1", "p2"):  # creates the table, then commits to it
            writer = PartWriter(str(tmp_path / f"parts-{mode}"), mode=mode, app_id=batch)
            writer.write(first)
            writer.commit()

    assert {name for name, _ in seen} == {
        "write",
        "merge",
        "add_columns",
        "create",
        "create_write_transaction",
    }
    assert [(name, retries) for name, retries in seen if retries != COMMIT_RETRIES] == []


# --- 8 writers × 20 batches -----------------------------------------------------------------


BATCH_SCHEMA = pa.schema([("batch", pa.string()), ("row", pa.int64())])


def _batch(worker: int, number: int) -> str:
    return f"w{worker}-b{number:02d}"


def _append_batches(uri: str, env: dict[str, str], worker: int, barrier, out: str) -> None:
    """One writer process: BATCHES append batches of ROWS rows, each its own app transaction."""
    os.environ.update(env)
    barrier.wait(timeout=120)  # all writers start together, so they really race
    outcomes = []
    for number in range(BATCHES):
        batch = _batch(worker, number)
        frame = pl.DataFrame({"batch": [batch] * ROWS, "row": list(range(ROWS))})
        commit = write_batch(uri, frame, mode="append", app_id=batch)
        outcomes.append([batch, commit.committed])
    Path(out).write_text(json.dumps(outcomes))


@pytest.mark.parametrize("store", ["local", "s3", "azure"])
def test_eight_writers_lose_nothing_and_double_nothing(store, tmp_path, monkeypatch, request):
    uri, server, env = _store(store, request, monkeypatch, tmp_path, "race")
    # Version 0: the table exists before the race (two *first* commits race on the table's
    # metadata, and the loser fails loudly). A checkpoint every 5 versions keeps the test
    # short: write_batch opens the table several times per batch, and each open reads every
    # log entry since the last checkpoint. Measured for the S3 case on moto, 2 cores: 350 s
    # with Delta's default of 100 (about 600 requests per batch near the end), 70 s with 10,
    # 56 s with 5; local disk 28 s with 100, 6 s with 5. Same outcome every time.
    DeltaTable.create(uri, schema=BATCH_SCHEMA, configuration={"delta.checkpointInterval": "5"})

    spawn = multiprocessing.get_context("spawn")  # deltalake panics in forked children
    barrier = spawn.Barrier(WRITERS)
    outs = [tmp_path / f"writer-{w}.json" for w in range(WRITERS)]
    writers = [
        spawn.Process(target=_append_batches, args=(uri, env, w, barrier, str(outs[w])))
        for w in range(WRITERS)
    ]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=600)
    for process in writers:
        if process.is_alive():  # hung: fail below, leave no process behind
            process.kill()
            process.join()
    assert [p.exitcode for p in writers] == [0] * WRITERS

    batches = [_batch(w, n) for w in range(WRITERS) for n in range(BATCHES)]
    outcomes = [tuple(o) for out in outs for o in json.loads(out.read_text())]
    assert sorted(outcomes) == sorted((b, True) for b in batches)  # each call committed
    newest = _assert_whole(uri, server, batches)
    assert newest == WRITERS * BATCHES  # one version per batch after the empty 0, none more
    rows = pl.read_delta(uri).group_by("batch").agg(pl.len(), pl.col("row").sort())
    per_batch = {b: (n, r) for b, n, r in rows.iter_rows()}
    assert per_batch == {b: (ROWS, list(range(ROWS))) for b in batches}


# --- ambiguous commits ----------------------------------------------------------------------

FIRST = pl.DataFrame({"id": ["a", "b"], "v": [1, 2]})
SECOND = pl.DataFrame({"id": ["b", "c"], "v": [3, 4]})


def _write(uri: str, mode: str, frame: pl.DataFrame, app_id: str) -> Commit:
    # valid_at fixed per batch, so an scd2 table compares equal to its reference; the second
    # batch a day later, as scd2 refuses a batch that does not come after the history
    at = AT + dt.timedelta(days=int(app_id.removeprefix("b")) - 1)
    return write_batch(uri, frame, mode=mode, keys=["id"], app_id=app_id, valid_at=at)


def _reference(tmp_path: Path, mode: str) -> tuple[str, Commit]:
    """The same two batches without a fault: what the faulted table must equal."""
    uri = str(tmp_path / f"reference-{mode}")
    _write(uri, mode, FIRST, "b1")
    return uri, _write(uri, mode, SECOND, "b2")


def _assert_same_table(uri: str, reference: str) -> None:
    assert DeltaTable(uri).version() == DeltaTable(reference).version()
    assert sorted(pl.read_delta(uri).rows()) == sorted(pl.read_delta(reference).rows())


@pytest.mark.parametrize(
    ("mode", "how"),
    [("append", "500"), ("append", "drop"), ("snapshot", "500"), ("merge", "500"), ("scd2", "500")],
)
def test_an_ambiguous_commit_on_s3_counts_once(mode, how, proxy, moto, tmp_path, monkeypatch):
    uri = _s3_table(proxy, monkeypatch, mode)  # every request goes through the proxy
    reference, expected = _reference(tmp_path, mode)
    _write(uri, mode, FIRST, "b1")
    # merge and scd2 create the table empty first on object storage, then merge b1: version 1
    first = DeltaTable(uri).version()
    prefix = uri.removeprefix("s3://")
    proxy.arm(prefix + "/", how)

    # moto stores version 1, the writer gets a 500 or a dead connection; deltalake retries
    # the PUT, finds version 1 taken by its own entry and raises a conflict with it
    # (unfixed, write_batch turned that into "the batch was not committed"). write_batch now
    # reads the log and reports the batch as committed.
    commit = _write(uri, mode, SECOND, "b2")
    injected = [key for key in proxy.injected() if key.startswith(prefix + "/")]
    assert injected == [f"{prefix}/_delta_log/{first + 1:020d}.json"]
    assert (commit.version, commit.committed, commit.skipped) == (first + 1, True, "")
    assert commit.metrics == expected.metrics  # from the commit's own operationMetrics
    if mode == "snapshot":
        assert commit.deleted is not None and expected.deleted is not None
        assert commit.deleted.equals(expected.deleted)

    again = _write(uri, mode, SECOND, "b2")
    assert (again.committed, again.skipped) == (False, "already committed")
    _assert_whole(uri, moto, ["b1", "b2"])  # listed on moto itself, past the proxy
    assert DeltaTable(uri).version() == DeltaTable(reference).version() + first
    assert sorted(pl.read_delta(uri).rows()) == sorted(pl.read_delta(reference).rows())


def test_a_failed_commit_says_whether_the_batch_landed(tmp_path, monkeypatch) -> None:
    uri = str(tmp_path / "table")
    _write(uri, "append", FIRST, "b1")

    def refused(*args, **kwargs):
        raise OSError("connection reset by peer")

    monkeypatch.setattr(lake.tables, "write_deltalake", refused)
    # the log has no b2: an honest "not committed"
    with pytest.raises(LakeError, match="the batch was not committed"):
        _write(uri, "append", SECOND, "b2")

    checks: list[str] = []
    real_has_batch = lake.tables.has_batch

    def store_gone_after_the_error(table: str, app_id: str, options=None) -> bool:
        checks.append(app_id)
        if len(checks) > 1:
            raise OSError("store unreachable")
        return real_has_batch(table, app_id, options)

    monkeypatch.setattr(lake.tables, "has_batch", store_gone_after_the_error)
    # the log cannot be read: neither "committed" nor "not committed", but what to do
    with pytest.raises(LakeError, match=r"cannot be read to tell whether it landed.*Re-run"):
        _write(uri, "append", SECOND, "b2")
    assert checks == ["b2", "b2"]
    assert DeltaTable(uri).version() == 0


def test_a_write_the_store_keeps_failing_says_to_re_run_not_to_check_the_schema(
    proxy, moto, tmp_path, monkeypatch
) -> None:
    uri = _s3_table(proxy, monkeypatch, "append")
    _write(uri, "append", FIRST, "b1")
    prefix = uri.removeprefix("s3://")
    # S3 answers 503 SlowDown to the data file's PUT and to each of deltalake's 10 retries
    # (about 3 s of back-off), as a store that is down or throttling for a while does.
    for _ in range(11):
        proxy.arm(prefix + "/", "503", entries=r"/part-[^/]*\.parquet$")

    with pytest.raises(LakeError) as error:
        _write(uri, "append", SECOND, "b2")
    message = str(error.value)
    assert "object store failed" in message and "503" in message and "Re-run" in message
    assert "schema" not in message  # nothing is wrong with the batch
    assert "<Error>" not in message and "\n" not in message
    assert DeltaTable(uri).version() == 0

    again = _write(uri, "append", SECOND, "b2")  # the store answers again
    assert (again.version, again.committed) == (1, True)


def _local_ambiguous_child(uri: str, flag: str, kind: str, out: str) -> None:
    """Run in a process with the fail_after_link shim preloaded: the first batch commits
    normally, the second one's log entry is linked and then reported as EIO."""

    def outcome(commit: Commit) -> list[object]:
        return [commit.version, commit.committed, commit.skipped]

    def second() -> list[object]:
        if kind != "parts":
            return outcome(_write(uri, kind, SECOND, "b2"))
        writer = PartWriter(uri, mode="append", app_id="b2")
        writer.write(SECOND)
        return outcome(writer.commit())

    result: dict[str, object] = {}
    if kind == "parts":
        writer = PartWriter(uri, mode="append", app_id="b1")
        writer.write(FIRST)
        writer.commit()
    else:
        _write(uri, kind, FIRST, "b1")
    Path(flag).touch()
    try:
        result["first"] = second()
    except Exception as error:  # what the user would see
        result["first"] = [type(error).__name__, str(error)]
    result["fired"] = not Path(flag).exists()
    result["again"] = second()
    Path(out).write_text(json.dumps(result))


@pytest.mark.parametrize("kind", ["append", "snapshot", "merge", "parts"])
def test_an_ambiguous_commit_on_local_disk_counts_once(kind, link_fault_shim, tmp_path):
    uri, flag, out = (str(tmp_path / name) for name in ("table", "armed", "result.json"))
    code = (
        "import sys; from tests.lake.test_concurrency import _local_ambiguous_child as run; "
        "run(*sys.argv[1:])"
    )
    env = {**os.environ, "LD_PRELOAD": str(link_fault_shim), "COMMIT_FAULT_FLAG": flag}
    subprocess.run(
        [sys.executable, "-c", code, uri, flag, kind, out], env=env, cwd=REPO, check=True
    )
    result = json.loads(Path(out).read_text())
    assert result["fired"]  # the shim did make the link report EIO
    # Unfixed, this was a bare OSError ("Unable to rename file: Input/output error") for a
    # batch that was in fact committed.
    assert result["first"] == [1, True, ""]
    assert result["again"][1:] == [False, "already committed" if kind != "parts" else ""]
    _assert_whole(uri, None, ["b1", "b2"])
    reference = str(tmp_path / "reference")
    _write(reference, "append" if kind == "parts" else kind, FIRST, "b1")
    _write(reference, "append" if kind == "parts" else kind, SECOND, "b2")
    _assert_same_table(uri, reference)


# merge on object storage creates the table empty first (lake.tables._create_empty): the
# create is the ambiguous first commit there, and the batch's merge follows it once
@pytest.mark.parametrize(
    ("mode", "version", "batch_in"), [("append", 1, [0, 1]), ("merge", 2, [2])]
)
def test_an_ambiguous_first_commit_on_s3_is_repeated_but_counts_once(
    mode, version, batch_in, proxy, moto, tmp_path, monkeypatch
):
    uri = _s3_table(proxy, monkeypatch, f"first-{mode}")
    prefix = uri.removeprefix("s3://")
    proxy.arm(prefix + "/")
    commit = _write(uri, mode, FIRST, "b1")  # creates the table
    assert [k for k in proxy.injected() if k.startswith(prefix + "/")] == [
        f"{prefix}/_delta_log/{0:020d}.json"
    ]
    # deltalake 1.6.6 checks no conflict for a commit that creates the table: after the
    # ambiguous PUT of version 0 it writes the same actions again as version 1 and reports
    # success. The add names the same file, so readers see its rows once; only the history
    # shows the batch twice. (If this fails after an upgrade, deltalake stopped repeating
    # the create: expect version 0 and one commit.)
    assert (commit.version, commit.committed) == (version, True)
    history = DeltaTable(uri).history()
    assert sorted(e["version"] for e in history if e.get(APP_ID_KEY) == "b1") == batch_in
    again = _write(uri, mode, FIRST, "b1")
    assert (again.committed, again.skipped) == (False, "already committed")
    assert DeltaTable(uri).transaction_version("b1") == 1
    assert DeltaTable(uri).version() == version
    assert sorted(pl.read_delta(uri).rows()) == sorted(FIRST.rows())
    stored = _stored_keys(uri, moto)
    assert _log_entries(stored) == [f"_delta_log/{v:020d}.json" for v in range(version + 1)]
    referenced = _referenced(uri)
    assert len(referenced) == 1 and referenced <= stored


# --- two loads of one batch at once -----------------------------------------------------------

RACERS = 4


def _race(target: Callable, args: tuple, tmp_path: Path) -> list[object]:
    """Run `target(*args, barrier, out)` in RACERS spawned processes that start together;
    returns what each wrote to its `out` (JSON)."""
    spawn = multiprocessing.get_context("spawn")  # deltalake panics in forked children
    barrier = spawn.Barrier(RACERS)
    outs = [tmp_path / f"racer-{n}.json" for n in range(RACERS)]
    racers = [spawn.Process(target=target, args=(*args, barrier, str(o))) for o in outs]
    for process in racers:
        process.start()
    for process in racers:
        process.join(timeout=300)
        if process.is_alive():
            process.kill()
            process.join()
    assert [p.exitcode for p in racers] == [0] * RACERS
    return [json.loads(o.read_text()) for o in outs]


def _stream_same_batch(uri: str, env: dict[str, str], barrier, out: str) -> None:
    """One load of batch b2: parts written, then every racer commits at the same moment
    (each found the batch missing when it started, as two `kommunelake load` runs do)."""
    os.environ.update(env)
    writer = PartWriter(uri, mode="append", app_id="b2")
    writer.write(SECOND)
    barrier.wait(timeout=120)
    Path(out).write_text(json.dumps(writer.commit().committed))


@pytest.mark.parametrize("store", ["local", "s3", "azure"])
def test_a_batch_streamed_by_racing_loads_commits_once(store, tmp_path, monkeypatch, request):
    uri, server, env = _store(store, request, monkeypatch, tmp_path, "once")
    _write(uri, "append", FIRST, "b1")

    # Unfixed, every racer committed b2 (delta-rs does not refuse a second commit of an app
    # transaction): SECOND's rows RACERS times. Local disk: the lock lets one commit and the
    # others find it. S3: a racer that committed after another removes its own files again.
    committed = _race(_stream_same_batch, (uri, env), tmp_path)
    assert committed.count(True) == 1
    assert sorted(pl.read_delta(uri).rows()) == sorted([*FIRST.rows(), *SECOND.rows()])
    table = DeltaTable(uri)
    history = table.history()
    kept = [e["version"] for e in history if e.get(APP_ID_KEY) == "b2"]
    undone = [e for e in history if e.get(lake.tables.UNDONE_KEY)]
    assert len(kept) - len(undone) == 1  # every duplicate commit was undone
    assert server is not None or not undone  # local disk: no duplicate to begin with


def _bookkeep_same_batch(root: str, barrier, out: str) -> None:
    """The bookkeeping of one batch, raced: quarantine, landing manifest, quality run."""
    home = Home(Path(root))
    failures = pl.DataFrame(
        {"_source_row": [3], "column": ["v"], "check": ["ge"], "value": ["-1"]},
        schema={"_source_row": pl.Int64, **{c: pl.String for c in ("column", "check", "value")}},
    )
    run = quality.RunRecord("ds", "b1", "f.csv", "loaded", 2, 1, 1, "[]", "[]", 0, AT, AT, "")
    barrier.wait(timeout=120)
    quality.write_quarantine(home, "ds", "b1", failures)
    _, new = landing.land(
        home.landing_uri,
        home.manifest_uri,
        dataset="ds",
        source="drop",
        data=b"v\n-1\n1\n",
        original_name="f.csv",
        media_type="text/csv",
    )
    quality.record_run(home, run)
    Path(out).write_text(json.dumps(new))


def test_racing_bookkeeping_of_one_batch_counts_once(tmp_path):
    # Unfixed: raw "Concurrent transaction failed" from record_run / write_quarantine, and
    # rows recorded twice.
    root = tmp_path / "home"
    new = _race(_bookkeep_same_batch, (str(root),), tmp_path)
    assert new.count(True) == 1  # one racer landed the file, the others found it
    home = Home(root)
    assert pl.read_delta(home.table_uri("quarantine", "ds")).height == 1
    assert len(landing.manifest(home.manifest_uri, "ds")) == 1
    assert quality.runs(home).height == 1


@pytest.mark.parametrize("mode", ["merge", "scd2"])
def test_two_first_batches_racing_to_create_a_keyed_table_on_s3_are_both_merged(
    mode, moto, tmp_path, monkeypatch
) -> None:
    # Object storage has no lock: two first loads can both find no table, and delta-rs
    # committed the loser's create (rows and app transaction) as the next version beside the
    # winner's, without a merge: key "b" of both batches twice, and the batch could not be
    # undone without being lost. Staged: another load's first batch creates the table
    # between this write's look for the table and its first commit.
    uri = _s3_table(moto, monkeypatch, f"first-{mode}")
    reference, _ = _reference(tmp_path, mode)
    real, raced = lake.tables.write_deltalake, []

    def racing(target, data, **kwargs):
        if not raced:
            raced.append(True)
            _write(uri, mode, FIRST, "b1")
        return real(target, data, **kwargs)

    monkeypatch.setattr(lake.tables, "write_deltalake", racing)
    commit = _write(uri, mode, SECOND, "b2")

    assert raced and commit.committed
    assert sorted(pl.read_delta(uri).rows()) == sorted(pl.read_delta(reference).rows())
    table = DeltaTable(uri)
    assert table.transaction_version("b1") == table.transaction_version("b2") == 1


class _NoBarrier:
    def wait(self, timeout: float) -> None:
        pass


def _first_batch(uri: str, env: dict[str, str], barrier, out: str) -> None:
    """One load of a first delivery of its own (keys overlap the other racers')."""
    os.environ.update(env)
    racer = int(Path(out).stem.rsplit("-", 1)[1])
    frame = pl.DataFrame({"id": ["shared", f"own-{racer}"], "v": [racer, racer]})
    barrier.wait(timeout=120)
    try:
        outcome = write_batch(uri, frame, mode="merge", keys=["id"], app_id=f"b{racer}").committed
    except LakeError as error:  # lost RACE_ATTEMPTS merges in a row: told to re-run
        outcome = "re-run" if "Re-run the load" in str(error) else str(error)
    Path(out).write_text(json.dumps(outcome))


def test_racing_first_loads_of_a_merge_dataset_on_s3_leave_every_key_once(
    moto, tmp_path, monkeypatch
) -> None:
    uri = _s3_table(moto, monkeypatch, "first-race")
    env = objectstores.s3_environment(moto)
    outcomes = _race(_first_batch, (uri, env), tmp_path)

    # Every racer's batch is merged, or it lost RACE_ATTEMPTS merges in a row to the others
    # and was told to re-run (as any merges racing on a table are): then it is not in the
    # table, and the re-run merges it. Unfixed, all committed and "shared" was there 4 times.
    assert set(outcomes) <= {True, "re-run"} and True in outcomes
    table = DeltaTable(uri)
    for racer, outcome in enumerate(outcomes):
        assert (table.transaction_version(f"b{racer}") == 1) == (outcome is True)
        if outcome == "re-run":
            _first_batch(uri, env, _NoBarrier(), str(tmp_path / f"racer-{racer}.json"))
    frame = pl.read_delta(uri)
    assert frame.get_column("id").is_duplicated().sum() == 0
    assert sorted(frame.get_column("id")) == sorted(
        ["shared", *(f"own-{n}" for n in range(RACERS))]
    )
    table = DeltaTable(uri)
    assert all(table.transaction_version(f"b{n}") == 1 for n in range(RACERS))


def _delta_scd2(uri: str, frame: pl.DataFrame, app_id: str) -> Commit:
    """An scd2 batch of changes only (`scd2_source: delta`): absent keys stay current."""
    at = AT + dt.timedelta(days=int(app_id.removeprefix("b")) - 1)
    return write_batch(
        uri, frame, mode="scd2", keys=["id"], app_id=app_id, valid_at=at, scd2_source="delta"
    )


def test_scd2_loads_racing_to_add_the_same_new_key_on_s3_leave_it_current_once(
    moto, monkeypatch
) -> None:
    # On object storage (no lock) a batch of only new keys was committed as a plain append,
    # which no commit conflicts with: a load that read the table before another load added
    # key "c" appended "c" as well, and "c" was current twice. Staged: the other load
    # commits between this load's read of the table and its commit.
    uri = _s3_table(moto, monkeypatch, "scd2-new-keys")
    _delta_scd2(uri, FIRST, "b1")
    real, raced = lake.history.scd2_changes, []

    def racing(*args, **kwargs):
        changes = real(*args, **kwargs)
        if not raced:
            raced.append(True)
            _delta_scd2(uri, pl.DataFrame({"id": ["c"], "v": [4]}), "b2")
        return changes

    monkeypatch.setattr(lake.history, "scd2_changes", racing)
    commit = _delta_scd2(uri, pl.DataFrame({"id": ["c"], "v": [5]}), "b3")

    assert raced and commit.committed
    table = pl.read_delta(uri)
    current = table.filter("is_current").select("id", "v")
    assert sorted(current.rows()) == [("a", 1), ("b", 2), ("c", 5)]
    # the racer's version of "c" is history, closed when this batch's opened
    versions = table.filter(pl.col("id") == "c").sort("valid_from")
    assert versions.select("v", "is_current").rows() == [(4, False), (5, True)]
    assert versions["valid_to"][0] == versions["valid_from"][1]


def _small_files(uri: str) -> None:
    for number in range(3):  # small files for compaction to rewrite
        frame = pl.DataFrame({"id": [number], "v": [str(number)]})
        write_batch(uri, frame, mode="merge", app_id=f"b{number}", keys=["id"])


def _compacted_on_first_call(monkeypatch, name: str, uri: str) -> list[int]:
    """Make `lake.tables.<name>` (given the table it read) find the table compacted by
    another process before it commits, the first time only; returns the versions read."""
    real, reads = getattr(lake.tables, name), []

    def compacted(*args, **kwargs):
        reads.append(next(a for a in args if isinstance(a, DeltaTable)).version())
        if len(reads) == 1:
            DeltaTable(uri).optimize.compact()  # another process, between read and commit
        return real(*args, **kwargs)

    monkeypatch.setattr(lake.tables, name, compacted)
    return reads


def test_a_merge_that_loses_to_a_compaction_is_written_again(tmp_path, monkeypatch) -> None:
    # A `kommunelake load` runs in-process, outside Dagster's pools, so weekly maintenance
    # can compact a table while a load merges into it. delta-rs then refuses the merge, and
    # the load failed although nothing was wrong with it or the table.
    uri = str(tmp_path / "table")
    _small_files(uri)
    calls = _compacted_on_first_call(monkeypatch, "_merge", uri)
    frame = pl.DataFrame({"id": [1, 9], "v": ["new", "9"]})
    commit = write_batch(uri, frame, mode="merge", app_id="b9", keys=["id"])

    assert commit.committed and len(calls) == 2 and calls[1] > calls[0]  # read again
    rows = pl.read_delta(uri).sort("id")
    assert rows.rows() == [(0, "0"), (1, "new"), (2, "2"), (9, "9")]
    assert DeltaTable(uri).transaction_version("b9") is not None


@pytest.mark.parametrize("store", ["local", "s3"])
def test_a_snapshot_that_loses_to_a_compaction_is_written_again(
    store, tmp_path, monkeypatch, request
) -> None:
    # delta-rs let the full overwrite commit over a compaction (dataChange=false) that came
    # in between: it removed the small files it had read, which the compaction had already
    # removed, and the compacted file stayed live. The snapshot table then held the old rows
    # beside the new ones (key 1 twice), and quality.deletions named keys 0 and 2 as gone.
    uri, _, _ = _store(store, request, monkeypatch, tmp_path, "snapshot")
    _small_files(uri)
    calls = _compacted_on_first_call(monkeypatch, "_overwrite", uri)
    frame = pl.DataFrame({"id": [1, 9], "v": ["new", "9"]})
    commit = write_batch(uri, frame, mode="snapshot", app_id="b9", keys=["id"])

    assert commit.committed and len(calls) == 2 and calls[1] > calls[0]  # read again
    assert sorted(pl.read_delta(uri).rows()) == [(1, "new"), (9, "9")]
    assert sorted(commit.deleted["id"].to_list()) == [0, 2]


def test_a_merge_that_keeps_losing_says_to_re_run_it(tmp_path, monkeypatch) -> None:
    # ... and one that loses every attempt was told to check the table's schema against the
    # batch, which has nothing to do with it.
    uri = str(tmp_path / "table")
    _small_files(uri)
    real_merge = lake.tables._merge
    calls = []

    def appended_meanwhile(table, *args, **kwargs):
        calls.append(1)  # another process's load commits first, every time
        more = pa.table({"id": [100 + len(calls)], "v": ["x"]})
        write_deltalake(uri, more, mode="append", schema_mode="merge")
        return real_merge(table, *args, **kwargs)

    monkeypatch.setattr(lake.tables, "_merge", appended_meanwhile)
    frame = pl.DataFrame({"id": [1, 9], "v": ["new", "9"]})
    with pytest.raises(LakeError) as error:
        write_batch(uri, frame, mode="merge", app_id="b9", keys=["id"])

    message = str(error.value)
    assert len(calls) == lake.tables.RACE_ATTEMPTS
    assert "other writers committed to the table" in message and "Re-run the load" in message
    assert "schema" not in message
    assert DeltaTable(uri).transaction_version("b9") is None  # and indeed it is not in


def _small_snapshot(uri: str) -> None:
    writer = PartWriter(uri, mode="snapshot", app_id="b1")
    for number in (1, 2, 3):  # one part each: small files for a compaction to rewrite
        writer.write(pl.DataFrame({"id": [number], "v": [f"old-{number}"]}))
    writer.commit()


def _compact_once(uri: str, calls: list) -> None:
    calls.append(1)
    if len(calls) == 1:
        DeltaTable(uri).optimize.compact()  # another process, between read and commit


def test_a_streamed_snapshot_keeps_no_old_rows_when_a_compaction_commits_before_it(
    tmp_path, monkeypatch, caplog
) -> None:
    # A compaction rewrites files with dataChange=false, and delta-rs 1.6 then lets an
    # overwrite that read the table before it commit anyway: the overwrite removed the files
    # it had read (gone already) and kept the compacted one, so the old snapshot's rows
    # stayed beside the new one's. write_batch's snapshot is refused and written again (see
    # above); a streamed one commits its parts with create_write_transaction, which takes no
    # predicate, so the compacted file is removed after the commit.
    uri = str(tmp_path / "table")
    _small_snapshot(uri)
    writer = PartWriter(uri, mode="snapshot", app_id="b2")
    writer.write(pl.DataFrame({"id": [4, 5], "v": ["new-4", "new-5"]}))
    calls: list = []
    read = PartWriter._table
    monkeypatch.setattr(
        PartWriter, "_table", lambda self: (read(self), _compact_once(uri, calls))[0]
    )
    commit = writer.commit()

    assert commit.committed
    assert pl.read_delta(uri).sort("id").rows() == [(4, "new-4"), (5, "new-5")]
    assert DeltaTable(uri).transaction_version("b2") is not None
    assert "1 of its files survived the overwrite" in caplog.text


@pytest.mark.parametrize("rewrite", ["_append", "_evolve_schema"])
def test_a_widening_rewrite_keeps_no_old_rows_when_a_compaction_commits_before_it(
    rewrite, tmp_path, monkeypatch, caplog
) -> None:
    # Widening a column type rewrites the whole table (old rows cast, in one overwrite), so
    # it meets the same delta-rs 1.6 leniency as a snapshot: a compaction committed between
    # the rewrite's read and its commit kept its compacted file, and every old row twice.
    # `_append` rewrites old rows and batch together; `_evolve_schema` rewrites before a merge.
    uri = str(tmp_path / "table")
    mode = "append" if rewrite == "_append" else "merge"
    for number in range(3):  # small files for compaction to rewrite
        narrow = pl.DataFrame(
            {"id": [number], "v": [number]}, schema={"id": pl.Int64, "v": pl.Int32}
        )
        write_batch(uri, narrow, mode=mode, app_id=f"b{number}", keys=["id"])
    calls = _compacted_on_first_call(monkeypatch, rewrite, uri)
    wide = pl.DataFrame({"id": [9], "v": [2**40]}, schema={"id": pl.Int64, "v": pl.Int64})
    commit = write_batch(uri, wide, mode=mode, app_id="b9", keys=["id"])

    assert commit.committed and calls
    rows = pl.read_delta(uri)
    assert rows.schema["v"] == pl.Int64
    assert sorted(rows.select("id", "v").rows()) == [(0, 0), (1, 1), (2, 2), (9, 2**40)]
    assert "survived the overwrite" in caplog.text
