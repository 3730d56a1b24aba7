"""Unpacking zip and gzip deliveries before the inner reader runs, without trusting the archive.

`type` stays the format of the file inside; the container is an extra option:

    format:
      type: csv
      container: zip            # zip | gzip | auto (by magic bytes; plain files pass through)
      member: "udtraek/*.csv"   # zip only: a glob (case-insensitive); exactly one file must match
      max_uncompressed_bytes: 2147483648   # the default, 2 GiB
      max_compression_ratio: 200           # the default
      max_members: 1000                    # the default

`member` is matched against the last segments of each path, `*` never crossing a `/`: `*.csv`
is a .csv file in any folder, `udtraek/*.csv` one in a folder named udtraek. Operating-system
clutter is never a candidate: `__MACOSX/` and AppleDouble `._*` files (zips made by macOS
Finder), `.DS_Store`, `Thumbs.db` and `desktop.ini`. The chosen file must not itself be an
archive (zip, gzip, tar) unless the reader takes one (an Excel workbook is a zip): nested
archives are not unpacked.

Everything that can be checked from the archive's directory is checked before a byte is
decompressed: the member count (from the end record, before Python builds its member
list), absolute paths and `..` in any member name, symlinks and other special files (Unix
mode in the external attributes), encryption, compression methods other than stored and
deflate (bzip2 and lzma cannot be decompressed with a bounded output per step), and the
chosen member's declared size and ratio. Decompression then runs in 1 MiB steps, checking
after each the size against the header and the limit, and the ratio of output so far to
compressed input consumed so far: a member whose header lies stops within a few MiB instead
of filling memory. The ratio limit applies once the
output passes 1 MiB: tiny files of blanks compress far better than 200:1 and are harmless.
Only the limits apply to the chosen member; the safety checks apply to every member, since
an archive that holds a traversal or a link is not a delivery to trust.

gzip has no directory to check first (its trailer's size is modulo 2**32 and unreliable in
a damaged file), so the stream (all concatenated members) is decompressed against the same
budget with the ratio taken over the compressed bytes consumed so far: a bomb stops within
a few MiB of output.

The inner file's name for messages is `archive.zip!inner.csv` (`data.csv.gz!data.csv`).

`unpack` returns the inner file's bytes; `unpacked` writes them, as they are decompressed, to
a temporary file (for the readers that read a big file in pieces) and deletes it afterwards.
Only the chosen member is ever written, under a name of our own, never the archive's path.
"""

from __future__ import annotations

import fnmatch
import io
import stat
import struct
import tempfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from connectors.formats.errors import FormatError
from connectors.formats.options import optional_str, positive_number

OPTIONS = {
    "container",
    "member",
    "max_uncompressed_bytes",
    "max_compression_ratio",
    "max_members",
}
KINDS = ("zip", "gzip", "auto")
DEFAULT_MAX_BYTES = 2 * 1024**3
DEFAULT_MAX_RATIO = 200
DEFAULT_MAX_MEMBERS = 1000
RATIO_FLOOR = 1 << 20  # the ratio limit starts to apply above this many output bytes
_CHUNK = 1 << 20  # decompressed bytes per step
_INPUT_CHUNK = 1 << 16
_HEAD = 512  # first bytes kept: enough for the tar signature at offset 257
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_GZIP_MAGIC = b"\x1f\x8b"
_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_SAFE_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_METHOD_NAMES = {12: "bzip2", 14: "lzma", 9: "deflate64", 93: "zstd", 99: "AES"}
_LISTED = 20
# Files operating systems put into archives beside the export; never the file meant.
_CLUTTER = {".ds_store", "thumbs.db", "desktop.ini"}
_TAR_MAGIC = b"ustar"  # at offset 257 of a tar file
# What zipfile raises on archives it cannot make sense of, beyond BadZipFile.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    OSError,
    ValueError,
    struct.error,
    NotImplementedError,
    OverflowError,
    IndexError,
    KeyError,
    RuntimeError,
    zlib.error,
)


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_ratio: float
    max_members: int


@dataclass(frozen=True)
class Inner:
    data: bytes
    source_name: str
    options: dict[str, Any]  # the options without the container's


@dataclass(frozen=True)
class InnerFile:
    path: Path
    source_name: str
    options: dict[str, Any]  # the options without the container's


