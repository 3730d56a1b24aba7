"""zip and gzip deliveries: choosing the member, the names in messages, limits and refusals."""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
import unicodedata
import zipfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import xlsxwriter
from polars.testing import assert_frame_equal

from connectors.formats import FormatError, iter_table, read_table
from tests.formats.builders import (
    MiB,
    assert_contract,
    gzip_bomb,
    stored,
    zip_archive,
    zip_bomb,
)

CSV = "cpr;navn\n0101901234;Søren Ærø\n0202851234;Åse\n".encode()
EXPECTED = [("0101901234", "Søren Ærø", 2), ("0202851234", "Åse", 3)]


def zipped(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def read(data: bytes, source_name: str = "levering.zip", **options: Any) -> pl.DataFrame:
    frame = read_table(data, {"type": "csv", **options}, source_name=source_name)
    assert_contract(frame)
    return frame


def read_error(data: bytes, source_name: str = "levering.zip", **options: Any) -> FormatError:
    with pytest.raises(FormatError) as caught:
        read(data, source_name, **options)
    assert "\n" not in str(caught.value)
    return caught.value


@pytest.mark.parametrize(
    ("encoding", "form"),
    [("cp850", "NFC"), ("utf-8", "NFC"), ("utf-8", "NFD")],  # Windows; Info-ZIP; macOS
)
def test_member_names_without_the_utf8_flag_read_as_their_writers_wrote_them(
    encoding: str, form: str
) -> None:
    # A name without the UTF-8 flag was read as cp437, the zip standard's code page, but
    # Windows' own zip writes the OEM code page (cp850 in Denmark and Norway) and Info-ZIP
    # and macOS write UTF-8 (macOS with å decomposed): "udtræk/Børn.csv" was named
    # "udtræk/B¢rn.csv" or "udtr├ªk/B├╕rn.csv" in messages, and `member:` matched nothing.
    name = unicodedata.normalize(form, "udtræk/Børn_æøå.csv")
    archive = zip_archive([stored(name, CSV, name_encoding=encoding)])
    assert not zipfile.ZipFile(io.BytesIO(archive)).infolist()[0].flag_bits & 0x800
    assert read(archive, container="zip", member="børn_æøå.csv").rows() == EXPECTED
    assert read(archive, container="zip", member="udtræk/*.csv").rows() == EXPECTED
    broken = zip_archive([stored(name, b"a;b\n1;2;3\n", name_encoding=encoding)])
    error = read_error(broken, container="zip")
    assert str(error).startswith("levering.zip!udtræk/Børn_æøå.csv, line 2: the row has 3")


@pytest.mark.parametrize(
    ("packed", "kind", "said", "hint"),
    [
        (gzip.compress(CSV), "csv", "gzip-compressed, not csv text", "`container: gzip`"),
        (zipped({"borgere.csv": CSV}), "csv", "a zip archive", "`container: zip`"),
        (zipped({"a.xml": b"<a/>"}), "xml", "not xml text", "`member:`"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), "fixed_width", ".xls", "text export"),
    ],
)
def test_a_packed_file_without_container_says_so(
    packed: bytes, kind: str, said: str, hint: str, tmp_path: Path
) -> None:
    # Read as text, it was "neither UTF-8 nor a Nordic code page", with a hint to set
    # `encoding:`, which cannot help.
    options: dict[str, Any] = {"type": kind}
    if kind == "fixed_width":
        options |= {"encoding": "cp865", "columns": [{"name": "a", "start": 1, "length": 2}]}
    path = tmp_path / "udtraek.csv"
    path.write_bytes(packed)
    for read in (
        lambda: read_table(packed, options, source_name="udtraek.csv"),
        lambda: list(iter_table(path, options, source_name="udtraek.csv")),
    ):
        with pytest.raises(FormatError) as caught:
            read()
        assert said in caught.value.cause and hint in caught.value.hint
        assert "encoding" not in str(caught.value)


def test_the_member_matching_the_glob_is_read_and_named_in_messages() -> None:
    archive = zipped({"LAES_MIG.txt": b"hej", "udtraek/Borgere_2026.CSV": CSV})
    assert read(archive, container="zip", member="udtraek/borgere_*.csv").rows() == EXPECTED
    assert read(archive, container="auto", member="*.csv").rows() == EXPECTED

    broken = zipped({"udtraek/borgere.csv": b"a;b\n1;2;3\n"})
    error = read_error(broken, container="zip")
    assert str(error).startswith("levering.zip!udtraek/borgere.csv, line 2: the row has 3")


