"""Landing a dataset's drop folder: streamed from the files, hashed once per file version."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time

import dagster as dg
import pytest

from connectors.demo import generate
from connectors.files import drop_files
from lake import quality, storage
from lake.landing import manifest
from pipelines.checks import load_facts
from pipelines.delivery import land_drop_folder
from pipelines.factory import dataset_result
from pipelines.ingest import LoadReport, load_dataset
from pipelines.specs import spec_by_name
from tests.conftest import TEST_KEY

ROW = b"F2026-99999;1;0101901234;Jobcenter;Egen sygdom;01-11-2026;02-11-2026;1;7,4\r\n"


def _deliver(home, name: str, data: bytes):
    folder = home.drop / "sick_leave"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def _count_reads(monkeypatch) -> list:
    """Names of the drop files read whole, once per read: hashed, or copied while hashed."""
    read = []
    sha256_file, copy_in = storage.sha256_file, storage.copy_in
    monkeypatch.setattr(storage, "sha256_file", lambda p: read.append(p.name) or sha256_file(p))
    monkeypatch.setattr(
        storage, "copy_in", lambda p, *args: read.append(p.name) or copy_in(p, *args)
    )
    return read


def test_an_unchanged_drop_folder_is_not_hashed_again(home, monkeypatch) -> None:
    spec = spec_by_name("sick_leave")
    first = _deliver(home, "januar.csv", b"header\r\n" + ROW)
    _deliver(home, "februar.csv", b"header\r\n" + ROW + ROW)
    read = _count_reads(monkeypatch)

    new, present = land_drop_folder(spec, home)
    assert new == 2 and sorted(read) == ["februar.csv", "januar.csv"]  # each read once
    assert present[hashlib.sha256(first.read_bytes()).hexdigest()] == [first]

    read.clear()
    new, again = land_drop_folder(spec, home)  # e.g. the next sensor-started run
    assert (new, read, again) == (0, [], present)

    first.write_bytes(first.read_bytes() + ROW.replace(b"99999", b"99998"))  # corrected
    new, _ = land_drop_folder(spec, home)
    assert (new, read) == (1, ["januar.csv"])
    assert len(manifest(home.manifest_uri, "sick_leave")) == 3


def test_a_file_still_being_written_waits_and_the_others_land(home, monkeypatch, caplog) -> None:
    spec = spec_by_name("sick_leave")
    growing = _deliver(home, "arriving.csv", b"header\r\n" + ROW.replace(b"99999", b"99998"))
    done = _deliver(home, "done.csv", b"header\r\n" + ROW + ROW)
    copy_blocks = storage._copy_blocks

    def copy_while_the_vendor_writes(source, out):
        result = copy_blocks(source, out)
        if source.name == str(growing):  # more bytes arrive during every copy of the file
            with growing.open("ab") as handle:
                handle.write(ROW)
        return result

    monkeypatch.setattr(storage, "_copy_blocks", copy_while_the_vendor_writes)
    with caplog.at_level(logging.WARNING, logger="kommunelake.ingest"):
        new, present = land_drop_folder(spec, home)
    assert new == 1
    assert [p for paths in present.values() for p in paths] == [done]
    assert [f.original_name for f in manifest(home.manifest_uri)] == ["done.csv"]
    assert "arriving.csv changed while it was being landed" in caplog.text
    stored = [p.name for p in home.landing.rglob("*") if p.is_file() and "_manifest" not in str(p)]
    assert stored == [f"{hashlib.sha256(done.read_bytes()).hexdigest()}.csv"]

    monkeypatch.setattr(storage, "_copy_blocks", copy_blocks)  # the upload has finished
    new, present = land_drop_folder(spec, home)
    assert new == 1 and len(present) == 2


def test_a_file_the_pattern_does_not_match_is_named_not_loaded(home, caplog) -> None:
    spec = spec_by_name("sick_leave")  # pattern *.csv
    _deliver(home, "fravær.xlsx", b"PK\x03\x04")
    _deliver(home, "~$fravær.csv", b"lock file")  # an editor's: never an export, never named
    _deliver(home, "Thumbs.db", b"\xd0\xcf")  # Windows Explorer's, in every shared folder
    _deliver(home, "desktop.ini", b"[.ShellClassInfo]")
    _deliver(home, "._fravær.csv", b"\x00\x05\x16\x07")  # macOS resource fork, never named
    _deliver(home, "_SUCCESS", b"")  # a job's marker: matches no pattern, never named
    _deliver(home, "_fravær_november.csv", ROW)  # someone's export with a marker-like name
    with caplog.at_level(logging.WARNING, logger="kommunelake.ingest"):
        new, present = land_drop_folder(spec, home)
    assert (new, present) == (0, {})
    assert manifest(home.manifest_uri, "sick_leave") == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "sick_leave: fravær.xlsx does not match the source pattern *.csv and is not loaded;"
        " rename it, or change `source.pattern` in the dataset YAML",
        "sick_leave: _fravær_november.csv is not loaded: a name starting with `_` marks a"
        " temporary or marker file; rename it without the leading `_` if it is an export",
    ]


@pytest.mark.parametrize("pattern", ["*.csv", "*"])
def test_files_still_being_uploaded_are_neither_loaded_nor_named(home, pattern, caplog) -> None:
    # WinSCP uploads `fravær.csv` as `fravær.csv.filepart` and renames it when complete;
    # loaded under a wide pattern, the half file was a batch of its own (or a rejection), and
    # under `*.csv` it was named as a file to rename.
    spec = spec_by_name("sick_leave")
    spec = dataclasses.replace(spec, source={**spec.source, "pattern": pattern})
    header = "Fravær-ID;Medarbejdernr;CPR;Afdeling;Fraværstype;Startdato;Slutdato;Fraværsdage;Timer"
    for name in ("fravær.csv.filepart", "fravær.csv.partial", "FRAVÆR.CSV.PART", "a.csv.tmp"):
        _deliver(home, name, header.encode("cp1252") + b"\r\n" + ROW[:20])
    assert drop_files(home.drop / spec.name, spec.patterns) == []
    with caplog.at_level(logging.WARNING, logger="kommunelake.ingest"):
        assert land_drop_folder(spec, home) == (0, {})
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert manifest(home.manifest_uri, "sick_leave") == []


def test_a_load_names_files_in_a_sub_folder_it_does_not_load(home, caplog) -> None:
    spec = spec_by_name("sick_leave")
    (home.drop / spec.name / "Januar 2026").mkdir(parents=True)
    (home.drop / spec.name / "Januar 2026" / "fravær.csv").write_bytes(ROW)
    with caplog.at_level(logging.WARNING, logger="kommunelake.ingest"):
        assert land_drop_folder(spec, home) == (0, {})
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "sick_leave: drop/sick_leave/Januar 2026/ holds 1 file(s), which are not loaded: only"
        " files directly in drop/sick_leave/ load; move them up into it"
    ]


def test_nothing_to_load_names_the_files_that_do_not_match(home) -> None:
    spec = spec_by_name("sick_leave")
    _deliver(home, "fravær.xlsx", b"PK\x03\x04")
    _deliver(home, "_fravær.csv", ROW)
    with pytest.raises(dg.Failure) as caught:
        dataset_result(spec, home, LoadReport(spec.name, 0))
    assert (
        "matching ['*.csv'] (fravær.xlsx is there but not matching;"
        " _fravær.csv is there but starting with `_`, taken for a temporary file)"
    ) in str(caught.value.description)


def test_a_sensor_run_leaves_a_file_modified_within_the_settle_window(home, caplog) -> None:
    generate(home.root, persons=300)
    folder = home.drop / "sick_leave"
    done = folder / "sygefravaer_2026.csv"
    an_hour_ago = time.time() - 3600
    os.utime(done, (an_hour_ago, an_hour_ago))
    arriving = folder / "oktober.csv"  # an upload paused mid-line: its writer is not done
    arriving.write_bytes(done.read_bytes()[:2000])

    with caplog.at_level(logging.WARNING, logger="kommunelake.ingest"):
        report = load_dataset(spec_by_name("sick_leave"), home, TEST_KEY, settle=True)
    assert [(b.source_file, b.status) for b in report.batches] == [
        ("sygefravaer_2026.csv", "loaded")
    ]
    assert arriving.exists() and not (folder / "rejected").exists()  # neither loaded nor moved
    assert "oktober.csv was modified less than 10 s ago and may still be arriving" in caplog.text
    # A person's load (CLI, UI: no settle tag) takes what is there: they just put it there.
    report = load_dataset(spec_by_name("sick_leave"), home, TEST_KEY)
    assert [b.source_file for b in report.batches] == ["oktober.csv"]


def test_an_unreadable_file_is_named_and_the_other_files_still_load(home, caplog) -> None:
    """The sensor gives such a file no run, but the runs the other files start land the whole
    folder: the unreadable file failed each of them, so nothing of the dataset loaded."""
    spec = spec_by_name("sick_leave")
    header = b"Fravaer-ID;Medarbejdernr;CPR;Afdeling;Fravaerstype;Startdato;Slutdato;Dage;Timer"
    _deliver(home, "done.csv", header + b"\r\n" + ROW)
    # Reading it fails with EIO, as a failing disk or a vanished network share would.
    (home.drop / "sick_leave" / "vendor.csv").symlink_to("/proc/self/mem")
    with caplog.at_level(logging.WARNING, logger="kommunelake.ingest"):
        new, present = land_drop_folder(spec, home)
    assert new == 1 and [p.name for paths in present.values() for p in paths] == ["done.csv"]
    assert [f.original_name for f in manifest(home.manifest_uri)] == ["done.csv"]
    assert (
        "sick_leave: cannot read vendor.csv (Input/output error); it is not loaded:"
        " check the file and its permissions, or deliver it again" in caplog.text
    )


def test_a_rejected_file_with_a_long_name_gets_its_reason_beside_it(home) -> None:
    """`<name>.error.txt` is 10 bytes longer than the name: for a name near the file system's
    limit (255 bytes) writing it failed the run, after the file had been moved."""
    name = "Sygefravær " + "x" * 236 + ".csv"  # 251 bytes in UTF-8
    _deliver(home, name, b"Foo;Bar\r\n1;2\r\n")
    [batch] = load_dataset(spec_by_name("sick_leave"), home, TEST_KEY).batches
    assert batch.status == "rejected"
    rejected = home.drop / "sick_leave" / "rejected"
    [reason] = rejected.glob("*.error.txt")
    assert (rejected / name).exists() and name.startswith(reason.name.removesuffix(".error.txt"))
    assert "missing required column(s)" in reason.read_text(encoding="utf-8")


def test_a_second_rejected_file_of_the_same_name_keeps_the_first_and_its_reason(home) -> None:
    """Vendors reuse names (`eksport.csv` every month): the second rejection replaced the
    first file and its `.error.txt` in rejected/."""
    spec, rejected = spec_by_name("sick_leave"), home.drop / "sick_leave" / "rejected"
    first, second = b"Foo;Bar\r\n1;2\r\n", b"Foo;Baz\r\n3;4\r\n"
    for data in (first, second, second):  # the last: the same bytes moved back and retried
        _deliver(home, "eksport.csv", data)
        [batch] = load_dataset(spec, home, TEST_KEY).batches
        assert batch.status == "rejected"

    assert sorted(p.name for p in rejected.iterdir()) == [
        "eksport (2).csv",
        "eksport (2).csv.error.txt",
        "eksport.csv",
        "eksport.csv.error.txt",
    ]
    assert (rejected / "eksport.csv").read_bytes() == first
    assert (rejected / "eksport (2).csv").read_bytes() == second
    assert "Baz" in (rejected / "eksport (2).csv.error.txt").read_text(encoding="utf-8")


def test_sheets_named_after_a_citizens_cpr_number_are_masked_in_silver_and_quarantine(
    home,
) -> None:
    # A hand-kept workbook with a sheet per citizen, read with `sheets: "*"`: the sheet name
    # is lineage (`_sheet` in silver, `sheet` in quarantine) and reached both in the clear.
    import dataclasses

    import polars as pl
    import xlsxwriter

    spec = spec_by_name("meal_delivery_list")
    spec = dataclasses.replace(spec, format={"type": "excel", "sheets": "*", "header_row": 0})
    header = ["Navn", "CPR", "Adresse", "Postnr", "By", "Kost", "Startdato", "Bemærkning"]
    folder = home.drop / spec.name
    folder.mkdir(parents=True)
    workbook = xlsxwriter.Workbook(str(folder / "liste.xlsx"))
    for sheet, cpr in (("Borger 150285-1234", "1502851234"), ("0101904321", "0101904321")):
        cells = workbook.add_worksheet(sheet)
        good = ["Ane", cpr, "Vej 1", "8000", "Aarhus", "Normal", "01-02-2026", ""]
        bad = ["Bo", cpr, "Vej 2", "8000", "Aarhus", "Normal", "31-02-2026", ""]  # no such date
        for row, values in enumerate((header, good, bad)):
            cells.write_row(row, 0, values)
    workbook.close()

    [batch] = load_dataset(spec, home, TEST_KEY).batches

    assert (batch.rows_in, batch.rows_valid, batch.rows_quarantined) == (4, 2, 2)
    silver = pl.read_delta(home.table_uri("silver", spec.name))
    held = pl.read_delta(home.table_uri("quarantine", spec.name))
    assert sorted(silver["_sheet"]) == ["Borger NNNNNN-NNNN", "NNNNNNNNNN"]
    assert sorted(held["sheet"]) == ["Borger NNNNNN-NNNN", "NNNNNNNNNN"]


def test_a_run_that_finds_the_latest_delivery_still_rejected_says_which_and_why(
    home, caplog
) -> None:
    """Two files dropped in one sensor tick get a run each; the first run loads the good one
    and rejects the other. The second run, tagged with the good file's name, found nothing
    new and failed on the open rejection (the `schema` check) with no line in its log naming
    the rejected file or the cause: the good file looked failed."""
    spec = spec_by_name("sick_leave")
    header = "Fravær-ID;Medarbejdernr;CPR;Afdeling;Fraværstype;Startdato;Slutdato;Fraværsdage"
    _deliver(home, "good.csv", (header + ";Timer\r\n").encode("cp1252") + ROW)
    _deliver(home, "short.csv", (header + "\r\n").encode("cp1252") + ROW.rsplit(b";", 1)[0])
    statuses = sorted(b.status for b in load_dataset(spec, home, TEST_KEY).batches)
    assert statuses == ["loaded", "rejected"]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kommunelake.ingest"):
        report = load_dataset(spec, home, TEST_KEY)  # the run started for good.csv
    assert report.batches == () and "short.csv" in report.open_rejection
    [line] = [r.getMessage() for r in caplog.records]
    assert "still rejected" in line and "short.csv: missing required column(s) hours" in line
    assert "drop/sick_leave/rejected/" in line


def test_files_dropped_together_land_with_numbers_in_names_compared_as_numbers(home) -> None:
    # Landed in plain name order, udtraek_10 came before udtraek_9: for a snapshot or a
    # merge, the older extract then replaced the newer one.
    spec = spec_by_name("sick_leave")
    for number in (10, 9, 2, 100):
        _deliver(home, f"udtraek_{number}.csv", b"header\r\n" + ROW * number)

    land_drop_folder(spec, home)

    names = [f.original_name for f in manifest(home.manifest_uri, "sick_leave")]
    assert names == ["udtraek_2.csv", "udtraek_9.csv", "udtraek_10.csv", "udtraek_100.csv"]


def test_a_load_says_when_a_file_ends_in_total_rows_it_loaded_as_data(home, caplog) -> None:
    # `check` pointed to skip_rows_matching; a load put the total row into silver silently.
    header = "Fravær-ID;Medarbejdernr;CPR;Afdeling;Fraværstype;Startdato;Slutdato;Fraværsdage;Timer"
    total = ROW.replace(b"F2026-99999", b"I alt")
    _deliver(home, "fravaer.csv", f"{header}\r\n".encode("cp1252") + ROW + total)

    [batch] = load_dataset(spec_by_name("sick_leave"), home, TEST_KEY).batches

    assert batch.rows_valid == 2  # the total row types, so it is data to the contract
    assert "the last rows look like totals, e.g. row 3 ('I alt' in " in caplog.text
    assert "`skip_rows_matching: '^I alt$'`" in caplog.text


def test_rows_skipped_by_skip_rows_matching_are_counted_in_the_runs_record(home) -> None:
    # A total row of the header's width and a shorter subtotal: both left out, and said so.
    spec = spec_by_name("sick_leave")
    spec = dataclasses.replace(
        spec, format={**spec.format, "skip_rows_matching": "^(I alt|Subtotal)$"}
    )
    header = "Fravær-ID;Medarbejdernr;CPR;Afdeling;Fraværstype;Startdato;Slutdato;Fraværsdage;Timer"
    total = ROW.replace(b"F2026-99999", b"I alt")
    _deliver(
        home, "fravaer.csv", f"{header}\r\n".encode("cp1252") + ROW + b"Subtotal;1\r\n" + total
    )

    [batch] = load_dataset(spec, home, TEST_KEY).batches

    assert (batch.rows_in, batch.rows_valid) == (1, 1)
    said = "2 row(s) matching `skip_rows_matching` skipped (not in rows_in)"
    assert batch.message == said
    assert quality.runs(home, "sick_leave")["message"].to_list() == [said]


def test_the_checks_judge_the_runs_as_the_loads_left_them(home) -> None:
    # load_dataset reads quality.runs once when nothing is pending and hands it to the
    # checks; after a load it must read it again, or the checks would judge the runs before.
    spec = spec_by_name("sick_leave")
    header = "Fravær-ID;Medarbejdernr;CPR;Afdeling;Fraværstype;Startdato;Slutdato;Fraværsdage;Timer"
    header = (header + "\r\n").encode("cp1252")
    _deliver(home, "januar.csv", header + ROW)
    first = load_dataset(spec, home, TEST_KEY)
    _deliver(home, "februar.csv", header + ROW + ROW.replace(b"99999", b"99998"))
    second = load_dataset(spec, home, TEST_KEY)
    unchanged = load_dataset(spec, home, TEST_KEY)

    assert first.history["batch_id"].to_list() == [b.batch_id for b in first.batches]
    assert second.history["rows_in"].to_list() == [1, 2]
    assert not unchanged.batches and unchanged.history.equals(quality.runs(home, spec.name))
    facts = load_facts(home, spec, unchanged)  # nothing new: the last load is judged
    assert (facts.latest_rows_in, facts.previous_rows_in) == (2, (1,))
