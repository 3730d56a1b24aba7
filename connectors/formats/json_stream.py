"""A big JSON document's array of records, read as the file is read.

`json.loads` builds the whole document first: a 200 MB export became about 2.5 GB of Python
objects before a single row was typed. Here a small scanner walks the document down
`record_path` and each record is decoded on its own by the stdlib's C decoder
(`JSONDecoder.raw_decode`), so frames of about `chunk_bytes` of records come out while the
rest of the file is still unread. What follows the array is still scanned to the end, so a
document cut off after its records, or with text after it, is refused as `read_json`
refuses it, with the file's own line and column.

Differences from reading the document whole, all about documents no export should be: a
value beside the path (another key's array) is decoded whole to skip it; a key of the path
repeated in its object is refused (Python's parser would silently take the last one); and,
as for big CSV files, an undeclared encoding is decided by the first piece with a non-ASCII
byte, so a UTF-8 file whose first non-ASCII bytes are broken is read as a code page where
the whole file would have been refused as "mostly UTF-8".
"""

from __future__ import annotations

import json as stdlib_json
import re
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, BinaryIO

from connectors.formats.encoding import DOS_END_OF_FILE, PieceDecoder
from connectors.formats.errors import FormatError

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_END_OF_FILE_MARKS = re.compile(f"{DOS_END_OF_FILE}*")
_HIGH_BYTES = bytes(range(0x80, 0x100))


class NotJson(ValueError):
    """What Python's parser takes and JSON does not, or what would lose a value: NaN and
    Infinity, and a key twice in one object (the parser keeps the last value)."""