def test_a_single_file_needs_no_member_but_several_do() -> None:
    assert read(zipped({"borgere.csv": CSV}), container="zip").rows() == EXPECTED
    error = read_error(zipped({"a.csv": CSV, "b.csv": CSV, "mappe/": b""}), container="zip")
    assert (
        "2 files are in the archive and no `member` is set; the archive holds 'a.csv', 'b.csv'"
        in (str(error))
    )


@pytest.mark.parametrize(
    ("member", "found"), [("*.xlsx", "no file matches"), ("*.csv", "2 files match")]
)
def test_the_glob_must_match_exactly_one_file(member: str, found: str) -> None:
    error = read_error(zipped({"a.csv": CSV, "b.csv": CSV}), container="zip", member=member)
    assert f"{found} `member` '{member}'; the archive holds 'a.csv', 'b.csv'" in str(error)


@pytest.mark.parametrize(
    ("member", "found"),
    [
        ("ud/*.csv", "ud/b.csv"),
        ("UD/B.CSV", "ud/b.csv"),
        ("b.csv", "ud/b.csv"),  # no `/`: the file name, in any folder
        ("*/*.csv", "ud/b.csv"),  # `*` stays inside one segment: a.csv has no folder
        ("a*", "a.csv"),
        ("ud*.csv", None),  # `*` does not cross the `/` of ud/b.csv
        ("*/a.csv", None),
    ],
)
def test_a_star_in_member_stays_within_one_path_segment(member: str, found: str | None) -> None:
    archive = zipped({"a.csv": b"fil\na\n", "ud/b.csv": b"fil\nud/b\n", "ud/c.txt": b"x"})
    if found is None:
        assert "no file matches" in str(read_error(archive, container="zip", member=member))
    else:
        assert read(archive, container="zip", member=member).rows() == [(found[:-4], 2)]


def test_macos_and_windows_clutter_is_never_the_member() -> None:
    apple_double = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "
    archive = zipped(
        {
            "data.csv": CSV,
            "__MACOSX/._data.csv": apple_double,
            "._data.csv": apple_double,
            "mappe/.DS_Store": b"\x00\x00\x00\x01Bud1",
            "Thumbs.db": b"\xd0\xcf\x11\xe0",
            "desktop.ini": b"[.ShellClassInfo]",
        }
    )
    assert read(archive, container="zip").rows() == EXPECTED
    assert read(archive, container="zip", member="*.csv").rows() == EXPECTED
    only_clutter = zipped({"__MACOSX/._data.csv": apple_double})
    assert "no file is in the archive; the archive holds only operating-system files" in str(
        read_error(only_clutter, container="zip")
    )


def test_stored_members_and_empty_archives() -> None:
    assert read(zipped({"a.csv": CSV}, zipfile.ZIP_STORED), container="zip").rows() == EXPECTED
    # No `member` hint for an archive with nothing to match (it said to set one).
    assert str(read_error(zipped({}), container="zip")) == (
        "levering.zip: the zip archive is empty (it holds no files). The export or transfer put"
        " nothing in it. Ask the sender for the delivery again"
    )
    assert "the zip archive is empty (it holds no files, only folders)" in str(
        read_error(zipped({"udtraek/": b""}), container="zip")
    )


def test_gzip_including_concatenated_members_and_auto_detection() -> None:
    data = gzip.compress(CSV[:30]) + gzip.compress(CSV[30:]) + bytes(8)  # zero padding is fine
    assert read(data, "borgere.csv.gz", container="gzip").rows() == EXPECTED
    assert read(data, "borgere.csv.gz", container="auto").rows() == EXPECTED
    assert read(CSV, "borgere.csv", container="auto").rows() == EXPECTED  # plain passes through
    error = read_error(gzip.compress(b"a;b\n1;2;3\n"), "borgere.csv.gz", container="gzip")
    assert str(error).startswith("borgere.csv.gz!borgere.csv, line 2:")


@pytest.mark.parametrize(
    ("data", "cause"),
    [
        (gzip.compress(CSV)[:-12], "the gzip file ends before its compressed data does"),
        (gzip.compress(CSV) + b"garbage", "there is data after the end of the gzip stream"),
        (b"\x1f\x8b\x08\x00" + bytes(20), "cannot decompress the gzip file"),
        (CSV, "not a gzip file"),
    ],
    ids=["truncated", "trailing-garbage", "corrupt", "not-gzip"],
)
def test_damaged_gzip(data: bytes, cause: str) -> None:
    assert cause in str(read_error(data, "a.csv.gz", container="gzip"))


