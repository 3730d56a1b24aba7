"""Bytes to text: a declared encoding, a BOM, UTF-8, or a Nordic single-byte code page.

Municipal exports are UTF-8 (often with a BOM), UTF-16 from Excel's "Unicode text", or
cp1252/latin-1 from older fagsystemer. Detection is deliberately narrow: charset-normalizer
may only choose between cp1252, latin-1 and cp865, because a wider search turns Danish
latin-1 into cp1250 (Central European) and silently changes æøå.
"""

from __future__ import annotations

import codecs
import functools
import re
from dataclasses import dataclass

from charset_normalizer import from_bytes

from connectors.formats.errors import FormatError

NORDIC_CODE_PAGES = ["cp1252", "latin_1", "cp865"]

# Longest BOM first: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


_UTF16_SAMPLE = 4096  # bytes looked at for the NUL pattern of UTF-16 without a BOM
_SET_ENCODING = "Set `encoding:` in the dataset YAML (e.g. utf-8, cp1252, latin-1, cp865, utf-16)"


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # the Python codec actually used, for logs and lineage


def decode(data: bytes, declared: str | None, *, source_name: str, offset: int = 0) -> Decoded:
    """Decode strictly; an explicit `declared` encoding always wins over detection.

    `offset` is where `data` starts in its file (a piece of a large one), so messages give
    the file's own byte offsets; their line numbers stay relative to `data`."""
    if declared:
        return Decoded(_decode_declared(data, declared, source_name, offset), declared)

    for bom, codec in _BOMS:
        if data.startswith(bom):
            return Decoded(_strict(data, codec, source_name, offset, how="has a BOM for"), codec)

    _refuse_utf16_without_bom(data, source_name)
    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as err:
        utf8_error = err

    _refuse_broken_utf8(data, utf8_error, source_name, offset)

    best = from_bytes(data, cp_isolation=NORDIC_CODE_PAGES).best()
    if best is None:
        raise FormatError(
            source_name,
            "cannot tell the text encoding: the bytes are neither UTF-8 nor a Nordic code page"
            " (is this really a text file?)",
            _SET_ENCODING,
        )
    codec = codecs.lookup(best.encoding).name
    return Decoded(_strict(data, codec, source_name, offset, how="was detected as"), codec)


def _decode_declared(data: bytes, declared: str, source_name: str, offset: int) -> str:
    try:
        codec = codecs.lookup(declared).name
    except LookupError:
        raise FormatError(
            source_name,
            f"unknown encoding `{declared}`",
            "Use a Python codec name in `encoding:` (e.g. utf-8, cp1252, latin-1, cp865)",
        ) from None
    # A declared utf-8 file may still start with a BOM; it is not part of the first header.
    if codec == "utf-8" and data.startswith(codecs.BOM_UTF8):
        codec = "utf-8-sig"
    return _strict(data, codec, source_name, offset, how="is declared as")


def _strict(data: bytes, codec: str, source_name: str, offset: int, *, how: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as err:
        raise FormatError(
            source_name,
            f"the file {how} {codec} but byte 0x{data[err.start]:02x} at offset"
            f" {offset + err.start} is not valid {codec}",
            _SET_ENCODING,
            line=_line_of(data, err.start, codec),
        ) from err


def _refuse_utf16_without_bom(data: bytes, source_name: str) -> None:
    # UTF-16 text without a BOM is mostly ASCII with a NUL before or after every character,
    # which is valid UTF-8: read as such, its fields are one long NUL-riddled column.
    sample = data[:_UTF16_SAMPLE]
    if len(sample) < 4:
        return
    even, odd = sample[0::2], sample[1::2]
    for nuls, others, codec in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if nuls.count(0) >= 0.9 * len(nuls) and others.count(0) <= 0.1 * len(others):
            raise FormatError(
                source_name,
                f"the file looks like {codec.upper()} without a byte-order mark (a NUL byte"
                " beside every character)",
                f"Set `encoding: {codec}` in the dataset YAML",
            )


def _refuse_broken_utf8(
    data: bytes, err: UnicodeDecodeError, source_name: str, offset: int
) -> None:
    # A UTF-8 export with a few stray bytes (files glued together from two systems) would
    # otherwise be "detected" as cp1252 and every æøå would silently become mojibake (Ã¦).
    text = data.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd")
    valid = len(text) - len(text.encode("ascii", errors="ignore")) - invalid
    if valid and valid >= invalid:
        raise FormatError(
            source_name,
            f"the file is mostly UTF-8 ({valid} valid non-ASCII characters) but byte"
            f" 0x{data[err.start]:02x} at offset {offset + err.start} is not valid UTF-8"
            " (mixed encodings?)",
            "Fix the export, or if the whole file really is a single-byte code page, "
            + _SET_ENCODING[0].lower()
            + _SET_ENCODING[1:],
            line=_line_of(data, err.start, "utf-8"),
        )


def _line_of(data: bytes, offset: int, codec: str) -> int:
    return data[:offset].decode(codec, errors="replace").count("\n") + 1


def refuse_utf8_as_single_byte(data: bytes, encoding: str, *, source_name: str) -> None:
    """Refuse a declared single-byte code page for a file that is valid multi-byte UTF-8.

    UTF-8 read as cp1252 does not fail, it turns each æøå into two characters (ø as Ã¸).
    Nordic single-byte text is practically never valid UTF-8, so this is a wrong YAML."""
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        return  # decode() says what is wrong with the name
    if codec.startswith("utf") or data.isascii():
        return
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return
    raise FormatError(
        source_name,
        f"`encoding` is {encoding} but the file is UTF-8 (its æøå would become two"
        " characters each, e.g. ø as Ã¸)",
        "Set `encoding: utf-8` in the dataset YAML",
    )


@functools.cache
def _c1_bytes(codec: str) -> bytes:
    """The bytes `codec` decodes to C1 control characters U+0080-U+009F: all of 0x80-0x9f in
    latin-1 (and the other ISO 8859 parts), none in cp1252 or cp865."""
    return bytes(
        byte
        for byte in range(0x80, 0xA0)
        if "\x80" <= bytes([byte]).decode(codec, errors="replace")[:1] <= "\x9f"
    )


def refuse_c1_controls(data: bytes, encoding: str, *, source_name: str) -> None:
    """Refuse a declared code page that turns bytes of `data` into C1 control characters.

    latin-1 maps every byte to a character, so a cp865 file (ø is 0x9b) or a cp1252 file
    (€ is 0x80) read as latin-1 never fails: its æøå€ become invisible controls, which no
    real export contains."""
    try:
        controls = _c1_bytes(codecs.lookup(encoding).name)
    except LookupError:
        return  # decode() says what is wrong with the name
    # translate() deletes in one C pass (a regex search is four times slower).
    if not controls or len(data.translate(None, controls)) == len(data):
        return
    found = re.search(b"[" + re.escape(controls) + b"]", data)
    if found is None:  # cannot happen: translate() just deleted some
        return
    byte = data[found.start()]
    raise FormatError(
        source_name,
        f"byte 0x{byte:02x} at offset {found.start()} becomes the control character"
        f" U+{ord(bytes([byte]).decode(encoding)):04X} in {encoding}, which real text never"
        f" holds: {encoding} is probably the wrong code page",
        "Set `encoding:` in the dataset YAML to the file's real code page: cp865 (older"
        " Nordic DOS/IBM systems) or cp1252 (Windows)",
        line=data.count(b"\n", 0, found.start()) + 1,
    )
