"""The drop-folder sensor on a real demo home and a real Dagster instance."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from functools import partial

import dagster as dg
import polars as pl

from connectors.demo import generate
from connectors.files import PARTIAL_SUFFIXES
from lake.quality import runs
from pipelines.definitions import build_definitions
from pipelines.delivery import SETTLE_TAG, subfolder_lines
from pipelines.drop_sensor import drop_folder_sensor, drop_requests
from pipelines.ingest import load_dataset
from pipelines.resources import LakeResource
from pipelines.specs import DATASETS_DIR, spec_by_name, usable_specs
from tests.conftest import TEST_KEY
from tests.helpers import redeliver_cpr


def _evaluate(home, cursor=None, now=None):
    sensor = drop_folder_sensor(clock=lambda: now or time.time() + 60)
    with (
        dg.DagsterInstance.ephemeral() as instance,
        dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            definitions=build_definitions(),
            resources={"lake": LakeResource(home=str(home.root), pseudonym_key=TEST_KEY.decode())},
        ) as context,
    ):
        # As the daemon evaluates it: this checks the requests against the sensor's target
        # (a sensor without one fails every tick), which calling `sensor(context)` does not.
        return sensor.evaluate_tick(context)


def _tick(home, cursor=None, now=None):
    result = _evaluate(home, cursor, now)
    return {r.run_key: r for r in result.run_requests or []}, result.cursor


def _skip_message(home) -> str | None:
    return _evaluate(home).skip_message


def test_one_run_per_content_whatever_the_file_is_called(home) -> None:
    generate(home.root, persons=300)
    requests, cursor = _tick(home)
    assert len(requests) == 7  # one file per dataset
    key = next(k for k in requests if k.startswith("sick_leave:"))
    assert requests[key].asset_selection == [dg.AssetKey(["silver", "sick_leave"])]
    assert requests[key].tags[SETTLE_TAG] == "true"  # its run leaves files still arriving

    folder = home.drop / "sick_leave"
    shutil.copy(folder / "sygefravaer_2026.csv", folder / "sygefravaer_2026 (kopi).csv")
    (folder / "rejected").mkdir()
    shutil.copy(folder / "sygefravaer_2026.csv", folder / "rejected" / "old.csv")
    again, cursor = _tick(home, cursor)
    # The copy has the same bytes: same run key, so Dagster starts no second run.
    assert set(again) == set(requests)
    assert len(json.loads(cursor)) == 8  # both copies cached, rejected/ ignored

    changed = folder / "sygefravaer_2026 (kopi).csv"
    changed.write_bytes(
        changed.read_bytes() + b"F2026-99999;1;0101901234;Jobcenter;"
        b"Egen sygdom;01-11-2026;02-11-2026;1;7,4\r\n"
    )
    later, _ = _tick(home, cursor)
    assert len(set(later) - set(requests)) == 1  # new content, new run


def test_a_file_still_arriving_waits_for_the_next_tick(home) -> None:
    generate(home.root, persons=300)
    now = time.time()
    path = next((home.drop / "cpr_persons").glob("*.csv"))
    os.utime(path, (now, now))
    requests, _ = _tick(home, now=now + 1)
    assert not any(k.startswith("cpr_persons:") for k in requests)
    requests, _ = _tick(home, now=now + 60)
    assert any(k.startswith("cpr_persons:") for k in requests)


def test_an_unreadable_file_is_named_and_the_other_files_get_their_runs(home, capsys) -> None:
    generate(home.root, persons=300)
    # Reading it fails with EIO, as a failing disk or a vanished network share would.
    (home.drop / "cpr_persons" / "vendor.csv").symlink_to("/proc/self/mem")
    requests, cursor = _tick(home)
    assert len(requests) == 7  # every dataset's own file still asks for its run
    # The sensor's log (the daemon shows it with the tick in the UI).
    assert "WARNING - cpr_persons: cannot read vendor.csv: [Errno 5]" in capsys.readouterr().err
    assert not any("vendor.csv" in path for path in json.loads(cursor))


def test_a_file_moved_back_from_rejected_is_retried_once(home) -> None:
    generate(home.root, persons=300)
    folder = home.drop / "sick_leave"
    (folder / "renamed_header.csv").write_bytes(b"Sagsnummer;Navn\r\nF1;x\r\n")
    first, cursor = _tick(home)
    [key] = [k for k, r in first.items() if r.tags["kommunelake/file"] == "renamed_header.csv"]

    load_dataset(spec_by_name("sick_leave"), home, TEST_KEY)  # the run: rejected, moved
    assert not (folder / "renamed_header.csv").exists()
    again, cursor = _tick(home, cursor)
    assert not any(r.tags["kommunelake/file"] == "renamed_header.csv" for r in again.values())

    # The header is mapped in the YAML now, and the operator moves the file back.
    (folder / "rejected" / "renamed_header.csv").rename(folder / "renamed_header.csv")
    retried, cursor = _tick(home, cursor)
    assert f"{key}:retry1" in retried and key not in retried  # a new run, once
    assert set(retried) - {f"{key}:retry1"} <= set(first)  # the loaded files keep their keys


def test_an_earlier_snapshot_sent_again_is_moved_aside_saying_why(home) -> None:
    """cpr_persons is a snapshot: the bytes of an earlier extract, dropped again after a newer
    one loaded, are not loaded (an older snapshot never replaces a newer one). They used to
    wait in the drop folder, the load saying "no new batch" and the sensor saying nothing."""
    spec = spec_by_name("cpr_persons")
    generate(home.root, persons=300)
    folder = home.drop / "cpr_persons"
    first = (folder / "cpr_personer.csv").read_bytes()
    load_dataset(spec, home, TEST_KEY)
    redeliver_cpr(home, "\n", "\n\n")  # a newer extract (one blank line more)
    [newer] = load_dataset(spec, home, TEST_KEY).batches
    assert newer.status == "loaded"
    before, cursor = _tick(home)

    # The first extract again (a copy: a new mtime), beside the newer one.
    (folder / "cpr_personer_igen.csv").write_bytes(first)
    requests, _ = _tick(home, cursor)
    [(key, request)] = [(k, r) for k, r in requests.items() if k not in before]
    assert ":resent" in key and request.tags["kommunelake/file"] == "cpr_personer_igen.csv"

    report = load_dataset(spec, home, TEST_KEY)  # the run that key starts
    assert report.batches == ()
    assert not (folder / "cpr_personer_igen.csv").exists()
    reason = (folder / "rejected" / "cpr_personer_igen.csv.error.txt").read_text()
    assert f"a newer snapshot has been loaded since (cpr_personer.csv, batch {newer.batch_id})" in (
        reason
    )
    assert (folder / "cpr_personer.csv").exists()  # the current snapshot's file stays
    silver = runs(home, "cpr_persons").filter(pl.col("status") == "loaded")
    assert silver["batch_id"].to_list()[-1] == newer.batch_id
    again, _ = _tick(home, cursor)
    assert not any(":resent" in k for k in again)


def test_a_file_stamped_in_the_future_is_loaded_once_it_has_settled(home, monkeypatch) -> None:
    """A modification time from another clock (a zip's local times unpacked on a UTC
    server, a copy keeping a skewed machine's times) waited, without a word, until the
    clock caught up: in the sensor and in the runs it starts."""
    generate(home.root, persons=300)
    path = next((home.drop / "cpr_persons").glob("*.csv"))
    tomorrow = time.time() + 86400
    os.utime(path, (tomorrow, tomorrow))
    requests, _ = _tick(home)  # a minute later
    assert any(k.startswith("cpr_persons:") for k in requests)

    monkeypatch.setenv("KOMMUNELAKE_SETTLE_SECONDS", "0.01")
    time.sleep(0.05)
    report = load_dataset(spec_by_name("cpr_persons"), home, TEST_KEY, settle=True)
    assert [b.status for b in report.batches] == ["loaded"]


def test_a_dataset_yaml_added_while_the_daemon_runs_waits_and_the_others_get_their_runs(
    home, tmp_path, capsys
) -> None:
    """The sensor reads the dataset YAMLs every tick, but the code location has the assets of
    the YAMLs there when it loaded. A YAML added since (with a file in its drop folder) got a
    run request for an asset the location does not have: the daemon failed the whole tick
    with a traceback, every tick, so no other dataset's new file got its run either."""
    datasets = tmp_path / "datasets"
    shutil.copytree(DATASETS_DIR, datasets)
    definitions = build_definitions(datasets)  # what the code location loaded
    yaml = (datasets / "sick_leave.yaml").read_text(encoding="utf-8")
    (datasets / "leave_copy.yaml").write_text(
        yaml.replace("name: sick_leave", "name: leave_copy"), encoding="utf-8"
    )
    generate(home.root, persons=300)
    (home.drop / "leave_copy").mkdir()
    shutil.copy(home.drop / "sick_leave" / "sygefravaer_2026.csv", home.drop / "leave_copy")
    sensor = drop_folder_sensor(partial(usable_specs, datasets), clock=lambda: time.time() + 60)
    with (
        dg.DagsterInstance.ephemeral() as instance,
        dg.build_sensor_context(
            instance=instance,
            definitions=definitions,
            resources={"lake": LakeResource(home=str(home.root), pseudonym_key=TEST_KEY.decode())},
        ) as context,
    ):
        result = sensor.evaluate_tick(context)
    datasets_asked = {r.tags["kommunelake/dataset"] for r in result.run_requests}
    assert len(datasets_asked) == 7 and "leave_copy" not in datasets_asked
    err = capsys.readouterr().err
    assert "WARNING - leave_copy: the dataset is not loaded in the running code location" in err


def test_files_in_a_folder_no_dataset_has_are_named_not_ignored(home, capsys) -> None:
    """A file dropped in a mistyped folder (drop/sickleave/) was never loaded, and nothing,
    in the UI or anywhere else, said so."""
    generate(home.root, persons=300)
    (home.drop / "sickleave").mkdir()
    shutil.copy(home.drop / "sick_leave" / "sygefravaer_2026.csv", home.drop / "sickleave")
    (home.drop / "empty_folder").mkdir()  # nothing in it: nothing to say
    requests, _ = _tick(home)
    assert len(requests) == 7
    err = capsys.readouterr().err
    assert "WARNING - drop/sickleave/ holds 1 file(s), but no dataset named sickleave" in err
    assert "empty_folder" not in err


def test_a_file_still_being_uploaded_gets_no_run(home) -> None:
    # The sensor and a load take their files from one list (`drop_files`): an upload in
    # progress (`.filepart`, `.partial`, ...) gets no run, however old its mtime.
    spec = spec_by_name("sick_leave")
    spec = dataclasses.replace(spec, source={**spec.source, "pattern": "*"})
    folder = home.drop / spec.name
    folder.mkdir(parents=True)
    for suffix in PARTIAL_SUFFIXES:
        (folder / f"sygefravaer_2026.csv{suffix}").write_bytes(b"Fravaer-ID;Medarbejdernr\r\n")
    (folder / "sygefravaer_2026.csv").write_bytes(b"Fravaer-ID;Medarbejdernr\r\nF1;1\r\n")
    warnings: list[str] = []
    requests, seen = drop_requests(
        home.drop, [spec], {}, time.time() + 60, warnings.append, rejections={}
    )
    assert [r.tags["kommunelake/file"] for r in requests] == ["sygefravaer_2026.csv"]
    assert len(seen) == 1 and warnings == []
    assert {".filepart", ".partial", ".part"} <= set(PARTIAL_SUFFIXES)


def test_files_in_a_sub_folder_of_a_drop_folder_are_named_not_ignored(home, capsys) -> None:
    """Only files directly in drop/<dataset>/ load: a folder dropped into it (`januar/`, an
    unpacked zip) was passed over without a word, in the tick log or the UI."""
    folder = home.drop / "sick_leave"
    (folder / "januar" / "uge 1").mkdir(parents=True)
    (folder / "januar" / "sygefravaer_januar.csv").write_bytes(b"a;b\r\n1;2\r\n")
    (folder / "januar" / "uge 1" / "sygefravaer_uge1.csv").write_bytes(b"a;b\r\n1;2\r\n")
    (folder / "rejected").mkdir()  # the pipeline's own
    (folder / "rejected" / "old.csv").write_bytes(b"a;b\r\n")
    (folder / ".git").mkdir()  # hidden: no one's delivery
    (folder / ".git" / "HEAD").write_bytes(b"ref")
    (folder / "tom").mkdir()  # empty: nothing to say
    assert _skip_message(home) == (
        "no files in the drop folders; 1 sub-folder(s) of a drop folder hold files, which are"
        " not loaded (see the tick log)"
    )
    err = capsys.readouterr().err
    line = (
        "sick_leave: drop/sick_leave/januar/ holds 2 file(s), which are not loaded: only files"
        " directly in drop/sick_leave/ load; move them up into it"
    )
    assert f"WARNING - {line}" in err
    assert err.count("which are not loaded") == 1  # not rejected/, .git/ or tom/
    assert subfolder_lines(spec_by_name("sick_leave"), home) == [line]  # a load logs it too