def test_an_xlsx_is_not_mistaken_for_an_archive_by_auto(tmp_path: Any) -> None:
    path = tmp_path / "a.xlsx"
    with xlsxwriter.Workbook(path) as book:
        book.add_worksheet().write_row(0, 0, ["a", "b"])
        book.worksheets()[0].write_row(1, 0, ["1", "2"])
    data = path.read_bytes()
    frame = read_table(data, {"type": "excel", "container": "auto"}, source_name="a.xlsx")
    assert frame.rows() == [("1", "2", 2)]
    # Inside a zip, with `member`, it is found as the member.
    wrapped = zipped({"export/a.xlsx": data, "readme.txt": b"x"})
    options = {"type": "excel", "container": "auto", "member": "*.xlsx"}
    assert read_table(wrapped, options, source_name="l.zip").rows() == [("1", "2", 2)]


@pytest.mark.parametrize(
    ("name", "cause"),
    [
        ("../evil.csv", "has a member whose path leaves the archive, '../evil.csv'"),
        ("ok/../../evil.csv", "has a member whose path leaves the archive"),
        ("..\\evil.csv", "has a member whose path leaves the archive"),
        ("/etc/passwd", "has a member with an absolute path, '/etc/passwd'"),
        ("C:\\evil.csv", "has a member with an absolute path"),
        ("\\\\server\\share\\evil.csv", "has a member with an absolute path"),
    ],
)
def test_unsafe_member_names_are_refused_even_when_not_chosen(name: str, cause: str) -> None:
    archive = zipped({"borgere.csv": CSV, name: b"x"})
    error = read_error(archive, container="zip", member="borgere.csv")
    assert cause in str(error) and "Refused for safety" in str(error)