def _constant(name: str) -> Any:
    raise NotJson(f"`{name}` is not a JSON value: the exporter wrote a non-number as a number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise NotJson(f"the key {twice!r} appears twice in one object; only one value could load")
    return record


# Numbers with a fraction or an exponent are kept as Decimal: a float would change their
# digits (1e23 read as 99999999999999991611392, 12345678901234.567 as ...566).
DECODER = stdlib_json.JSONDecoder(
    parse_float=Decimal, parse_constant=_constant, object_pairs_hook=_object
)
# A parse error this close to the end of the text read so far may just be a value that goes
# on in the next piece (a cut `\uXXXX` escape is the longest such tail).
_TAIL = 8


@dataclass
class _Level:
    kind: str  # "{" or "["
    key: str | None  # the object key (or array index) walked into


class _Text:
    """The file's text from the first unconsumed character on, decoded a piece at a time.

    Pieces are cut after an ASCII byte, which is a character boundary in UTF-8 and in every
    single-byte code page, so a piece never ends inside a character (see PieceDecoder for
    how the encoding is found)."""

    def __init__(
        self,
        handle: BinaryIO,
        codec: str | None,
        *,
        source_name: str,
        chunk_bytes: int,
    ) -> None:
        self.handle = handle
        self.decoder = PieceDecoder(codec, source_name=source_name)
        self.source_name = source_name
        self.chunk_bytes = chunk_bytes
        self.text = ""
        self.pos = 0
        self.eof = False
        self._raw = b""  # bytes read but not yet decoded
        self._chars_dropped = 0  # characters before self.text
        self._lines_dropped = 0  # newlines in the text before self.text
        self._column_dropped = 0  # characters after the last dropped newline

    def more(self, at_least: int = 0) -> bool:
        """Drop the consumed text and append the next piece (of at least `at_least` bytes);
        False at the end of the file."""
        if self.pos:
            dropped = self.text[: self.pos]
            self._chars_dropped += len(dropped)
            newlines = dropped.count("\n")
            if newlines:
                self._lines_dropped += newlines
                self._column_dropped = len(dropped) - dropped.rfind("\n") - 1
            else:
                self._column_dropped += len(dropped)
            self.text, self.pos = self.text[self.pos :], 0
        while True:
            block = self.handle.read(max(self.chunk_bytes, at_least))
            if not block:
                if self.eof or not self._raw:
                    self.eof = True
                    return False
                piece, self._raw = self._raw, b""
                self.eof = True
            else:
                data = self._raw + block
                cut = len(data.rstrip(_HIGH_BYTES))
                if not cut:  # not one ASCII byte yet: read on
                    self._raw = data
                    continue
                piece, self._raw = data[:cut], data[cut:]
            self.text += self.decoder.decode(piece)
            return True

    @property
    def offset(self) -> int:
        """Characters consumed since the start of the file."""
        return self._chars_dropped + self.pos

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end of the file)."""
        while True:
            self.pos = _WHITESPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""

    def only_end_of_file_marks_left(self) -> bool:
        """Whether nothing but DOS end-of-file marks follows (they are none of the text, see
        encoding.without_end_of_file_mark)."""
        while True:
            self.pos = _END_OF_FILE_MARKS.match(self.text, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.text):
                return False
            if not self.more():
                return True

    def value(self) -> Any:
        """Decode the JSON value at the next non-whitespace character."""
        self.peek()
        while True:
            try:
                value, end = DECODER.raw_decode(self.text, self.pos)
            except stdlib_json.JSONDecodeError as err:
                cut_off = err.pos >= len(self.text) - _TAIL or err.msg.startswith("Unterminated")
                if cut_off and not self.eof:
                    # A value longer than a piece: read as much again, so a value of n
                    # bytes is decoded O(log n) times, not n / chunk_bytes times.
                    self.more(at_least=len(self.text) - self.pos)
                    continue  # the text moved: decode again, also at the end of the file
                raise self.error(f"not valid JSON: {err.msg}", err.pos) from err
            except RecursionError as err:
                raise too_deep(self.source_name, self.error("", self.pos).line) from err
            except NotJson as err:
                raise not_json(err, self.source_name, self.error("", self.pos).line) from err
            except ValueError as err:  # after JSONDecodeError, a ValueError itself
                raise too_many_digits(self.source_name, self.error("", self.pos).line) from err
            if _is_number(value) and end > len(self.text) - _TAIL and not self.eof:
                # A number near the end of the text may go on in the next piece: "17." or
                # "1e" decode as 17 and 1, stopping before the "." or "e".
                self.more()
                continue
            self.pos = end
            return value

    def expect(self, allowed: str) -> str:
        char = self.peek()
        if not char or char not in allowed:
            # Python's parser's words, so both ways of reading give the same message.
            wanted = "',' delimiter" if "," in allowed else "':' delimiter"
            raise self.error(f"not valid JSON: Expecting {wanted}", self.pos)
        self.pos += 1
        return char

    def error(self, cause: str, pos: int) -> FormatError:
        newline = self.text.rfind("\n", 0, pos)
        line = self._lines_dropped + self.text.count("\n", 0, pos) + 1
        column = pos - newline if newline >= 0 else self._column_dropped + pos + 1
        return FormatError(
            self.source_name,
            f"{cause} (column {column}){unseen(self.text, pos)}",
            "Check the export; a file with one JSON object per line is `type: ndjson`",
            line=line,
        )


def iter_records(
    handle: BinaryIO,
    record_path: str | None,
    codec: str | None,
    *,
    source_name: str,
    chunk_bytes: int,
) -> Iterator[list[dict[str, Any]]]:
    """Lists of the records at `record_path`, each list about `chunk_bytes` of text; at
    least one list (empty for an empty array)."""
    text = _Text(handle, codec, source_name=source_name, chunk_bytes=chunk_bytes)
    levels = _walk(text, record_path, source_name)
    records: list[dict[str, Any]] = []
    size, number, yielded = 0, 0, False
    text.pos += 1  # past the "[" where _walk stopped
    if text.peek() == "]":
        text.pos += 1
    else:
        while True:
            start = text.offset
            record = text.value()
            number += 1
            if not isinstance(record, dict):
                raise FormatError(
                    source_name,
                    f"record {number} at `record_path` {record_path or '(document)'!r} is"
                    f" {kind_of(record)}, not an object",
                    "Point `record_path` at the array of records",
                )
            records.append(record)
            size += text.offset - start
            if text.expect(",]") == "]":
                break
            if size >= chunk_bytes:
                yield records
                records, size, yielded = [], 0, True
    if records or not yielded:
        yield records
    _finish(text, levels, source_name)


def _walk(text: _Text, record_path: str | None, source_name: str) -> list[_Level]:
    """Move `text` to the value at `record_path`; the containers walked into."""
    levels: list[_Level] = []
    walked: list[str] = []
    for step in record_path.split(".") if record_path else []:
        walked.append(step)
        char = text.peek()
        if char == "{":
            text.pos += 1
            keys = _find_key(text, step)
            if keys is not None:
                listed = ", ".join(f"'{k}'" for k in keys)
                raise _not_found(record_path, walked, source_name, listed)
            levels.append(_Level("{", step))
        elif char == "[" and step.isascii() and step.isdigit():
            text.pos += 1
            if not _find_index(text, int(step)):
                raise _not_found(record_path, walked, source_name, "")
            levels.append(_Level("[", step))
        else:
            raise _not_found(record_path, walked, source_name, "")
    char = text.peek()
    if char != "[":
        if not char:
            raise text.error("not valid JSON: Expecting value", text.pos)
        # Only a scalar is decoded to name its kind: an object may be the whole file.
        kind = "an object" if char == "{" else kind_of(text.value())
        raise FormatError(
            source_name,
            f"`record_path` {record_path or '(empty)'!r} leads to {kind}, not an array of records",
            "Set `record_path` to the dot path of the array of records (e.g. `data.items`)",
        )
    return levels


def _find_key(text: _Text, wanted: str) -> list[str] | None:
    """Step into the open object's member `wanted`; None when found, else the keys seen."""
    keys: list[str] = []
    if text.peek() == "}":
        text.pos += 1
        return keys
    while True:
        key = _key(text)
        if key == wanted:
            return None
        keys.append(key)
        text.value()
        if text.expect(",}") == "}":
            return keys


