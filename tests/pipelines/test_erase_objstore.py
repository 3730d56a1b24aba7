"""`kommunelake erase` with the lake on S3 (moto) and on Azure (Azurite): what the local-disk
tests (test_erase_command.py) assert, checked in the bucket or container itself. Every
object is listed and read with the store's own SDK (boto3, azure-storage-blob), never
through the lake's code, so a file our listing missed would still be found."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from lake import connect, erasure, storage
from lake.home import Home
from pipelines.cli import main
from tests.helpers import redeliver_cpr
from tests.lake import objectstores
from tests.pipelines.test_erase_command import (
    CPR_DATASETS,
    _erase,
    _raw,
    _rows,
    _subject,
    _token,
    assert_only_the_subject_left,
    load_demo,
)

# The layers an erasure rewrites; landing keeps the deliveries as received (README, Privacy).
ERASED_LAYERS = ("silver", "quarantine", "quality", "gold")
_COUNTS = re.compile(r"^  (\w+): (?:would remove|removed) ([\d,]+) silver row\(s\), ([\d,]+) quar")


@dataclass(frozen=True)
class Store:
    """A home whose lake is a fresh bucket or container, and the store's own SDK on it."""

    home: Home
    keys: Callable[[], list[str]]  # every object's name (key), prefix included
    read: Callable[[str], bytes]

    def contents(self) -> dict[str, str]:
        """Every object's name and SHA-256: a rewritten `_last_checkpoint` changes no name."""
        return {key: hashlib.sha256(self.read(key)).hexdigest() for key in self.keys()}

    def holding(self, layers: tuple[str, ...], text: str) -> list[str]:
        """Objects under the lake's `layers` that hold `text`: Parquet read as a table (it is
        compressed), log entries and the rest as bytes."""
        prefix = storage.parse_lake_uri(self.home.lake_root).prefix
        found = []
        for key in self.keys():
            if not key.startswith(tuple(f"{prefix}/{layer}/" for layer in layers)):
                continue
            data = self.read(key)
            if key.endswith(".parquet"):
                hit = text in str(pq.read_table(io.BytesIO(data)).to_pylist())
            else:
                hit = text.encode() in data
            if hit:
                found.append(key)
        return found


@pytest.fixture(params=["s3", "azure"])
def store(request, monkeypatch) -> Store:
    """The demo's CPR datasets loaded by `kommunelake load` into a lake on moto or Azurite."""
    home: Home = request.getfixturevalue(f"{request.param}_home")
    container = storage.parse_lake_uri(home.lake_root).container
    if request.param == "s3":
        server = request.getfixturevalue("moto")
        client = objectstores.s3_client(server)
        found = Store(
            home,
            lambda: objectstores.s3_keys(server, container),
            lambda key: client.get_object(Bucket=container, Key=key)["Body"].read(),
        )
    else:
        server = request.getfixturevalue("azurite")
        blobs = objectstores.container_client(server, container)
        found = Store(
            home,
            lambda: objectstores.azure_keys(server, container),
            lambda key: blobs.download_blob(key).readall(),
        )
    load_demo(home, monkeypatch)
    assert found.keys(), "nothing was loaded into the store"
    return found


def _counts(out: str) -> dict[str, tuple[int, int]]:
    """Silver and quarantine rows per dataset, from the command's lines."""
    return {
        m.group(1): (int(m.group(2).replace(",", "")), int(m.group(3).replace(",", "")))
        for m in map(_COUNTS.match, out.splitlines())
        if m
    }


def _layers(out: str) -> str:
    """The rows per layer of the command's last line (`silver 7, quarantine 1, ...`)."""
    [layers] = re.findall(r"\((silver [^)]*)\)", out)
    return layers


def test_erase_in_object_storage_leaves_the_subject_in_no_object_and_no_version(
    store: Store, monkeypatch, capsys
) -> None:
    home, options = store.home, store.home.storage_options()
    number = _subject(home)
    token = _token(number)
    before = {n: _rows(home, "silver", n) for n in CPR_DATASETS}
    theirs = {n: before[n].filter(pl.col("cpr") == token).height for n in CPR_DATASETS}
    assert theirs["cpr_persons"] == 1 and theirs["home_care_visits"] > 0
    assert store.holding(("silver",), token)
    quarantine_before = _rows(home, "quarantine", "cpr_persons").height

    # a dry run counts what would go and writes nothing to the store
    objects = store.contents()
    capsys.readouterr()
    assert _erase(home, number, monkeypatch, "--dry-run") == 0
    dry = capsys.readouterr().out
    assert store.contents() == objects
    assert "nothing was changed" in dry
    assert _counts(dry) == {n: (theirs[n], int(n == "cpr_persons")) for n in CPR_DATASETS}

    # The sender's files are gone from the drop folder (replaced, or removed by the
    # operator), so the landed deliveries are read again from the store: downloaded.
    kept = home.root / "drop-kept"
    home.drop.rename(kept)
    assert _erase(home, number, monkeypatch) == 0
    kept.rename(home.drop)

    out, err = capsys.readouterr()
    assert not [p for p in home.scratch.rglob("*") if p.is_file()]  # no download left behind
    assert number not in out + err and token not in out + err
    assert _counts(out) == _counts(dry)  # the dry run said what the erasure did
    assert _layers(out) == _layers(dry)
    assert_only_the_subject_left(home, token, before, theirs, quarantine_before)
    # no object left in the store and no readable earlier version holds the subject
    assert store.holding(ERASED_LAYERS, token) == []
    assert store.holding(("state",), number) == []
    touched = [home.table_uri(layer, n) for n in CPR_DATASETS for layer in ("silver", "quarantine")]
    touched += [home.table_uri("quality", "deletions")]
    for uri in touched:
        if DeltaTable.is_deltatable(uri, storage_options=options):
            current = DeltaTable(uri, storage_options=options).version()
            assert erasure.readable_versions(uri, options) == [current], uri
    assert token.encode() not in home.serving_db.read_bytes()
    con = connect(str(home.root))
    try:
        [audit] = con.sql("select * from quality.erasures").pl().to_dicts()
    finally:
        con.close()
    assert audit["subject_found"]
    assert audit["rows_removed"] == sum(theirs.values()) + 1  # + the quarantine row
    assert number not in str(audit) and token not in str(audit)
    assert erasure.erased(home.erasures_uri, options) == {token}

    # the vendor delivers the extract again, the subject still in it (a reload of an old
    # batch goes through the same filter: test_erase_command.py)
    other = _raw(home, "cpr_persons").filter(pl.col("_cpr") != number)["FORNAVN"][0]
    redeliver_cpr(home, f";{other};", f";{other}a;")
    assert main(["load", "--home", str(home.root), "--select", "key:silver/cpr_persons+"]) == 0
    assert token not in _rows(home, "silver", "cpr_persons")["cpr"].to_list()
    runs = pl.read_delta(home.runs_uri, storage_options=options).sort("finished_at")
    newest = runs.filter(pl.col("dataset") == "cpr_persons").row(-1, named=True)
    assert "erased data subjects left out" in newest["message"]
    assert number not in capsys.readouterr().err
