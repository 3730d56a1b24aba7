"""Bytes to text: a declared encoding, a BOM, UTF-8, or a Nordic single-byte code page.

Municipal exports are UTF-8 (often with a BOM), UTF-16 from Excel's "Unicode text", or
cp1252/latin-1 from older fagsystemer, cp865 from Norwegian and Danish DOS-era systems.
Detection is deliberately narrow: it only chooses between cp1252, latin-1 and cp865
(`likeliest_code_page`), because a wider search turns Danish latin-1 into cp1250 (Central
European) and silently changes æøå.
"""

from __future__ import annotations

import codecs
import functools
import re
from dataclasses import dataclass

import numpy as np

from connectors.formats.errors import FormatError

# Python's own names (codecs.lookup), in order of preference when they read text alike.
NORDIC_CODE_PAGES = ["cp1252", "iso8859-1", "cp865"]

# Longest BOM first: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def newlines_are_multi_byte(head: bytes, declared: str | None) -> bool:
    """Whether text starting with `head` is UTF-16/32 (by its BOM or the declared encoding),
    whose newline is several bytes: such a file cannot be cut into pieces at b"\\n"."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)):
        return True  # UTF-32-LE's BOM starts with UTF-16-LE's
    try:
        return bool(declared) and codecs.lookup(declared).name.startswith(("utf-16", "utf-32"))
    except LookupError:
        return False  # decode() names the unknown encoding


def without_signature(codec: str) -> str:
    """The codec for the bytes after the start of a file: `UTF-8-SIG` is `utf-8` there (a
    BOM only stands at the start; further on it is text)."""
    try:
        name = codecs.lookup(codec).name
    except LookupError:
        return codec  # decode() names the unknown encoding
    return name.removesuffix("-sig")


def cuts_after_ascii(codec: str | None) -> bool:
    """Whether text in `codec` can be cut after any ASCII byte and the pieces decoded on
    their own: true of UTF-8 and single-byte code pages, whose ASCII bytes are always
    characters of their own; not of UTF-7, ISO-2022, Shift-JIS or GB18030, where ASCII
    bytes take part in longer sequences or shift states. Detection only picks the former."""
    if codec is None:
        return True
    try:
        name = codecs.lookup(codec).name
    except LookupError:
        return True  # decode() names the unknown encoding
    if name in ("utf-8", "utf-8-sig"):
        return True
    if name.startswith("iso2022"):  # escape sequences shift state; every byte decodes alone
        return False
    every_byte = bytes(range(256)).decode(name, errors="replace")
    return len(every_byte) == 256 and every_byte[:128] == bytes(range(128)).decode("ascii")


def refuse_undecodable(
    body: bytes,
    encoding: str,
    what: str,
    bytes_before: int,
    lines_before: int,
    source_name: str,
) -> None:
    """After a later piece of a big file failed: if its bytes are not valid in the encoding
    chosen for the whole file (`what` says how it was chosen), say so with the file's own
    offset and line (only the error path decodes)."""
    try:
        body.decode(encoding)
    except UnicodeDecodeError as err:
        raise FormatError(
            source_name,
            f"byte 0x{body[err.start]:02x} at offset {bytes_before + err.start} is not valid"
            f" {encoding}, {what} (a file this large is read in pieces)",
            "Set `encoding:` in the dataset YAML to the file's real encoding (e.g. utf-8,"
            " cp1252, latin-1, cp865)",
            line=lines_before + body.count(b"\n", 0, err.start) + 1,
        ) from err


class PieceDecoder:
    """Decodes a big file a piece at a time, each piece cut at a character boundary.

    A declared encoding is used throughout. An undeclared one is detected from the first
    piece that is not pure ASCII (ASCII reads alike in every candidate) and kept for the
    rest; a later byte it cannot decode is reported as such, with the file's own offset and
    line. A byte-order mark is a signature only at the start of the file."""

    def __init__(self, declared: str | None, *, source_name: str) -> None:
        self.codec = declared
        self.settled = declared is not None
        self.source_name = source_name
        self.detected: str | None = None  # how an undeclared encoding was found
        self.bytes = 0  # bytes decoded so far
        self.lines = 0  # newlines in them (one byte each in the encodings cut into pieces)

    def decode(self, piece: bytes) -> str:
        if not self.settled and piece.isascii():
            if not self.bytes:
                # NUL bytes are ASCII: UTF-16 text of ASCII letters only would be read as
                # NUL-riddled ASCII and refused as broken JSON instead of as UTF-16.
                _refuse_utf16_without_bom(piece, self.source_name)
            text = piece.decode("ascii")
        else:
            try:
                decoded = decode(piece, self.codec, source_name=self.source_name, offset=self.bytes)
            except FormatError as error:
                if self.detected and self.codec:
                    refuse_undecodable(
                        piece, self.codec, self.detected, self.bytes, self.lines, self.source_name
                    )
                raise error.moved_down(self.lines) from error
            if not self.settled:
                self.detected = f"the encoding detected from the bytes from offset {self.bytes} on"
                self.settled = True
            self.codec = without_signature(decoded.encoding)
            text = decoded.text
        self.bytes += len(piece)
        self.lines += piece.count(b"\n")
        return text


# DOS's end-of-file mark (^Z): DOS-era editors and exports put it after a text file's last
# line, some several (the last block padded with it). It ends the text; it is none of it.
DOS_END_OF_FILE = "\x1a"


def without_end_of_file_mark(text: str) -> str:
    """The text at the end of a file without DOS's end-of-file marks after it. Read as text,
    a mark is a last line of its own: a fixed-width extract refused it as a control
    character, a CSV file as a row of one field, JSON and XML as junk after the document.
    Elsewhere in a file ^Z is left alone."""
    return text.rstrip(DOS_END_OF_FILE)


BYTE_ORDER_MARK = "\ufeff"


def without_byte_order_marks(text: str) -> str:
    """`text` without the byte-order marks inside it. One further on than the start of a
    file is where two exports were joined into one (`cat januar.csv februar.csv`); it is no
    character of the record it starts, which it would otherwise shift by one position (a
    fixed-width record no longer had its record type and was left out) or make a different
    value (a key `\\ufeff2` that looks like `2`). U+FEFF is deprecated as anything else."""
    return text.replace(BYTE_ORDER_MARK, "") if BYTE_ORDER_MARK in text else text


_UTF16_SAMPLE = 4096  # bytes looked at for the NUL pattern of UTF-16 without a BOM
_SET_ENCODING = "Set `encoding:` in the dataset YAML (e.g. utf-8, cp1252, latin-1, cp865, utf-16)"


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # the Python codec actually used, for logs and lineage


def decode(data: bytes, declared: str | None, *, source_name: str, offset: int = 0) -> Decoded:
    """Decode strictly; an explicit `declared` encoding always wins over detection, unless
    it would load mojibake (`refuse_utf8_as_single_byte`, `refuse_unlikely_characters`).

    `offset` is where `data` starts in its file (a piece of a large one), so messages give
    the file's own byte offsets; their line numbers stay relative to `data`. Only at the
    start of a file (`offset` 0) is a byte-order mark a signature; further on it is text."""
    if declared:
        if offset == 0:
            refuse_contrary_byte_order_mark(data, declared, source_name=source_name)
        # A wrong single-byte code page never fails to decode: it loads mojibake instead.
        refuse_utf8_as_single_byte(data, declared, source_name=source_name)
        refuse_unlikely_characters(data, declared, source_name=source_name)
        return Decoded(_decode_declared(data, declared, source_name, offset), declared)

    for bom, codec in _BOMS if offset == 0 else ():
        if data.startswith(bom):
            return Decoded(_strict(data, codec, source_name, offset, how="has a BOM for"), codec)

    _refuse_utf16_without_bom(data, source_name)
    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as err:
        utf8_error = err

    _refuse_broken_utf8(data, utf8_error, source_name, offset)

    codec = likeliest_code_page(data)
    if codec is None and _looks_like_mac_roman(data):
        raise FormatError(
            source_name,
            "the text looks like Mac Roman, the code page of Excel for Mac's"
            ' "CSV (Macintosh)" export, which no Windows code page reads',
            "Set `encoding: mac_roman` in the dataset YAML, or ask the sender to save as"
            ' "CSV UTF-8"',
        )
    if codec is None:
        raise FormatError(
            source_name,
            "cannot tell the text encoding: the bytes are neither UTF-8 nor a Nordic code page"
            " (is this really a text file?)",
            _SET_ENCODING,
        )
    return Decoded(_strict(data, codec, source_name, offset, how="was detected as"), codec)


_NORDIC_LETTERS = frozenset("æøåÆØÅ")


def _looks_like_mac_roman(data: bytes) -> bool:
    """Whether the bytes no Nordic Windows code page reads are Mac Roman text: every byte
    above ASCII a letter there, some of them æ, ø or å. Binary bytes read as Mac Roman
    give symbols (†, ∑, ≈) as well, which this refuses."""
    high = {char for char in data.decode("mac_roman") if not char.isascii()}
    return bool(high & _NORDIC_LETTERS) and all(char.isalpha() for char in high)


# The UTF-16 BOMs and the declared codecs they contradict (UTF-32-LE's BOM starts with
# UTF-16-LE's, and says its own).
_UTF16_BOMS = (
    (codecs.BOM_UTF16_LE, "UTF-16 little-endian", "utf-16-be"),
    (codecs.BOM_UTF16_BE, "UTF-16 big-endian", "utf-16-le"),
)


def refuse_contrary_byte_order_mark(data: bytes, declared: str, *, source_name: str) -> None:
    """Refuse a declared encoding that a UTF-16 byte-order mark at the file's start
    contradicts: an 8-bit code page (every other byte is a NUL: refused as binary, or loaded
    as one garbled column), or UTF-16 of the other byte order (every character swapped: the
    header became CJK characters and the file loaded no rows)."""
    if data.startswith(codecs.BOM_UTF32_LE):
        return  # UTF-32, not UTF-16: the declared codec decides
    for bom, what, contrary in _UTF16_BOMS:
        if not data.startswith(bom):
            continue
        codec = codec_name(declared, source_name)
        if codec == contrary or not codec.startswith(("utf-16", "utf-32")):
            raise FormatError(
                source_name,
                f"the file starts with a {what} byte-order mark (bytes {bom.hex(' ')}) but"
                f" `encoding` is {declared}",
                "Remove `encoding:` from the dataset YAML (the mark says the encoding), or"
                " set `encoding: utf-16`",
            )


def likeliest_code_page(data: bytes) -> str | None:
    """The Nordic code page whose reading of `data`'s non-ASCII bytes looks most like Nordic
    text; None when even that reading makes many of them, with ASCII control bytes, characters
    no text holds (binary data).

    Each character a byte becomes counts by how often Nordic exports hold it: æøå most,
    letters of names (é, ü) and then ö, ä and Windows punctuation (–, “, €) some, other
    Latin letters a little; characters no export holds (C1 controls, box drawing, Greek and
    math signs) count against. So do an upper-case letter right after a lower-case one (cp865 reads
    Windows' ’ in "Don’t" as "DonÆt") and a dash or quote inside a word (cp1252 reads cp865's
    ö in "Göteborg" as "G”teborg"). The code pages' letters sit at different bytes (ø is
    0xf8 in cp1252 and latin-1, 0x9b in cp865), so the text's own letters decide; on a tie
    the earlier of NORDIC_CODE_PAGES wins. Right after a digit, a degree sign or a fraction
    (`20°C`, `1½`) counts more than æøå: cp1252 read cp865's ° as ø (`20øC`) and its ½ as «,
    and won unless other æøå outweighed them.

    General detectors (charset-normalizer, used here before) judge by how messy the reading
    looks: they took lowercase Norwegian cp865 for cp1252 (ø as ›) and refused short
    Danish files as not text at all.
    """
    array = np.frombuffer(data, dtype=np.uint8)
    where = np.flatnonzero(array >= 0x80)
    if not where.size:
        return NORDIC_CODE_PAGES[0]
    high = array[where]
    before = np.where(where > 0, array[np.maximum(where - 1, 0)], 0x20)
    after = np.where(where < array.size - 1, array[np.minimum(where + 1, array.size - 1)], 0x20)
    best: tuple[float, str, int] | None = None
    for codec in NORDIC_CODE_PAGES:
        tables = _character_tables(codec)
        if tables.undefined and len(data.translate(None, tables.undefined)) != len(data):
            continue  # bytes this code page does not have
        weight = tables.weight[high]
        after_digit = (before >= 0x30) & (before <= 0x39)
        out_of_place = (tables.upper[high] & tables.lower[before]) | (
            tables.not_in_words[high] & tables.letter[before] & tables.letter[after]
        )
        weight = np.where(after_digit & tables.after_numbers[high], _AFTER_A_DIGIT, weight)
        score = float(np.where(out_of_place, -1.0, weight).sum())
        if best is None or score > best[0]:
            best = (score, codec, int((weight < 0).sum()))
    # Binary data: even its likeliest reading has many characters no text holds.
    controls = len(data) - len(data.translate(None, _CONTROLS))
    if best is None or (best[2] + controls) * 10 > high.size + controls:
        return None
    return best[1]


# ASCII control bytes text does not hold (tab, line ends, form feed and DOS's end-of-file
# mark ^Z aside).
_CONTROLS = bytes(b for b in [*range(0x20), 0x7F] if b not in b"\t\n\r\x0c\x1a")
_NORDIC = frozenset("æøåÆØÅ")
_IN_NAMES = frozenset("éèüÉÜ")
# Swedish and German ö/ä weigh what punctuation does: cp865's ö is cp1252's ” (0x94).
_SOME = frozenset("öäÖÄ–—‘’‚“”„…•€§½«»")
_NOT_IN_WORDS = frozenset("–—‘‚“”„…•€§½«»")  # not ’: the apostrophe of "it’s"
_AFTER_NUMBERS = frozenset("°½¼¾")  # 20°C, 1½ kg
_NORDIC_WEIGHT = 3.0
_AFTER_A_DIGIT = 4.0  # more than an æøå: `20øC` is no word


def _weight(char: str) -> float:
    if char in _NORDIC:
        return _NORDIC_WEIGHT
    if char in _IN_NAMES:
        return 1.0
    if char in _SOME:
        return 0.5
    if _is_unlikely(char):
        return -3.0
    if char.isalpha():
        return 0.2 if "\u00c0" <= char <= "\u024f" else -1.0  # Latin, or Greek and the like
    return 0.0 if "\u00a0" <= char <= "\u00ff" else -1.0  # Latin-1 signs, or math and shapes


@dataclass(frozen=True)
class _CharacterTables:
    """What each byte is in one code page, indexed by the byte."""

    weight: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    letter: np.ndarray
    not_in_words: np.ndarray
    after_numbers: np.ndarray
    undefined: bytes


@functools.cache
def _character_tables(codec: str) -> _CharacterTables:
    chars = [bytes([b]).decode(codec, errors="replace") for b in range(256)]
    return _CharacterTables(
        weight=np.array([_weight(c) for c in chars]),
        upper=np.array([c.isupper() for c in chars]),
        lower=np.array([c.islower() for c in chars]),
        letter=np.array([c.isalpha() for c in chars]),
        not_in_words=np.array([c in _NOT_IN_WORDS for c in chars]),
        after_numbers=np.array([c in _AFTER_NUMBERS for c in chars]),
        undefined=bytes(b for b, c in enumerate(chars) if c == "\ufffd"),
    )


def codec_name(declared: str, source_name: str) -> str:
    """The codec a declared `encoding:` names, or a FormatError if there is none."""
    try:
        return codecs.lookup(declared).name
    except LookupError:
        raise FormatError(
            source_name,
            f"unknown encoding `{declared}`",
            "Use a Python codec name in `encoding:` (e.g. utf-8, cp1252, latin-1, cp865)",
        ) from None


def _decode_declared(data: bytes, declared: str, source_name: str, offset: int) -> str:
    codec = codec_name(declared, source_name)
    # A declared utf-8 file may still start with a BOM; it is not part of the first header.
    if codec == "utf-8" and offset == 0 and data.startswith(codecs.BOM_UTF8):
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
def _unlikely_bytes(codec: str) -> bytes:
    """The bytes `codec` decodes to characters no text export holds: C1 controls
    (U+0080-U+009F: 0x80-0x9f in latin-1 and the other ISO 8859 parts) and box drawing or
    block elements (U+2500-U+259F: 0xb0-0xdf in the DOS code pages cp437, cp850, cp865).
    None in cp1252."""
    return bytes(
        byte
        for byte in range(0x80, 0x100)
        if _is_unlikely(bytes([byte]).decode(codec, errors="replace")[:1])
    )


def _is_unlikely(char: str) -> bool:
    return "\x80" <= char <= "\x9f" or "\u2500" <= char <= "\u259f"


def refuse_unlikely_characters(data: bytes, encoding: str, *, source_name: str) -> None:
    """Refuse a declared code page that turns bytes of `data` into characters no text holds.

    A single-byte code page maps (nearly) every byte to a character, so a wrong one never
    fails: a cp865 file (ø is 0x9b) read as latin-1 gets invisible C1 controls, a latin-1
    file (Æ is 0xc6) read as cp865 gets box drawing (╞)."""
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        return  # decode() says what is wrong with the name
    if codec == "cp1252":
        _refuse_cp865_as_cp1252(data, encoding, source_name)
    unlikely = _unlikely_bytes(codec)
    # translate() deletes in one C pass (a regex search is four times slower).
    if not unlikely or len(data.translate(None, unlikely)) == len(data):
        return
    found = re.search(b"[" + re.escape(unlikely) + b"]", data)
    if found is None:  # cannot happen: translate() just deleted some
        return
    byte = data[found.start()]
    char = bytes([byte]).decode(encoding)
    shown = f"the control character U+{ord(char):04X}" if char < "\u0100" else f"{char!r}"
    # Where in its line, not where in `data`: callers reading a big file in pieces of whole
    # lines move the line down, and the place in the line stays right.
    in_line = found.start() - data.rfind(b"\n", 0, found.start())
    raise FormatError(
        source_name,
        f"byte 0x{byte:02x} (byte {in_line} of the line) becomes {shown} in {encoding},"
        f" which real text never holds: {encoding} is probably the wrong code page",
        "Set `encoding:` in the dataset YAML to the file's real code page: cp865 (older"
        " Nordic DOS/IBM systems), cp1252 (Windows) or latin-1",
        line=data.count(b"\n", 0, found.start()) + 1,
    )


# cp865's æ, ø, å, ä and é (0x91, 0x9b, 0x86, 0x84, 0x82) are cp1252's ‘ › † „ ‚: signs
# that never stand between two letters, where cp865 text has its letters ("S‘by", "Bj›rn",
# "H†kon"). A file with Å or Ø (0x8f, 0x9d: not in cp1252) fails to decode; one with only
# lower-case æøå loaded as mojibake. (ö, 0x94, is ”, which may close a quote after a word.)
_CP865_LETTERS_IN_CP1252 = b"\x82\x84\x86\x91\x9b"
_LETTER = rb"[A-Za-z\xc0-\xd6\xd8-\xf6\xf8-\xff]"  # cp1252's letters, not × and ÷
_SIGN_INSIDE_A_WORD = re.compile(_LETTER + b"[" + _CP865_LETTERS_IN_CP1252 + b"]" + _LETTER)


def _refuse_cp865_as_cp1252(data: bytes, encoding: str, source_name: str) -> None:
    """Refuse cp1252 for text whose letters are cp865's (an older Nordic DOS/IBM system)."""
    if not any(bytes([byte]) in data for byte in _CP865_LETTERS_IN_CP1252):
        return  # a memchr per byte (faster than translate()): none, as in most cp1252 files
    found = _SIGN_INSIDE_A_WORD.search(data)
    if found is None:
        return
    byte = data[found.start() + 1]
    word = data[found.start() : found.end()]
    in_line = found.start() + 1 - data.rfind(b"\n", 0, found.start() + 1)
    raise FormatError(
        source_name,
        f"byte 0x{byte:02x} (byte {in_line} of the line) becomes"
        f" {bytes([byte]).decode('cp1252')!r} inside a word in {encoding}"
        f" ({word.decode('cp1252')!r}; in cp865 it is {word.decode('cp865')!r}):"
        f" {encoding} is probably the wrong code page",
        "Set `encoding: cp865` in the dataset YAML if the file comes from an older Nordic"
        " DOS/IBM system, or ask the sender which code page it is",
        line=data.count(b"\n", 0, found.start()) + 1,
    )
