"""A file larger than one chunk loads in pieces with exactly the outcome of a whole load.

Chunks are made small (CHUNK_BYTES is a setting) so a 20,000-row synthetic case extract is
read in many pieces; the outcome is compared with the same file loaded in one piece.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from bench.generate import generate
from connectors.formats import chunks
from lake.errors import LakeError
from lake.home import Home
from pipelines.file_check import check_file
from pipelines.ingest import load_dataset, reload_batch
from pipelines.specs import load_spec, spec_by_name
from tests.conftest import TEST_KEY
from tests.lake import objectstores

REPO = Path(__file__).parents[2]
SPEC = load_spec(REPO / "bench" / "case_extract.yaml")


@pytest.fixture(scope="module")
def extract(tmp_path_factory) -> Path:
    return generate(20_000, tmp_path_factory.mktemp("extract") / "sager.csv", seed=7)


def _load(root: Path, extract: Path, spec=SPEC, lake_uri: str | None = None) -> tuple[Home, object]:
    home = Home(root, lake_uri)
    drop = home.drop / spec.name
    drop.mkdir(parents=True)
    shutil.copy(extract, drop / extract.name)
    return home, load_dataset(spec, home, TEST_KEY)


def quarantine(home: Home, dataset: str) -> pl.DataFrame:
    return pl.read_delta(home.table_uri("quarantine", dataset)).rename(
        {"source_row": "_source_row"}
    )


def _silver(home: Home) -> pl.DataFrame:
    return pl.read_delta(home.table_uri("silver", SPEC.name)).drop("_ingested_at").sort("case_id")


@pytest.mark.parametrize("mode", ["append", "merge"])  # parts committed at once / collected
def test_pieces_load_exactly_what_a_whole_load_does(tmp_path, extract, monkeypatch, mode) -> None:
    spec = dataclasses.replace(SPEC, load_mode=mode)
    whole_home, whole = _load(tmp_path / "whole", extract, spec)
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 64 * 1024)
    piece_home, pieces = _load(tmp_path / "pieces", extract, spec)

    [w], [p] = whole.batches, pieces.batches
    assert (p.rows_in, p.rows_valid, p.rows_quarantined) == (
        w.rows_in,
        w.rows_valid,
        w.rows_quarantined,
    )
    assert p.rows_in == 20_000 and p.rows_valid + p.rows_quarantined == p.rows_in
    assert _silver(piece_home).equals(_silver(whole_home))
    # All pieces are one commit: readers never see half a batch.
    assert DeltaTable(piece_home.table_uri("silver", SPEC.name)).version() == 0

    failures = quarantine(piece_home, SPEC.name)
    repeats = failures.filter(pl.col("check") == "duplicate_key")
    assert repeats.height >= 2  # the generator repeats case numbers across the file
    assert repeats["_source_row"].max() > 64 * 1024 // 110  # ... also beyond the first piece
    assert (
        failures.sort("_source_row")
        .select("_source_row", "check")
        .equals(
            quarantine(whole_home, SPEC.name).sort("_source_row").select("_source_row", "check")
        )
    )


def test_a_bad_row_in_a_later_piece_rejects_the_file_and_leaves_no_parts(
    tmp_path, extract, monkeypatch
) -> None:
    broken = tmp_path / "sager_fejl.csv"
    lines = extract.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[15_000] = lines[15_000].rstrip("\n") + ";ekstra felt\n"
    broken.write_text("".join(lines), encoding="utf-8")
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 64 * 1024)
    home, report = _load(tmp_path / "home", broken)

    [batch] = report.batches
    assert batch.status == "rejected" and "line 15001" in batch.message
    table = Path(home.table_uri("silver", SPEC.name))
    assert not DeltaTable.is_deltatable(str(table))
    assert not table.exists() or not list(table.glob("*.parquet"))


def test_pieces_stream_to_object_storage_as_they_do_to_disk(
    tmp_path, extract, monkeypatch, moto
) -> None:
    # The parts go to S3 one object each and are committed as one version; the table equals
    # the local load's, and a rejected file leaves no part object behind.
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 64 * 1024)
    local_home, local = _load(tmp_path / "local", extract)
    for name, value in objectstores.s3_environment(moto).items():
        monkeypatch.setenv(name, value)
    bucket = objectstores.create_bucket(moto)
    remote_home = Home(tmp_path / "remote", f"s3://{bucket}/kommune")
    remote_home, remote = _load(remote_home.root, extract, lake_uri=remote_home.lake_uri)

    [r], [loc] = remote.batches, local.batches
    assert (r.rows_in, r.rows_valid, r.rows_quarantined) == (
        loc.rows_in,
        loc.rows_valid,
        loc.rows_quarantined,
    )
    uri = remote_home.table_uri("silver", SPEC.name)
    assert DeltaTable(uri).version() == 0
    assert len(DeltaTable(uri).file_uris()) > 3  # streamed in parts, not one collected write
    assert _silver(remote_home).equals(_silver(local_home))
    assert not (remote_home.root / "lake").exists()

    broken = tmp_path / "sager_fejl.csv"
    lines = extract.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[15_000] = lines[15_000].rstrip("\n") + ";ekstra felt\n"
    broken.write_text("".join(lines), encoding="utf-8")
    before = set(objectstores.s3_keys(moto, bucket))
    _, report = _load(tmp_path / "remote2", broken, lake_uri=f"s3://{bucket}/other")
    assert [b.status for b in report.batches] == ["rejected"]
    new = set(objectstores.s3_keys(moto, bucket)) - before
    # (pyarrow leaves an empty "directory" marker where it deleted the last part; no data)
    assert [k for k in new if "/silver/" in k and k.endswith(".parquet")] == []


def test_check_reports_what_a_load_would_in_pieces(tmp_path, extract, monkeypatch) -> None:
    # `kommunelake check` reads a large export chunk by chunk too: the same counts and the
    # same failing rows (keys repeated across pieces included) as a load of the file.
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 64 * 1024)
    home, report = _load(tmp_path / "home", extract)
    checked = check_file(SPEC, extract)
    [batch] = report.batches
    assert (checked.rows_in, checked.rows_valid, checked.rows_quarantined) == (
        batch.rows_in,
        batch.rows_valid,
        batch.rows_quarantined,
    )
    loaded = quarantine(home, SPEC.name).sort("_source_row", "column", "check")
    counted = loaded.group_by("column", "check").len().rows()
    assert sorted(checked.counts) == sorted(counted)
    assert any(check == "duplicate_key" for _, check, _ in checked.counts)
    # Its examples are the first failing rows of each check, as the quarantine has them.
    first = loaded.group_by("column", "check", maintain_order=True).head(3)
    shown = ("_source_row", "column", "check", "value")
    assert sorted(checked.examples.select(shown).rows()) == sorted(first.select(shown).rows())


def test_a_gzipped_extract_loads_in_pieces_like_the_plain_one(tmp_path, extract, monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 64 * 1024)
    plain_home, plain = _load(tmp_path / "plain", extract)
    packed = tmp_path / "sager.csv.gz"
    packed.write_bytes(gzip.compress(extract.read_bytes()))
    spec = dataclasses.replace(
        SPEC,
        source={**SPEC.source, "pattern": "*.csv.gz"},
        format={**SPEC.format, "container": "gzip"},
    )
    gz_home, gz = _load(tmp_path / "gz", packed, spec)

    [p], [g] = plain.batches, gz.batches
    assert g.status == "loaded" and g.rows_in == 20_000
    assert (g.rows_valid, g.rows_quarantined) == (p.rows_valid, p.rows_quarantined)
    assert (
        _silver(gz_home)
        .drop("_source_file", "_batch_id")
        .equals(_silver(plain_home).drop("_source_file", "_batch_id"))
    )
    assert not list(gz_home.scratch.iterdir())  # the unpacked copy is gone


def test_a_json_document_loads_in_pieces_like_a_whole_load(tmp_path, monkeypatch) -> None:
    spec = spec_by_name("bbr_dwellings")
    units = [
        {
            "id_lokalId": str(uuid.UUID(int=i)),
            "adresseIdentificerer": str(uuid.UUID(int=10**6 + i)),
            "enh020EnhedensAnvendelse": "140",
            "enh026EnhedensSamledeAreal": 40 + i % 90,
            "enh031AntalVaerelser": 1 + i % 5,
            "byg026Opfoerelsesaar": 1900 + i % 120,
        }
        for i in range(3_000)
    ]
    units[2_500]["id_lokalId"] = units[10]["id_lokalId"]  # a key repeated across pieces
    units[2_700]["enh020EnhedensAnvendelse"] = None
    path = tmp_path / "bbr_enheder.json"
    path.write_text(json.dumps({"antal": 3_000, "enheder": units}, indent=1), encoding="utf-8")
    whole_home, whole = _load(tmp_path / "whole", path, spec)
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 64 * 1024)
    assert path.stat().st_size > 3 * chunks.CHUNK_BYTES
    piece_home, pieces = _load(tmp_path / "pieces", path, spec)

    [w], [p] = whole.batches, pieces.batches
    assert (p.rows_in, p.rows_valid, p.rows_quarantined) == (3_000, 2_998, 2)
    assert (w.rows_in, w.rows_valid, w.rows_quarantined) == (3_000, 2_998, 2)

    def silver(home: Home) -> pl.DataFrame:
        table = pl.read_delta(home.table_uri("silver", spec.name))
        return table.drop("_ingested_at", "_batch_id").sort("unit_id")

    assert silver(piece_home).equals(silver(whole_home))
    assert quarantine(piece_home, spec.name).sort("_source_row")["_source_row"].to_list() == [
        2_501,
        2_701,
    ]


def test_a_fixed_width_extract_loads_in_pieces_like_the_csv(tmp_path, extract, monkeypatch):
    """The case extract as a mainframe would write it (cp865, a start and a trailer record)
    loads in pieces with the outcome of the CSV: the same silver, quarantine and lines."""
    table = pl.read_csv(extract, separator=";", infer_schema=False)
    widths = {name: max(table[name].str.len_chars().max() or 0, 1) for name in table.columns}
    padded = table.select(pl.col(n).fill_null("").str.pad_end(w) for n, w in widths.items())
    lines = ["START SAGSUDTRÆK", *padded.select(pl.concat_str(pl.all())).to_series()]
    path = tmp_path / "sager.txt"
    path.write_bytes("\r\n".join([*lines, f"SLUT {table.height}", ""]).encode("cp865"))
    layout, start = [], 1
    for name, width in widths.items():
        layout.append({"name": name, "start": start, "length": width})
        start += width
    spec = dataclasses.replace(
        SPEC,
        source={**SPEC.source, "pattern": "*.txt"},
        format={
            "type": "fixed_width",
            "encoding": "cp865",
            "columns": layout,
            "skip_header_lines": 1,
            "skip_footer_lines": 1,
        },
    )
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 64 * 1024)
    assert path.stat().st_size > 20 * chunks.CHUNK_BYTES
    csv_home, csv = _load(tmp_path / "csv", extract)
    fixed_home, fixed = _load(tmp_path / "fixed", path, spec)

    [c], [f] = csv.batches, fixed.batches
    assert f.status == "loaded", f.message
    assert (f.rows_in, f.rows_valid, f.rows_quarantined) == (
        c.rows_in,
        c.rows_valid,
        c.rows_quarantined,
    )
    lineage = ["_source_file", "_batch_id"]
    assert _silver(fixed_home).drop(lineage).equals(_silver(csv_home).drop(lineage))
    assert (
        quarantine(fixed_home, SPEC.name)
        .sort("_source_row", "check")
        .select("_source_row", "column", "check")
        .equals(
            quarantine(csv_home, SPEC.name)
            .sort("_source_row", "check")
            .select("_source_row", "column", "check")
        )
    )


def test_reloading_an_append_batch_replaces_its_rows(tmp_path) -> None:
    """A contract fix released rows: reload puts each row of the batch in silver once (the
    rows valid the first time were appended a second time before)."""
    # Without the thousands separator, amounts of 1.000 and more fail typing: most rows are
    # quarantined, a few are valid.
    broken = dataclasses.replace(
        SPEC, parse=dataclasses.replace(SPEC.parse, thousands_separator=None)
    )
    extract = generate(2_000, tmp_path / "extract" / "sager.csv", seed=7)
    home, report = _load(tmp_path / "home", extract, broken)
    [first] = report.batches
    assert 0 < first.rows_valid < first.rows_quarantined

    again = reload_batch(SPEC, home, TEST_KEY)
    assert again.rows_valid > first.rows_valid
    silver = pl.read_delta(home.table_uri("silver", SPEC.name))
    assert silver.height == silver["case_id"].n_unique() == again.rows_valid
    assert quarantine(home, SPEC.name).height == again.rows_quarantined  # replaced, not added

    reload_batch(SPEC, home, TEST_KEY)  # a second reload changes nothing
    assert pl.read_delta(home.table_uri("silver", SPEC.name)).height == again.rows_valid


def test_reloading_an_older_merge_batch_keeps_what_later_batches_changed(tmp_path) -> None:
    # A newer delivery changed some cases of an older batch; then a contract fix released
    # that batch's quarantined rows. The reload upserted the whole older batch, putting the
    # old caseworker back over the newer one, and said nothing.
    spec = dataclasses.replace(SPEC, load_mode="merge")
    broken = dataclasses.replace(
        spec, parse=dataclasses.replace(SPEC.parse, thousands_separator=None)
    )
    home = Home(tmp_path / "home")
    drop = home.drop / SPEC.name
    drop.mkdir(parents=True)
    older = generate(2_000, drop / "uge1.csv", seed=7)
    [first] = load_dataset(broken, home, TEST_KEY).batches
    header, *rows = older.read_text(encoding="utf-8").splitlines()
    # the newer delivery: cases 1-300 again, handed to another caseworker
    changed = [";".join([*r.split(";")[:6], "M99999", *r.split(";")[7:]]) for r in rows[:300]]
    (drop / "uge2.csv").write_text("\n".join([header, *changed]) + "\n", encoding="utf-8")
    [second] = load_dataset(spec, home, TEST_KEY).batches  # the YAML was fixed meanwhile
    silver_uri = home.table_uri("silver", SPEC.name)
    newer = pl.read_delta(silver_uri).filter(pl.col("_batch_id") == second.batch_id)
    assert newer.height == second.rows_valid > 250

    again = reload_batch(spec, home, TEST_KEY, first.batch_id)

    silver = pl.read_delta(silver_uri)
    assert silver.height == silver["case_id"].n_unique()
    # the newer batch's rows are untouched, and none of its cases went back to the old one
    kept = silver.filter(pl.col("_batch_id") == second.batch_id)
    assert (
        kept.drop("_ingested_at").sort("case_id").equals(newer.drop("_ingested_at").sort("case_id"))
    )
    from_older = silver.filter(pl.col("_batch_id") == first.batch_id)
    assert from_older.join(kept, on="case_id").is_empty()
    # every other case the fix released is in silver from the older batch
    assert again.rows_valid > first.rows_valid
    assert from_older.height == again.rows_valid - kept.height
    assert again.rows_valid + again.rows_quarantined == 2_000


def _retype_silver(home: Home, column: str, dtype: pl.DataType) -> int:
    """Silver as an earlier contract left it: `column` of another type. Returns its version."""
    uri = home.table_uri("silver", SPEC.name)
    older = pl.read_delta(uri).with_columns(pl.col(column).cast(dtype))
    older.write_delta(uri, mode="overwrite", delta_write_options={"schema_mode": "overwrite"})
    return DeltaTable(uri).version()


@pytest.mark.parametrize("mode", ["append", "snapshot"])
def test_a_streamed_load_refuses_a_breaking_type_change_and_keeps_the_table(tmp_path, mode) -> None:
    # Parts used to replace a snapshot's schema with the batch's unchecked: the contract's
    # float amounts over a table of text amounts loaded, and the text was gone.
    spec = dataclasses.replace(SPEC, load_mode=mode, keys=())
    home, _ = _load(tmp_path / "home", generate(500, tmp_path / "a" / "sager.csv", seed=7), spec)
    version = _retype_silver(home, "amount", pl.String)
    before = pl.read_delta(home.table_uri("silver", SPEC.name))
    shutil.copy(generate(500, tmp_path / "b" / "sager2.csv", seed=8), home.drop / SPEC.name)

    with pytest.raises(LakeError, match="'amount' is String in the table but Float64") as error:
        load_dataset(spec, home, TEST_KEY)

    assert "Nothing was written" in str(error.value)
    uri = home.table_uri("silver", SPEC.name)
    assert DeltaTable(uri).version() == version
    assert pl.read_delta(uri).equals(before)


@pytest.mark.parametrize("mode", ["append", "snapshot", "merge"])
def test_partition_by_taken_out_of_the_yaml_is_refused_and_the_table_kept(tmp_path, mode) -> None:
    # Without `partition_by:` an append or snapshot streams Parquet parts, which carry no
    # partition values: committed into the partitioned table, they made every later read
    # fail on the column. A merge kept the table's partitioning without a word.
    keys = SPEC.keys if mode == "merge" else ()
    partitioned = dataclasses.replace(SPEC, load_mode=mode, keys=keys, partition_by=("status",))
    home, _ = _load(
        tmp_path / "home", generate(500, tmp_path / "a" / "sager.csv", seed=7), partitioned
    )
    uri = home.table_uri("silver", SPEC.name)
    version, before = DeltaTable(uri).version(), pl.read_delta(uri)
    shutil.copy(generate(500, tmp_path / "b" / "sager2.csv", seed=8), home.drop / SPEC.name)

    unpartitioned = dataclasses.replace(partitioned, partition_by=())
    with pytest.raises(LakeError, match=r"partitioned by \['status'\].*no partitioning"):
        load_dataset(unpartitioned, home, TEST_KEY)

    assert DeltaTable(uri).version() == version
    assert pl.read_delta(uri).equals(before)
    # with the setting back, the file loads
    [again] = load_dataset(partitioned, home, TEST_KEY).batches
    loaded = pl.read_delta(uri).filter(pl.col("_batch_id") == again.batch_id)
    assert again.rows_valid > 0 and loaded.height == again.rows_valid


@pytest.mark.parametrize("mode", ["append", "snapshot"])
def test_a_streamed_load_widens_a_column_as_a_whole_load_does(tmp_path, mode) -> None:
    # Appending parts to a table of Float32 amounts was refused with both schemas printed;
    # float32 → float64 is a safe widening, which write_batch does.
    spec = dataclasses.replace(SPEC, load_mode=mode, keys=())
    home, _ = _load(tmp_path / "home", generate(500, tmp_path / "a" / "sager.csv", seed=7), spec)
    _retype_silver(home, "amount", pl.Float32)
    first = pl.read_delta(home.table_uri("silver", SPEC.name)).height
    shutil.copy(generate(500, tmp_path / "b" / "sager2.csv", seed=8), home.drop / SPEC.name)

    [batch] = load_dataset(spec, home, TEST_KEY).batches

    silver = pl.read_delta(home.table_uri("silver", SPEC.name))
    assert batch.status == "loaded" and silver.schema["amount"] == pl.Float64
    assert silver.height == batch.rows_valid + (0 if mode == "snapshot" else first)


def test_a_later_load_into_the_same_schema_still_streams_in_parts(
    tmp_path, extract, monkeypatch
) -> None:
    # Loads stream only when the silver rows have the table's schema; the everyday case, a
    # second delivery of the same contract, must keep streaming (memory bounded by a piece).
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 64 * 1024)
    home, _ = _load(tmp_path / "home", extract)
    uri = home.table_uri("silver", SPEC.name)
    first = set(DeltaTable(uri).file_uris())
    shutil.copy(generate(20_000, tmp_path / "b" / "sager2.csv", seed=8), home.drop / SPEC.name)

    [batch] = load_dataset(SPEC, home, TEST_KEY).batches

    assert batch.status == "loaded" and DeltaTable(uri).version() == 1
    assert len(set(DeltaTable(uri).file_uris()) - first) > 3  # parts, not one collected write


def test_after_a_refused_load_a_changed_outcome_replaces_the_batchs_quarantine(
    tmp_path,
) -> None:
    # Quarantine is committed before silver. When silver refused the batch and the operator
    # then changed the YAML, the re-run skipped the quarantine write (same batch): the old
    # failures stayed, and rows failing only under the new YAML were nowhere.
    home, _ = _load(tmp_path / "home", generate(200, tmp_path / "a" / "sager.csv", seed=7))
    delivery = pl.read_csv(
        generate(200, tmp_path / "b" / "sager2.csv", seed=8), separator=";", infer_schema=False
    )
    # Three amounts written as 1234.50: refused under decimal commas, fine without them.
    plain = pl.int_range(pl.len()) < 3
    delivery = delivery.with_columns(
        pl.when(plain).then(pl.lit("1234.50")).otherwise(pl.col("Beløb")).alias("Beløb")
    )
    delivery.write_csv(home.drop / SPEC.name / "sager2.csv", separator=";")
    _retype_silver(home, "amount", pl.String)
    with pytest.raises(LakeError, match="'amount' is String in the table"):
        load_dataset(SPEC, home, TEST_KEY)

    # The fix: the table's type back, and the YAML reading amounts without decimal commas.
    _retype_silver(home, "amount", pl.Float64)
    points = dataclasses.replace(SPEC.parse, decimal_comma=False, thousands_separator=None)
    [batch] = load_dataset(dataclasses.replace(SPEC, parse=points), home, TEST_KEY).batches

    held = quarantine(home, SPEC.name).filter(pl.col("batch_id") == batch.batch_id)
    assert held.select("_source_row").n_unique() == batch.rows_quarantined
    assert not held.filter(pl.col("_source_row") <= 4).height  # lines 2-4 load now
    silver = pl.read_delta(home.table_uri("silver", SPEC.name))
    assert silver.filter(pl.col("_batch_id") == batch.batch_id).height == batch.rows_valid == 3


class _Killed(BaseException):
    """The process dying where it is raised: nothing after it runs, nothing catches it."""


@pytest.mark.parametrize("mode", ["append", "merge"])  # parts committed / write_batch
def test_a_rerun_after_a_kill_past_silver_keeps_the_outcome_silver_has(
    tmp_path, monkeypatch, mode
) -> None:
    # A load killed after its silver commit, before its runs row; the operator fixes the YAML
    # and loads again. The re-run replaced the batch's quarantine with the new outcome (the
    # rows the fix released, gone from quarantine) while silver, already holding the batch,
    # kept the old valid rows only: those rows were in neither, and quality.runs recorded
    # every row as valid.
    spec = dataclasses.replace(SPEC, load_mode=mode)
    broken = dataclasses.replace(
        spec, parse=dataclasses.replace(SPEC.parse, thousands_separator=None)
    )
    home = Home(tmp_path / "home")
    (home.drop / SPEC.name).mkdir(parents=True)
    generate(2_000, home.drop / SPEC.name / "sager.csv", seed=7)

    def killed(*args, **kwargs) -> None:
        raise _Killed

    with monkeypatch.context() as patch:
        patch.setattr("lake.quality.record_run", killed)
        with pytest.raises(_Killed):
            load_dataset(broken, home, TEST_KEY)
    silver_uri = home.table_uri("silver", SPEC.name)
    held_before = quarantine(home, SPEC.name)
    assert 0 < pl.read_delta(silver_uri).height < held_before["_source_row"].n_unique()

    [batch] = load_dataset(spec, home, TEST_KEY).batches  # the YAML fixed meanwhile

    silver = pl.read_delta(silver_uri).filter(pl.col("_batch_id") == batch.batch_id)
    held = quarantine(home, SPEC.name).filter(pl.col("batch_id") == batch.batch_id)
    # What the lake holds is the first run's outcome, and the run row says so.
    assert held.sort("_source_row", "column").equals(held_before.sort("_source_row", "column"))
    assert silver.height == batch.rows_valid
    assert held["_source_row"].n_unique() == batch.rows_quarantined
    assert batch.rows_in == batch.rows_valid + batch.rows_quarantined == 2_000
    # ... and a reload applies the fixed YAML to it, each row once.
    again = reload_batch(spec, home, TEST_KEY, batch.batch_id)
    silver = pl.read_delta(silver_uri).filter(pl.col("_batch_id") == batch.batch_id)
    held = quarantine(home, SPEC.name).filter(pl.col("batch_id") == batch.batch_id)
    assert silver.height == silver["case_id"].n_unique() == again.rows_valid > batch.rows_valid
    assert held["_source_row"].n_unique() == again.rows_quarantined
    assert again.rows_valid + again.rows_quarantined == 2_000


_KILLED_WHILE_SPOOLING = """
import dataclasses, os, signal, sys
from pathlib import Path
import lake.quality
from lake.home import Home
from pipelines.ingest import load_dataset
from tests.conftest import TEST_KEY
from tests.pipelines.test_streaming_load import SPEC

