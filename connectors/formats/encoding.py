"""Bytes to text: a declared encoding, a BOM, UTF-8, or a Nordic single-byte code page.

Municipal exports are UTF-8 (often with a BOM), UTF-16 from Excel's "Unicode text", or
cp1252/latin-1 from older fagsystemer. Detection is deliberately narrow: charset-normalizer
may only choose between cp1252, latin-1 and cp865, because a wider search turns Danish
latin-1 into cp1250 (Central European) and silently changes æøå.
"""

from __future__ import annotations

import codecs
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


_SET_ENCODING = "Set `encoding:` in the dataset YAML (e.g. utf-8, cp1252, latin-1, cp865, utf-16)"


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # the Python codec actually used, for logs and lineage


def decode(data: bytes, declared: str | None, *, source_name: str) -> Decoded:
    """Decode strictly; an explicit `declared` encoding always wins over detection."""
    if declared:
        return Decoded(_decode_declared(data, declared, source_name), declared)

    for bom, codec in _BOMS:
        if data.startswith(bom):
            return Decoded(_strict(data, codec, source_name, how="has a BOM for"), codec)

    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as err:
        utf8_error = err

    _refuse_broken_utf8(data, utf8_error, source_name)

    best = from_bytes(data, cp_isolation=NORDIC_CODE_PAGES).best()
    if best is None:
        raise FormatError(
            source_name,
            "cannot tell the text encoding: the bytes are neither UTF-8 nor a Nordic code page"
            " (is this really a text file?)",
            _SET_ENCODING,
        )
    codec = codecs.lookup(best.encoding).name
    return Decoded(_strict(data, codec, source_name, how="was detected as"), codec)


def _decode_declared(data: bytes, declared: str, source_name: str) -> str:
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
    return _strict(data, codec, source_name, how="is declared as")


def _strict(data: bytes, codec: str, source_name: str, *, how: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as err:
        raise FormatError(
            source_name,
            f"the file {how} {codec} but byte 0x{data[err.start]:02x} at offset {err.start}"
            f" is not valid {codec}",
            _SET_ENCODING,
            line=_line_of(data, err.start, codec),
        ) from err


def _refuse_broken_utf8(data: bytes, err: UnicodeDecodeError, source_name: str) -> None:
    # A UTF-8 export with a few stray bytes (files glued together from two systems) would
    # otherwise be "detected" as cp1252 and every æøå would silently become mojibake (Ã¦).
    text = data.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd")
    valid = len(text) - len(text.encode("ascii", errors="ignore")) - invalid
    if valid and valid >= invalid:
        raise FormatError(
            source_name,
            f"the file is mostly UTF-8 ({valid} valid non-ASCII characters) but byte"
            f" 0x{data[err.start]:02x} at offset {err.start} is not valid UTF-8"
            " (mixed encodings?)",
            "Fix the export, or if the whole file really is a single-byte code page, "
            + _SET_ENCODING[0].lower()
            + _SET_ENCODING[1:],
            line=_line_of(data, err.start, "utf-8"),
        )


def _line_of(data: bytes, offset: int, codec: str) -> int:
    return data[:offset].decode(codec, errors="replace").count("\n") + 1