def uses_container(options: Mapping[str, Any]) -> bool:
    return any(key in options for key in OPTIONS)


_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls (Excel 97-2003) and other OLE2 files
_TEXT_TYPES = {"csv", "json", "ndjson", "xml", "fixed_width"}


def refuse_packed_text(head: bytes, kind: str, source_name: str) -> None:
    """Refuse a gzip, zip or workbook file given to a text reader without `container:`: read
    as text, it was refused as "neither UTF-8 nor a Nordic code page", with a hint to set
    `encoding:`, which cannot help."""
    if kind not in _TEXT_TYPES:
        return
    if head.startswith(_GZIP_MAGIC):
        cause, hint = (
            "gzip-compressed",
            "Set `container: gzip` (or `auto`) under `format:` in the dataset YAML",
        )
    elif head.startswith(_ZIP_MAGIC):
        cause, hint = (
            "a zip archive (or an .xlsx/.ods workbook, which is one)",
            "If it holds the export, set `container: zip` (or `auto`, and `member:` to name"
            " the file inside) under `format:` in the dataset YAML; if it is a workbook, ask"
            " for the agreed text export",
        )
    elif head.startswith(_OLE2_MAGIC):
        cause, hint = ("an Excel 97-2003 workbook (.xls)", "Ask for the agreed text export")
    else:
        return
    raise FormatError(source_name, f"the file is {cause}, not {kind} text", hint)


def inner_options(options: Mapping[str, Any], source_name: str) -> dict[str, Any]:
    """The options for the reader of the file inside, once the container's are valid."""
    return _Settings.parse(options, source_name).inner_options


def unpack(data: bytes, options: Mapping[str, Any], *, inner_type: str, source_name: str) -> Inner:
    """The file inside `data` per the container options, and the options for its reader."""
    settings = _Settings.parse(options, source_name)
    kind = settings.kind_of(data[:_HEAD], inner_type, lambda: _is_office_package(data))
    if kind is None:
        return Inner(data, source_name, settings.inner_options)
    sink = _Sink()
    name = _extract(kind, data, settings, source_name, sink)
    inner_name = _inner_name(source_name, name, kind, sink, inner_type)
    return Inner(b"".join(sink.parts), inner_name, settings.inner_options)


@contextmanager
def unpacked(
    path: Path, options: Mapping[str, Any], *, inner_type: str, source_name: str, folder: Path
) -> Iterator[InnerFile]:
    """`unpack` for a file on disk, the inner file written to a temporary file in `folder`
    (deleted on exit) instead of held in memory, so a reader that reads in pieces stays
    bounded by a piece. The archive itself is read whole: it is the compressed size. A plain
    file under `container: auto` is used where it is."""
    settings = _Settings.parse(options, source_name)
    with path.open("rb") as handle:
        head = handle.read(_HEAD)
    kind = settings.kind_of(head, inner_type, lambda: _is_office_package(path.read_bytes()))
    if kind is None:
        yield InnerFile(path, source_name, settings.inner_options)
        return
    data = path.read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix="unpacked-") as scratch:
        target = Path(scratch) / "inner"
        with target.open("wb") as out:
            sink = _Sink(out)
            name = _extract(kind, data, settings, source_name, sink)
        del data
        yield InnerFile(
            target, _inner_name(source_name, name, kind, sink, inner_type), settings.inner_options
        )


