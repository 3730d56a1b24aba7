from __future__ import annotations

import hashlib
import shutil

from deltalake import DeltaTable

from lake.landing import land, manifest


def _land(home, data: bytes, name: str = "export.csv", dataset: str = "sick_leave"):
    return land(
        home.landing,
        home.manifest_uri,
        dataset=dataset,
        source="drop",
        data=data,
        original_name=name,
        media_type="text/csv",
    )


def test_bytes_are_stored_under_their_sha256_before_anything_else(home) -> None:
    data = "Fravær-ID;CPR\nF1;0101901234\n".encode("cp1252")
    landed, new = _land(home, data)
    assert new
    sha = hashlib.sha256(data).hexdigest()
    assert landed.sha256 == sha
    assert landed.path.endswith(f"{sha}.csv")
    with open(landed.path, "rb") as stored:
        assert stored.read() == data
    [row] = manifest(home.manifest_uri, "sick_leave")
    assert (row.size, row.media_type, row.original_name) == (len(data), "text/csv", "export.csv")


def test_same_bytes_twice_land_once(home) -> None:
    first, new1 = _land(home, b"a;b\n1;2\n", "monday.csv")
    version = DeltaTable(home.manifest_uri).version()
    second, new2 = _land(home, b"a;b\n1;2\n", "tuesday-copy.csv")
    assert (new1, new2) == (True, False)
    assert second.sha256 == first.sha256
    assert DeltaTable(home.manifest_uri).version() == version  # no new commit
    assert len(manifest(home.manifest_uri)) == 1


def test_different_bytes_and_datasets_are_separate(home) -> None:
    _land(home, b"a\n1\n")
    _land(home, b"a\n2\n")
    _land(home, b"a\n1\n", dataset="cpr_persons")
    assert len(manifest(home.manifest_uri, "sick_leave")) == 2
    assert len(manifest(home.manifest_uri, "cpr_persons")) == 1


def test_bytes_stored_without_manifest_row_are_recorded_on_retry(home) -> None:
    # A crash after storing the file but before the manifest commit leaves exactly this.
    data = b"a\n1\n"
    landed, _ = _land(home, data)
    shutil.rmtree(home.manifest_uri)
    again, new = _land(home, data)
    assert new and again.path == landed.path
    assert len(manifest(home.manifest_uri)) == 1