@pytest.mark.parametrize(
    ("mode", "what"),
    [
        (stat.S_IFLNK | 0o777, "is a symbolic link"),
        (stat.S_IFCHR | 0o644, "is a special file"),
        (stat.S_IFIFO | 0o644, "is a special file"),
    ],
)
def test_links_and_special_files_are_refused(mode: int, what: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("borgere.csv", CSV)
        info = zipfile.ZipInfo("link.csv")
        info.create_system = 3
        info.external_attr = mode << 16
        archive.writestr(info, "/etc/passwd")
    error = read_error(buffer.getvalue(), container="zip", member="borgere.csv")
    assert f"member 'link.csv' {what}" in str(error)


def test_regular_unix_and_dos_attributes_are_fine() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("borgere.csv")
        info.external_attr = (stat.S_IFREG | 0o644) << 16 | 0x20  # + DOS "archive" bit
        archive.writestr(info, CSV)
    assert read(buffer.getvalue(), container="zip").rows() == EXPECTED


def test_encrypted_and_unsupported_compression_are_refused() -> None:
    encrypted = zip_archive([stored("borgere.csv", CSV, flags=0x1)])
    assert "member 'borgere.csv' is encrypted" in str(read_error(encrypted, container="zip"))
    bzip2 = zipped({"borgere.csv": CSV}, zipfile.ZIP_BZIP2)
    assert "'borgere.csv' is compressed with bzip2, which is not read" in str(
        read_error(bzip2, container="zip")
    )


def test_limits_are_options() -> None:
    archive = zipped({f"f{i}.csv": CSV for i in range(5)})
    error = read_error(archive, container="zip", member="f1.csv", max_members=4)
    assert "the zip archive has 5 members, more than `max_members` (4)" in str(error)
    assert read(archive, container="zip", member="f1.csv", max_members=5).rows() == EXPECTED

    big = zipped({"a.csv": CSV + b"1;" + b"x" * 3 * MiB + b"\n"})
    error = read_error(big, container="zip", max_uncompressed_bytes=MiB)
    assert "more than `max_uncompressed_bytes` (1048576)" in str(error)
    error = read_error(big, container="zip", max_compression_ratio=10)
    assert "more than `max_compression_ratio` (10); this looks like a zip bomb" in str(error)
    error = read_error(
        gzip.compress(CSV + b"x" * 3 * MiB), "a.gz", container="gzip", max_compression_ratio=10.5
    )
    assert "expands more than `max_compression_ratio` (10.5) times" in str(error)
    error = read_error(
        gzip.compress(CSV * 40_000), "a.gz", container="gzip", max_uncompressed_bytes=MiB
    )
    assert "decompresses to more than `max_uncompressed_bytes` (1048576)" in str(error)


@pytest.mark.parametrize(
    ("options", "cause"),
    [
        ({"container": "rar"}, "`container` must be one of zip, gzip, auto, got 'rar'"),
        ({"member": "*.csv"}, "`member` set but no `container`"),
        ({"container": "gzip", "member": "*.csv"}, "`member` is set but the file is gzip"),
        ({"container": "zip", "max_members": 0}, "`max_members` must be a whole number > 0"),
        ({"container": "zip", "max_compression_ratio": "x"}, "must be a number > 0"),
        ({"container": "zip", "max_uncompressed_bytes": True}, "must be a whole number > 0"),
        ({"container": "zip", "member": 3}, "`member` must be text"),
    ],
)
def test_option_errors(options: dict[str, Any], cause: str) -> None:
    data = gzip.compress(CSV) if options.get("container") == "gzip" else zipped({"a.csv": CSV})
    assert cause in str(read_error(data, **options))


def test_container_null_is_no_container() -> None:
    assert read(CSV, "a.csv", container=None).rows() == EXPECTED


def test_the_inner_reader_still_checks_its_own_options() -> None:
    error = read_error(zipped({"a.csv": CSV}), container="zip", sheet=1)
    assert "levering.zip!a.csv: unknown `format:` option `sheet` for type csv" in str(error)


@pytest.mark.parametrize(
    "data",
    [b"PK\x03\x04" + bytes(40), b"PK\x05\x06" + bytes(18), b"not a zip"],
    ids=["local-header-only", "empty-end-record", "text"],
)
def test_unreadable_zips(data: bytes) -> None:
    error = read_error(data, container="zip")
    assert "not a readable zip archive" in str(error) or "zip archive is empty" in str(error)


@pytest.mark.parametrize(
    ("kind", "name"), [("zip", "levering.zip"), ("gzip", "borgere.csv.gz")], ids=["zip", "gzip"]
)
def test_an_empty_archive_file_is_named_as_empty(kind: str, name: str, tmp_path: Path) -> None:
    expected = (
        f"{name}: the {kind} file is empty (0 bytes). The export or transfer wrote nothing:"
        " ask the sender for the delivery again"
    )
    assert str(read_error(b"", name, container=kind)) == expected
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(FormatError) as caught:  # the streamed path unpacks to a file
        list(iter_table(path, {"type": "csv", "container": kind}, source_name=name))
    assert str(caught.value) == expected


def test_bombs_are_refused_before_decompressing() -> None:
    error = read_error(zip_bomb(1024), container="zip")
    assert "'udtraek.csv' is 1073741824 bytes uncompressed" not in str(error)  # ratio first
    assert "would expand 1029 times" in str(error) or "looks like a zip bomb" in str(error)
    error = read_error(gzip_bomb(1024), "a.csv.gz", container="auto")
    assert "this looks like a compression bomb" in str(error)


def test_a_member_whose_header_lies_about_its_size_is_caught() -> None:
    # Zeros whose header says 1000 bytes, or 150 MiB for 1 GiB (a ratio under the limit):
    # decompression stops at the header's size, or as soon as the ratio so far is too high.
    lying = zip_bomb(64, declared_size=1000)
    assert "'udtraek.csv' decompresses to more than the 1000 bytes its header says" in str(
        read_error(lying, container="zip")
    )
    lying = zip_bomb(1024, declared_size=150 * MiB)
    error = read_error(lying, container="zip")
    assert "'udtraek.csv' expands more than `max_compression_ratio` (200) times (2097152 bytes" in (
        str(error)
    )


def test_an_archive_inside_the_archive_is_named_not_decoded() -> None:
    inner = zipped({"data.csv": CSV})
    error = read_error(zipped({"inner.zip": inner}), source_name="nested.zip", container="zip")
    assert str(error).startswith(
        "nested.zip!inner.zip: the file in the zip archive is itself a zip archive; archives"
        " inside archives are not unpacked"
    )
    doubly = gzip.compress(gzip.compress(CSV))
    error = read_error(doubly, source_name="data.csv.gz.gz", container="auto")
    assert "the file in the gzip archive is itself a gzip archive" in str(error)
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        info = tarfile.TarInfo("data.csv")
        info.size = len(CSV)
        archive.addfile(info, io.BytesIO(CSV))
    error = read_error(gzip.compress(tar.getvalue()), source_name="data.tar.gz", container="gzip")
    assert "the file in the gzip archive is itself a tar archive" in str(error)


def _big_csv(rows: int) -> bytes:
    lines = [f"{i:010d};Søren {i}" for i in range(rows)]
    return ("cpr;navn\n" + "\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(
    ("name", "pack", "options"),
    [
        ("udtraek.csv.gz", gzip.compress, {"container": "gzip"}),
        ("udtraek.zip", lambda data: zipped({"udtraek.csv": data}), {"container": "auto"}),
        (
            "udtraek.zip",
            lambda data: zip_archive([stored("udtraek.csv", data)]),
            {"container": "zip"},
        ),
    ],
)
def test_a_big_member_is_read_in_pieces_from_scratch_and_equals_the_whole(
    name: str, pack: Any, options: dict[str, Any], tmp_path: Path
) -> None:
    path, scratch = tmp_path / name, tmp_path / "scratch"
    path.write_bytes(pack(_big_csv(20_000)))
    csv = {"type": "csv", **options}
    whole = read_table(path.read_bytes(), csv, source_name=name)
    pieces = iter_table(path, csv, source_name=name, chunk_bytes=64 * 1024, scratch=scratch)
    first = next(pieces)
    assert [p.name for p in scratch.iterdir()] and first.height < whole.height
    rest = list(pieces)
    assert len(rest) > 3
    assert_frame_equal(pl.concat([first, *rest]), whole)
    assert not list(scratch.iterdir())  # the unpacked copy is gone


def test_a_bad_line_in_a_later_piece_of_a_gzip_names_the_inner_files_line(
    tmp_path: Path,
) -> None:
    lines = _big_csv(20_000).splitlines(keepends=True)
    lines[15_000] = "0101901234;Søren;ekstra\n".encode()
    path, scratch = tmp_path / "udtraek.csv.gz", tmp_path / "scratch"
    path.write_bytes(gzip.compress(b"".join(lines)))
    options = {"type": "csv", "container": "auto"}
    pieces = iter_table(
        path, options, source_name=path.name, chunk_bytes=64 * 1024, scratch=scratch
    )
    with pytest.raises(FormatError) as caught:
        list(pieces)
    assert str(caught.value).startswith("udtraek.csv.gz!udtraek.csv, line 15001: the row has 3")
    assert not list(scratch.iterdir())


def test_a_bomb_read_from_disk_is_refused_and_leaves_no_scratch_file(tmp_path: Path) -> None:
    path, scratch = tmp_path / "a.csv.gz", tmp_path / "scratch"
    path.write_bytes(gzip_bomb(1024))
    options = {"type": "csv", "container": "auto"}
    with pytest.raises(FormatError, match="this looks like a compression bomb"):
        list(iter_table(path, options, source_name=path.name, scratch=scratch))
    assert not list(scratch.iterdir())


def test_a_plain_file_under_auto_is_read_in_place_in_pieces(tmp_path: Path) -> None:
    path, scratch = tmp_path / "udtraek.csv", tmp_path / "scratch"
    path.write_bytes(_big_csv(20_000))
    options = {"type": "csv", "container": "auto"}
    pieces = list(
        iter_table(path, options, source_name=path.name, chunk_bytes=64 * 1024, scratch=scratch)
    )
    assert len(pieces) > 3 and sum(p.height for p in pieces) == 20_000
    assert not scratch.exists()  # nothing was copied


def test_a_member_named_with_glob_characters_matches_its_own_name() -> None:
    # `[1]` is a glob class: the name matched nothing, and the message said the archive held
    # exactly that name.
    archive = zipped({"data[1].csv": CSV, "data1.csv": b"x;y\n1;2\n"})
    assert read(archive, container="zip", member="data[1].csv").rows() == EXPECTED


def test_a_local_header_name_that_is_not_utf8_under_the_utf8_flag_is_damage() -> None:
    # The central directory names `bøger.csv` (UTF-8 flag set); its local header's copy of
    # the name had a byte that is no UTF-8, and decoding it raised UnicodeDecodeError.
    data = bytearray(zipped({"bøger.csv": b"a;b\n1;2\n"}))
    data[data.index("bøger".encode()) + 1] = 0xFF  # the first copy: the local header's
    error = read_error(bytes(data), container="zip")
    assert "the local header of 'bøger.csv' names another file" in error.cause