@dataclass(frozen=True)
class _Settings:
    kind: str | None  # None: no container
    member: str | None
    limits: Limits
    inner_options: dict[str, Any]  # the options without the container's

    @classmethod
    def parse(cls, options: Mapping[str, Any], source_name: str) -> _Settings:
        kind = options.get("container")
        inner_options = {k: v for k, v in options.items() if k not in OPTIONS}
        set_keys = ", ".join(f"`{k}`" for k in sorted(OPTIONS) if options.get(k) is not None)
        if kind is None and not set_keys:  # `container: null` is no container
            return cls(None, None, Limits(0, 0, 0), inner_options)
        if kind not in KINDS:
            raise FormatError(
                source_name,
                f"{set_keys} set but no `container`"
                if kind is None
                else f"`container` must be one of {', '.join(KINDS)}, got {kind!r}",
                "Set `container:` in the dataset YAML, or remove the container options",
            )
        member = optional_str(options, "member", source_name=source_name)
        limits = Limits(
            max_bytes=int(
                positive_number(
                    options, "max_uncompressed_bytes", DEFAULT_MAX_BYTES, source_name=source_name
                )
            ),
            max_ratio=positive_number(
                options,
                "max_compression_ratio",
                DEFAULT_MAX_RATIO,
                source_name=source_name,
                whole=False,
            ),
            max_members=int(
                positive_number(
                    options, "max_members", DEFAULT_MAX_MEMBERS, source_name=source_name
                )
            ),
        )
        return cls(kind, member, limits, inner_options)

    def kind_of(
        self, head: bytes, inner_type: str, is_office_package: Callable[[], bool]
    ) -> str | None:
        """zip or gzip, or None for a file to read as it is (`auto` on a plain file)."""
        kind = self.kind
        if kind == "auto":
            if head.startswith(_GZIP_MAGIC):
                kind = "gzip"
            elif head.startswith(_ZIP_MAGIC) and not (
                self.member is None and inner_type == "excel" and is_office_package()
            ):
                kind = "zip"
            else:
                return None
        return kind


class _Sink:
    """Where decompressed bytes go (a list in memory, or a file), with their CRC-32, size
    and first bytes (to tell a nested archive) kept as they pass."""

    def __init__(self, file: BinaryIO | None = None) -> None:
        self.file = file
        self.parts: list[bytes] = []
        self.head = b""
        self.size = 0
        self.crc = 0

    def write(self, chunk: bytes) -> None:
        if len(self.head) < _HEAD:
            self.head += chunk[: _HEAD - len(self.head)]
        self.size += len(chunk)
        self.crc = zlib.crc32(chunk, self.crc)
        if self.file is None:
            self.parts.append(chunk)
        else:
            self.file.write(chunk)


def _extract(kind: str, data: bytes, settings: _Settings, source_name: str, sink: _Sink) -> str:
    """Decompress the chosen file into `sink`; its name inside the archive."""
    if not data:
        # A transfer or export that wrote nothing: "not a zip" would send the sender looking
        # for a wrong format when the file simply has no bytes.
        raise FormatError(
            source_name,
            f"the {kind} file is empty (0 bytes)",
            "The export or transfer wrote nothing: ask the sender for the delivery again",
        )
    if kind == "gzip":
        if settings.member is not None:
            raise _gzip_member_error(source_name)
        _gunzip(data, settings.limits, source_name, sink)
        return _gunzipped_name(source_name)
    return _unzip(data, settings.member, settings.limits, source_name, sink)


def _gzip_member_error(source_name: str) -> FormatError:
    return FormatError(
        source_name,
        "`member` is set but the file is gzip, which holds one file",
        "Remove `member` from the dataset YAML",
    )


def _inner_name(source_name: str, name: str, kind: str, sink: _Sink, inner_type: str) -> str:
    inner_name = f"{source_name}!{name}"
    nested = _archive_kind(sink.head)
    if nested is not None and inner_type != "excel":  # .xlsx and .ods are zip files
        raise FormatError(
            inner_name,
            f"the file in the {kind} archive is itself a {nested} archive; archives inside"
            " archives are not unpacked",
            "Ask the supplier to send the inner file itself, or one zip or gzip holding it",
        )
    return inner_name


def _archive_kind(content: bytes) -> str | None:
    if content.startswith(_ZIP_MAGIC):
        return "zip"
    if content.startswith(_GZIP_MAGIC):
        return "gzip"
    if content[257:262] == _TAR_MAGIC:
        return "tar"
    return None


def _is_office_package(data: bytes) -> bool:
    # .xlsx/.xlsm and .ods are zip files themselves: with `container: auto` and no `member`,
    # a workbook is the file to read, not an archive holding it.
    declared = _declared_member_count(data)
    if declared is None or declared > DEFAULT_MAX_MEMBERS:
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except _ZIP_ERRORS:
        return False
    return "[Content_Types].xml" in names or "mimetype" in names


# -- zip ----------------------------------------------------------------------------------------


