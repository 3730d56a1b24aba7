from __future__ import annotations

import hashlib
import json
import os
import shutil
import tracemalloc
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lake import storage
from lake.landing import HashCache, land, local_copy, manifest
from tests.helpers import land_path


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


def test_deliveries_landed_back_to_back_have_distinct_times_in_order(home) -> None:
    # SCD2 versions start at their batch's landing time: two files landed in one second got
    # one valid_from, and the key's unique_keys check failed for good.
    first, _ = _land(home, b"a\n1\n", "day1.csv")
    second, _ = _land(home, b"a\n2\n", "day2.csv")
    assert first.fetched_at < second.fetched_at
    assert [f.original_name for f in manifest(home.manifest_uri)] == ["day1.csv", "day2.csv"]


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


# --- landing a file from its path --------------------------------------------------------------


def _land_file(home, path, hashes=None):
    return land_path(home, path, "sick_leave", hashes)


def test_a_file_lands_in_blocks_without_being_read_whole(home, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(storage, "BLOCK_SIZE", 64 * 1024)
    source = tmp_path / "Eksport.CSV"
    source.write_bytes(os.urandom(4 * 1024 * 1024))
    _land_file(home, _small(tmp_path))  # imports and creates the manifest before measuring
    tracemalloc.start()
    try:
        landed, new = _land_file(home, source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024  # a quarter of the file: it was never held whole
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    assert new and landed.sha256 == sha and landed.size == 4 * 1024 * 1024
    assert landed.path == home.landing_uri + f"/sick_leave/{sha[:2]}/{sha}.csv"
    assert Path(landed.path).read_bytes() == source.read_bytes()
    assert landed.original_name == "Eksport.CSV"
    assert not list(Path(landed.path).parent.glob(".landing-*"))  # no temporary left
    again, new_again = _land_file(home, source)
    assert (new_again, again) == (False, landed)


def test_a_file_and_the_same_bytes_from_an_api_are_one_landing(home, tmp_path) -> None:
    data = b"a;b\n1;2\n"
    (tmp_path / "drop.csv").write_bytes(data)
    first, _ = _land(home, data, "page.csv")
    second, new = _land_file(home, tmp_path / "drop.csv")
    assert not new and second.sha256 == first.sha256
    assert len(manifest(home.manifest_uri)) == 1


def test_a_copy_that_does_not_match_its_hash_leaves_nothing(home, tmp_path) -> None:
    source = _small(tmp_path)
    target = home.landing_uri + "/sick_leave/00/" + "0" * 64 + ".csv"
    with pytest.raises(storage.SourceChanged, match="changed while it was being landed"):
        storage.copy_once(source, target, sha256="0" * 64, size=source.stat().st_size)
    assert not Path(target).exists()
    assert not list(Path(target).parent.iterdir())


def test_hashes_are_cached_until_the_file_is_written_to(home, tmp_path, monkeypatch) -> None:
    hashed = []
    sha256_file = storage.sha256_file
    monkeypatch.setattr(storage, "sha256_file", lambda p: hashed.append(p) or sha256_file(p))
    source = _small(tmp_path)
    cache = HashCache(home.hash_cache("sick_leave"))
    first = cache.sha256(source)
    assert cache.sha256(source) == first
    cache.save()
    assert HashCache(home.hash_cache("sick_leave")).sha256(source) == first  # kept on disk
    assert hashed == [source]
    assert home.hash_cache("sick_leave").is_relative_to(home.root / "cache")

    # Same size, and the old modification time put back: the change time still differs.
    stat = source.stat()
    source.write_bytes(source.read_bytes().replace(b"1", b"2"))
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert source.stat().st_size == stat.st_size
    changed = HashCache(home.hash_cache("sick_leave")).sha256(source)
    assert changed[0] == hashlib.sha256(source.read_bytes()).hexdigest() != first[0]
    assert len(hashed) == 2


def test_a_stale_cache_entry_is_healed_by_landing(home, tmp_path) -> None:
    source = _small(tmp_path)
    cache = HashCache(home.hash_cache("sick_leave"))
    cache.sha256(source)
    cache.save()
    # A cache that lies about the file (corrupted, or written by a broken tool).
    entries = json.loads(home.hash_cache("sick_leave").read_text())
    [entry] = entries.values()
    entry[-1] = "f" * 64
    home.hash_cache("sick_leave").write_text(json.dumps(entries))

    cache = HashCache(home.hash_cache("sick_leave"))
    landed, new = _land_file(home, source, cache)
    assert new and landed.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    stored = [p for p in (Path(home.landing_uri) / "sick_leave").rglob("*") if p.is_file()]
    assert stored == [Path(landed.path)]  # nothing under the lie's name
    assert cache.sha256(source)[0] == landed.sha256


def test_a_local_lake_is_parsed_from_the_landed_file_itself(home, tmp_path) -> None:
    landed, _ = _land_file(home, _small(tmp_path))
    with local_copy(landed, home) as path:
        assert path == Path(landed.path)
    assert path.exists()  # nothing to clean up: it is the landing itself


def _small(folder: Path) -> Path:
    path = folder / "small.csv"
    if not path.exists():
        path.write_bytes(b"a;b\n1;1\n")
    return path