add = lake.quality.QuarantineSpool.add
def add_then_die(self, failures):
    add(self, failures)
    if self.parts:  # a spool part is on disk: SIGKILL, as an operator or the OOM killer would
        os.kill(os.getpid(), signal.SIGKILL)
lake.quality.QuarantineSpool.add = add_then_die
# Without the thousands separator most amounts fail typing: most rows are quarantined.
broken = dataclasses.replace(SPEC, parse=dataclasses.replace(SPEC.parse, thousands_separator=None))
if sys.argv[2] == "gzip":
    broken = dataclasses.replace(
        broken,
        source={**SPEC.source, "pattern": "*.csv.gz"},
        format={**SPEC.format, "container": "gzip"},
    )
load_dataset(broken, Home(Path(sys.argv[1])), TEST_KEY)
"""


@pytest.mark.parametrize("container", ["none", "gzip"])
def test_a_spool_left_by_a_killed_load_is_removed_by_a_later_load(tmp_path, container) -> None:
    # A SIGKILLed load leaves its quarantine spool (a batch's failing rows, as big as the
    # file when every row fails) under <home>/tmp, and nothing ever removed it; an unpacked
    # gzip member sits in the same folder.
    home = Home(tmp_path / "home")
    (home.drop / SPEC.name).mkdir(parents=True)
    extract = generate(500, home.drop / SPEC.name / "sager.csv", seed=7)
    spec = SPEC
    if container == "gzip":
        extract.with_suffix(".csv.gz").write_bytes(gzip.compress(extract.read_bytes()))
        extract.unlink()
        spec = dataclasses.replace(
            SPEC,
            source={**SPEC.source, "pattern": "*.csv.gz"},
            format={**SPEC.format, "container": "gzip"},
        )
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_WHILE_SPOOLING, str(home.root), container],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    [left] = home.scratch.glob("load-*")
    assert list(left.glob("*.parquet"))
    assert bool(list(left.glob("unpacked-*"))) == (container == "gzip")
    old = time.time() - 3600  # the kill was a while ago
    os.utime(left, (old, old))
    for path in left.iterdir():
        os.utime(path, (old, old))

    [batch] = load_dataset(spec, home, TEST_KEY).batches

    assert batch.status == "loaded" and batch.rows_in == 500
    assert not list(home.scratch.iterdir())