def _declared_member_count(data: bytes) -> int | None:
    """The entry count the end-of-central-directory record states, or None if not found."""
    at = data.rfind(_EOCD, max(0, len(data) - (22 + 0xFFFF)))
    if at < 0 or at + 22 > len(data):
        return None
    count = struct.unpack_from("<H", data, at + 10)[0]
    if count != 0xFFFF:
        return count
    locator = at - 20
    if locator < 0 or data[locator : locator + 4] != _EOCD64_LOCATOR:
        return None
    offset = struct.unpack_from("<Q", data, locator + 8)[0]
    if offset + 56 > len(data) or data[offset : offset + 4] != _EOCD64:
        return None
    return struct.unpack_from("<Q", data, offset + 32)[0]


def _unzip(data: bytes, member: str | None, limits: Limits, source_name: str, sink: _Sink) -> str:
    def fail(cause: str, hint: str) -> FormatError:
        return FormatError(source_name, cause, hint)

    declared = _declared_member_count(data)
    if declared is not None and declared > limits.max_members:
        raise fail(
            f"the zip archive has {declared} members, more than `max_members`"
            f" ({limits.max_members})",
            "Ask for an archive with just the export, or raise `max_members` in the dataset"
            " YAML if this is expected",
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except _ZIP_ERRORS as err:
        raise fail(
            f"not a readable zip archive ({_first_line(err)})",
            "Check that the delivery is a complete .zip file (not renamed, not cut off)",
        ) from err
    if len(infos) > limits.max_members:
        raise fail(
            f"the zip archive has {len(infos)} members, more than `max_members`"
            f" ({limits.max_members})",
            "Ask for an archive with just the export, or raise `max_members` in the dataset YAML",
        )
    for info in infos:
        info.filename = _member_name(info)  # for matching `member` and for messages
        _check_member(info, fail)

    files = [i for i in infos if not i.is_dir() and not _is_clutter(i.filename)]
    listed = ", ".join(f"'{i.filename}'" for i in files[:_LISTED]) + (
        f" and {len(files) - _LISTED} more" if len(files) > _LISTED else ""
    )
    if not files and any(not i.is_dir() for i in infos):
        listed = "only operating-system files (such as __MACOSX/ or .DS_Store)"
    if all(i.is_dir() for i in infos):
        # A valid zip with nothing (or folders only) in it: the `member` hint below would
        # have nothing to match.
        raise fail(
            "the zip archive is empty (it holds no files"
            + (", only folders" if infos else "")
            + "). The export or transfer put nothing in it",
            "Ask the sender for the delivery again",
        )
    chosen = files if member is None else _chosen(files, member)
    if len(chosen) != 1:
        if member is None:
            what = f"{len(chosen)} files are in the archive and no `member` is set"
            if not chosen:
                what = "no file is in the archive"
        else:
            found = "no file matches" if not chosen else f"{len(chosen)} files match"
            what = f"{found} `member` {member!r}"
        raise fail(
            f"{what}; the archive holds {listed or 'no files'}",
            "Set `member` in the dataset YAML to a glob matching exactly one of them"
            " (e.g. `*.csv` or `udtraek/borgere_*.csv`)",
        )
    info = chosen[0]
    _check_declared(info, limits, fail)
    _inflate_member(data, info, limits, fail, sink)
    return info.filename


def _member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its sender reads it.

    zipfile reads a name without the UTF-8 flag as cp437, the zip standard's code page, but
    Windows' own zip writes the machine's OEM code page (cp850 in Denmark and Norway, whose
    ø is cp437's ¢) and Info-ZIP and macOS write UTF-8 without setting the flag: such a name
    is UTF-8 if it decodes as UTF-8 (cp850 names practically never do), else cp850. macOS
    decomposes å into a and a ring, flag or not: NFC, as YAML keys and headers are. ASCII
    bytes read the same in all three, so the path checks see the same `/`, `\\` and `..`."""
    name = info.filename
    if name.isascii():
        return name
    if not info.flag_bits & 0x800:
        raw = name.encode("cp437")  # zipfile's own decoding, undone
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            name = raw.decode("cp850")
    return unicodedata.normalize("NFC", name)


def _is_clutter(name: str) -> bool:
    parts = name.split("/")
    return "__MACOSX" in parts or parts[-1].startswith("._") or parts[-1].lower() in _CLUTTER


def _chosen(files: list[zipfile.ZipInfo], member: str) -> list[zipfile.ZipInfo]:
    """The files `member` names: by their very name if one has it (`data[1].csv` is a
    glob class otherwise, matching `data1.csv` but not itself), else by the glob."""
    named = [i for i in files if _matches(i.filename, member, literal=True)]
    return named or [i for i in files if _matches(i.filename, member)]


def _matches(name: str, member: str, *, literal: bool = False) -> bool:
    """`member` against the last segments of `name`, case-insensitive, `*` within a segment
    (or, `literal`, each segment equal)."""
    pattern = member.lower().split("/")
    parts = name.lower().split("/")
    return len(parts) >= len(pattern) and all(
        part == step if literal else fnmatch.fnmatchcase(part, step)
        for part, step in zip(parts[-len(pattern) :], pattern, strict=True)
    )


def _check_member(info: zipfile.ZipInfo, fail: Any) -> None:
    name = info.filename
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise fail(
            f"the zip archive has a member with an absolute path, '{name}'",
            "Refused for safety; ask for an archive with relative paths only",
        )
    if ".." in parts:
        raise fail(
            f"the zip archive has a member whose path leaves the archive, '{name}'",
            "Refused for safety (path traversal); ask for an archive without `..` in paths",
        )
    mode = info.external_attr >> 16
    if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        what = "a symbolic link" if stat.S_ISLNK(mode) else "a special file (not a regular file)"
        raise fail(
            f"the zip archive member '{name}' is {what}",
            "Refused for safety; ask for an archive of plain files",
        )
    if info.flag_bits & 0x1:
        raise fail(
            f"the zip archive member '{name}' is encrypted",
            "Ask for the archive without a password (deliver it over a secure channel instead)",
        )


def _check_declared(info: zipfile.ZipInfo, limits: Limits, fail: Any) -> None:
    if info.compress_type not in _SAFE_METHODS:
        method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise fail(
            f"'{info.filename}' is compressed with {method}, which is not read",
            "Ask for the archive with standard (deflate) compression",
        )
    if info.file_size > limits.max_bytes:
        raise fail(
            f"'{info.filename}' is {info.file_size} bytes uncompressed, more than"
            f" `max_uncompressed_bytes` ({limits.max_bytes})",
            "Ask for a smaller extract, or raise `max_uncompressed_bytes` in the dataset YAML",
        )
    if info.file_size > RATIO_FLOOR and info.file_size > limits.max_ratio * max(
        info.compress_size, 1
    ):
        raise fail(
            f"'{info.filename}' would expand {info.file_size / max(info.compress_size, 1):.0f}"
            f" times ({info.compress_size} to {info.file_size} bytes), more than"
            f" `max_compression_ratio` ({limits.max_ratio:g}); this looks like a zip bomb",
            "Ask for the delivery again, or raise `max_compression_ratio` in the dataset YAML"
            " if the file really is this repetitive",
        )


def _inflate_member(
    data: bytes, info: zipfile.ZipInfo, limits: Limits, fail: Any, sink: _Sink
) -> None:
    """The member's bytes, inflated here rather than by zipfile: its readers give no way to
    watch the ratio while decompressing, and for a lying header that is what matters."""
    name = info.filename
    damaged = "The archive is damaged or forged: ask for the delivery again"
    at = info.header_offset
    if data[at : at + 4] != b"PK\x03\x04" or at + 30 > len(data):
        raise fail(f"the local header of '{name}' is missing", damaged)
    name_length, extra_length = struct.unpack_from("<HH", data, at + 26)
    local_name = data[at + 30 : at + 30 + name_length]
    # Replaced, not refused: a byte that is no UTF-8 under the flag is a different name.
    codec = "utf-8" if info.flag_bits & 0x800 else "cp437"
    if local_name.decode(codec, errors="replace") != info.orig_filename:
        raise fail(f"the local header of '{name}' names another file", damaged)
    start = at + 30 + name_length + extra_length
    if start + info.compress_size > len(data):
        raise fail(f"'{name}' is cut off: the archive ends inside it", damaged)
    payload = memoryview(data)[start : start + info.compress_size]

    if info.compress_type == zipfile.ZIP_STORED:
        for offset in range(0, len(payload), _CHUNK):
            sink.write(bytes(payload[offset : offset + _CHUNK]))
    else:
        position = 0
        decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            while not decompressor.eof:
                if decompressor.unconsumed_tail:
                    block: Any = decompressor.unconsumed_tail
                elif position < len(payload):
                    block = payload[position : position + _INPUT_CHUNK]
                    position += len(block)
                else:
                    raise fail(f"'{name}' ends before its compressed data does", damaged)
                chunk = decompressor.decompress(block, _CHUNK)
                consumed = position - len(decompressor.unconsumed_tail)
                _check_running(sink.size + len(chunk), info.file_size, consumed, limits, name, fail)
                sink.write(chunk)
        except zlib.error as err:
            raise fail(f"cannot decompress '{name}' ({err})", damaged) from err
    if sink.size != info.file_size:
        raise fail(
            f"'{name}' holds {sink.size} bytes but its header says {info.file_size}", damaged
        )
    if sink.crc != info.CRC:
        raise fail(f"'{name}' fails its CRC-32 check", damaged)


def _check_running(
    total: int, budget: int, compressed: int, limits: Limits, name: str, fail: Any
) -> None:
    if total > limits.max_bytes:
        raise fail(
            f"'{name}' decompresses to more than `max_uncompressed_bytes` ({limits.max_bytes})",
            "Ask for a smaller extract, or raise `max_uncompressed_bytes` in the dataset YAML",
        )
    if total > budget:
        raise fail(
            f"'{name}' decompresses to more than the {budget} bytes its header says",
            "The archive is damaged or forged: ask for the delivery again",
        )
    if total > RATIO_FLOOR and total > limits.max_ratio * max(compressed, 1):
        raise fail(
            f"'{name}' expands more than `max_compression_ratio` ({limits.max_ratio:g}) times"
            f" ({total} bytes from the first {compressed} compressed bytes); this looks like a"
            " compression bomb",
            "Ask for the delivery again, or raise `max_compression_ratio` in the dataset YAML"
            " if the file really is this repetitive",
        )


# -- gzip ---------------------------------------------------------------------------------------


def _gunzip(data: bytes, limits: Limits, source_name: str, sink: _Sink) -> None:
    def fail(cause: str, hint: str) -> FormatError:
        return FormatError(source_name, cause, hint)

    if not data.startswith(_GZIP_MAGIC):
        raise fail(
            "not a gzip file (it does not start with the gzip signature)",
            "Check the delivery, or set `container:` to what it really is (zip, auto)",
        )
    name = _gunzipped_name(source_name)
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    view = memoryview(data)
    position = 0  # the next byte to feed
    try:
        while True:
            if decompressor.eof:
                start = position - len(decompressor.unused_data)
                if start >= len(data):
                    break
                if data[start : start + 2] != _GZIP_MAGIC:
                    if not data[start:].strip(b"\x00"):
                        break  # zero padding after the last member, as gzip(1) allows
                    raise fail(
                        "there is data after the end of the gzip stream",
                        "The file is damaged or not only gzip: ask for the delivery again",
                    )
                # Another member: `cat a.gz b.gz` is a valid gzip file.
                decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                position = start
                continue
            if decompressor.unconsumed_tail:
                block: Any = decompressor.unconsumed_tail
            elif position < len(view):
                block = view[position : position + _INPUT_CHUNK]
                position += len(block)
            else:
                break
            chunk = decompressor.decompress(block, _CHUNK)
            # The ratio so far, not over the whole file: a bomb is stopped within a few MiB
            # instead of at `max_compression_ratio` times the file's size.
            consumed = position - len(decompressor.unconsumed_tail)
            _check_running(sink.size + len(chunk), limits.max_bytes, consumed, limits, name, fail)
            sink.write(chunk)
    except zlib.error as err:
        raise fail(
            f"cannot decompress the gzip file ({err})",
            "The file is damaged: ask for the delivery again",
        ) from err
    if not decompressor.eof:
        raise fail(
            "the gzip file ends before its compressed data does (cut off)",
            "Ask for the delivery again; the transfer was probably incomplete",
        )


def _gunzipped_name(source_name: str) -> str:
    return source_name.removesuffix(".gz").removesuffix(".gzip").rsplit("/", 1)[-1]


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