def _find_index(text: _Text, wanted: int) -> bool:
    """Step into the open array's element `wanted`; False if the array is shorter."""
    if text.peek() == "]":
        text.pos += 1
        return False
    for _ in range(wanted):
        text.value()
        if text.expect(",]") == "]":
            return False
    return True


def _key(text: _Text) -> str:
    if text.peek() != '"':
        raise text.error(
            "not valid JSON: Expecting property name enclosed in double quotes", text.pos
        )
    key = text.value()
    text.expect(":")
    return key


def _finish(text: _Text, levels: list[_Level], source_name: str) -> None:
    """Scan the rest of the document: the containers around the array must close, and
    nothing may follow the document."""
    for level in reversed(levels):
        close = "}" if level.kind == "{" else "]"
        while text.expect("," + close) == ",":
            if level.kind == "{":
                text.peek()
                line = text.error("", text.pos).line  # before reading on moves the text
                if _key(text) == level.key:
                    raise FormatError(
                        source_name,
                        f"the key '{level.key}' of `record_path` appears twice in one object",
                        "Ask the supplier for a document where each key appears once",
                        line=line,
                    )
            text.value()
    after = text.peek()
    if after and not (after == DOS_END_OF_FILE and text.only_end_of_file_marks_left()):
        raise text.error("not valid JSON: Extra data", text.pos)


def _not_found(
    record_path: str | None, walked: list[str], source_name: str, keys: str
) -> FormatError:
    return FormatError(
        source_name,
        f"`record_path` {record_path!r} not found: no {'.'.join(walked)!r} in the document"
        + (f" (keys there: {keys})" if keys else ""),
        "Set `record_path` to the dot path of the array of records",
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


# Characters the parser stops at that an editor does not show: "Expecting value (column 1)"
# on a line that looks like `{"a": 2}` sent people looking for a mistake they could not see.
_NAMED = {
    "\ufeff": "a byte-order mark: two files joined into one leave one where the second began",
    "\x1e": "a record separator: JSON text sequences (RFC 7464) put one before each record",
}


def unseen(text: str, pos: int) -> str:
    """What the character at `pos` is, for an error there, when it cannot be seen; else ""."""
    char = text[pos : pos + 1]
    if not char or char in " \t\r\n" or unicodedata.category(char)[0] not in "CZ":
        return ""
    name = _NAMED.get(char) or unicodedata.name(char, "a control character").lower()
    return f"; there is an invisible U+{ord(char):04X} there ({name})"


def not_json(error: NotJson, source_name: str, line: int | None) -> FormatError:
    return FormatError(
        source_name,
        str(error),
        "Ask the supplier for valid JSON (numbers as numbers, NaN and Infinity as null or"
        " text, each key once per object)",
        line=line,
    )


def too_deep(source_name: str, line: int | None, record: int | None = None) -> FormatError:
    where = f" in record {record}" if record is not None else ""
    return FormatError(
        source_name,
        f"a value{where} is nested deeper than Python's JSON parser allows (about 1000 levels"
        " of objects and arrays)",
        "Ask the supplier for records without such deep nesting; no real export needs it",
        line=line,
    )


def too_many_digits(source_name: str, line: int | None) -> FormatError:
    # Python refuses to convert integers of more than sys.get_int_max_str_digits() digits
    # (4300 by default): the guard against quadratic-time conversion attacks.
    return FormatError(
        source_name,
        f"a number has more than {sys.get_int_max_str_digits()} digits, more than Python's"
        " JSON parser reads",
        "Ask the supplier to write such a value as a string; no count or amount has that many"
        " digits",
        line=line,
    )


def kind_of(value: Any) -> str:
    """A JSON value's kind as messages name it: "an object", "a string", "null"."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    return "null" if value is None else "a number"
