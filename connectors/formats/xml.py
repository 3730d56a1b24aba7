"""XML documents of repeating record elements to an all-text frame, streamed and defused.

`record_path` names the repeating element:

    Dataset/Record   a path of element names from the root (a leading `/` is allowed);
                     `*` matches any one name, e.g. `*/Record`
    Record           a bare name: every `Record` element at any depth (one inside another
                     `Record` is part of the outer record, not a record of its own)

Names are matched on their local part: namespaces and `prefix:` are ignored, so `ns:Record`,
`{urn:x}Record` and `Record` are the same step. Predicates (`[1]`, `@id`) are not supported.

Each record becomes one row:

    <Record id="7">              @id          = 7
      <Navn>Åse</Navn>           Navn         = Åse
      <Adresse type="bolig">     Adresse/@type = bolig
        <Vej>Østergade</Vej>     Adresse/Vej  = Østergade
      </Adresse>
    </Record>

Nested elements are flattened to `parent/child` column names (attributes as `@name`;
`xml:lang` and the other `xml:` attributes keep their prefix; XML Schema's `xsi:` attributes
are no columns, so `<Slutdato xsi:nil="true"/>` is a null `Slutdato`), so every column is a plain
text value the typing step can check. An element with child elements gets a column of its
own only when it also holds non-blank text, and then its whole text, its children's
included (`<note>Ring til <b>Hans</b></note>` is `note` = `Ring til Hans`); an element that
occurs twice in one record (two `Telefon`) cannot be one row's value and is an error that
says to point `record_path` at the repeating element instead. Text directly inside the
record element itself lands in a column named after the record element. Elements nested more
than MAX_DEPTH levels inside a record, and more than MAX_COLUMNS different fields, are
refused (frame.records_frame also refuses a table of mostly empty cells).

`_source_row` is the 1-based record number, which stays meaningful for XML written on one
line; errors also give the line the record starts on.

Safety: the parser is defusedxml's (expat underneath), with DTDs, entity declarations and
external references all refused, so XXE, billion-laughs and external-DTD fetches cannot
happen. The parser streams: the document is fed in chunks to a target that keeps only the
current record, so no tree is built and memory grows only with the rows returned.
"""

from __future__ import annotations

import codecs
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO
from xml.etree.ElementTree import ParseError

import polars as pl
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import XMLParser

from connectors.formats.encoding import (
    DOS_END_OF_FILE,
    decode,
    refuse_unlikely_characters,
    refuse_utf8_as_single_byte,
)
from connectors.formats.errors import FormatError
from connectors.formats.frame import (
    MAX_COLUMNS,
    MAX_VALUE_CHARS,
    FieldsSeen,
    records_frame,
    too_long_value,
    too_many_fields,
)
from connectors.formats.options import check_keys, optional_str

OPTIONS = {"record_path", "encoding"}
_CHUNK = 1 << 16
_HIGH_BYTES = bytes(range(0x80, 0x100))
_STEP = re.compile(r"^(?:\{[^}]*\}|[^\s/:{}\[\]@()]+:)?([^\s/:{}\[\]@()=]+)$")
_MAX_PATHS_REMEMBERED = 1000  # distinct element paths counted for the "not found" hint
_HINT_DEPTH = 4
# Each nested element's column name repeats its whole path, so names grow with the square of
# the depth (30,000 levels in a 210 KB file took 1.1 GB). Real records nest a few levels
# (GML geometry, the deepest common case, about ten); no export comes near this.
MAX_DEPTH = 64
# One start tag with its attributes, comment or processing instruction: expat holds it whole
# until it ends, and scans it at about 35 MB/s. Room for the longest value a record may have
# (frame.MAX_VALUE_CHARS) and the element's other attributes.
MAX_MARKUP_BYTES = 10 << 20
# The encoding named in the XML declaration, after an optional UTF-8 BOM.
_DECLARED_ENCODING = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*<\?xml\s[^>]*?\bencoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']"
)


def read_xml(data: bytes, options: Mapping[str, Any], *, source_name: str) -> pl.DataFrame:
    if marks := _end_of_file_marks(data[-_CHUNK:]):
        data = data[:-marks]
    view = memoryview(data)
    blocks = (view[offset : offset + _CHUNK] for offset in range(0, len(view), _CHUNK))
    [frame] = _frames(blocks, options, source_name, empty=not data or data.isspace())
    return frame


def iter_xml(
    path: Path, options: Mapping[str, Any], *, source_name: str, chunk_bytes: int
) -> Iterator[pl.DataFrame]:
    """`read_xml` for a file on disk in frames of the records of about `chunk_bytes` of XML
    each, parsed as the file is read: memory is bounded by a chunk, not by the file. A
    declared `encoding:` (decoded in Python before parsing) reads the file whole."""
    size = path.stat().st_size
    if size <= chunk_bytes * 3 // 2 or options.get("encoding") is not None:
        yield read_xml(path.read_bytes(), options, source_name=source_name)
        return
    with path.open("rb") as handle:
        handle.seek(max(0, size - _CHUNK))
        end = size - _end_of_file_marks(handle.read())
        handle.seek(0)
        yield from _frames(
            _blocks(handle, end), options, source_name, empty=False, chunk_bytes=chunk_bytes
        )


def _end_of_file_marks(tail: bytes) -> int:
    """How many of the bytes at a file's end are DOS end-of-file marks: they are none of the
    XML (see encoding.without_end_of_file_mark). In UTF-16/32 the last byte is never 0x1a
    after a well-formed document, so a mark there is an error either way."""
    return len(tail) - len(tail.rstrip(DOS_END_OF_FILE.encode("ascii")))


def _blocks(handle: BinaryIO, end: int) -> Iterator[bytes]:
    """The file's bytes up to `end`, a block at a time."""
    while (left := end - handle.tell()) > 0 and (block := handle.read(min(_CHUNK, left))):
        yield block


def check_options(options: Mapping[str, Any], source_name: str) -> str:
    """The `record_path` of valid options, or a FormatError saying what is wrong."""
    check_keys(options, OPTIONS, "xml", source_name=source_name)
    optional_str(options, "encoding", source_name=source_name)
    record_path = optional_str(options, "record_path", source_name=source_name)
    if record_path is None:
        raise FormatError(
            source_name,
            "`record_path` is required for type xml",
            "Set `record_path` to the repeating record element, e.g. `Dataset/Record`"
            " (a path from the root) or `Record` (that element at any depth)",
        )
    _parse_record_path(record_path, source_name)
    return record_path


def _frames(
    blocks: Iterable[bytes | memoryview],
    options: Mapping[str, Any],
    source_name: str,
    *,
    empty: bool,
    chunk_bytes: int | None = None,
) -> Iterator[pl.DataFrame]:
    record_path = check_options(options, source_name)
    steps, anywhere = _parse_record_path(record_path, source_name)
    encoding = optional_str(options, "encoding", source_name=source_name)
    declared_utf8 = False
    if encoding is not None:
        # Decode in Python (any codec, strict, with a line number on a bad byte), then let
        # expat read UTF-8 whatever the XML declaration claims.
        data = b"".join(blocks)
        data = decode(data, encoding, source_name=source_name).text.encode("utf-8")
        empty = not data or data.isspace()  # isspace() stops early; strip() would copy
        blocks = [data[offset : offset + _CHUNK] for offset in range(0, len(data), _CHUNK)]
    else:
        blocks, declared_utf8 = _as_declared(blocks, source_name)
    if empty:
        raise FormatError(source_name, "the file is empty", "Check the export that produced it")

    records = _Records(steps, anywhere, source_name)
    parser = XMLParser(
        target=records,
        encoding="utf-8" if encoding is not None or declared_utf8 else None,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    records.expat = parser.parser
    fed = 0
    try:
        for size in _fed(parser, blocks, source_name):
            fed += size
            if chunk_bytes and fed >= chunk_bytes and records.pending():
                yield records.take()
                fed = 0
        parser.close()
    except DTDForbidden as err:
        external = f" referring to the external DTD {err.sysid!r}" if err.sysid else ""
        raise FormatError(
            source_name,
            f"the XML has a <!DOCTYPE {err.name}> declaration{external}; DTDs are refused"
            " because they can read other files or expand entities without bound",
            "Ask the supplier for the XML without the <!DOCTYPE ...> declaration",
            line=records.line(),
        ) from err
    except EntitiesForbidden as err:
        raise FormatError(
            source_name,
            f"the XML declares the entity {err.name!r}; entity declarations are refused"
            " (entity expansion attacks)",
            "Ask the supplier for the XML without entity declarations",
            line=records.line(),
        ) from err
    except ExternalReferenceForbidden as err:
        raise FormatError(
            source_name,
            f"the XML refers to the external resource {err.sysid!r}, which is never fetched",
            "Ask the supplier for self-contained XML without external references",
            line=records.line(),
        ) from err
    except ParseError as err:
        line, column = getattr(err, "position", (None, None))
        message = str(err).split(":", 1)[0] or "syntax error"
        raise FormatError(
            source_name,
            f"not well-formed XML: {message} (column {column})",
            "Check that the file is complete, well-formed XML in the encoding its declaration"
            " names (UTF-8 where it names none); set `encoding:` in the dataset YAML if the"
            ' file is in another (Windows "ANSI" is cp1252 in the Nordic countries)',
            line=line,
        ) from err
    except (ValueError, LookupError) as err:  # pyexpat: "multi-byte encodings are not ..."
        raise FormatError(
            source_name,
            f"the XML parser cannot read the file: {err}",
            "Set `encoding:` in the dataset YAML (e.g. utf-8, cp1252, shift_jis) so the file"
            " is decoded before parsing",
            line=records.line(),
        ) from err
    if records.pending() or not records.taken:
        yield records.frame(record_path)
    records.fields_seen.finish()


def _fed(
    parser: XMLParser, blocks: Iterable[bytes | memoryview], source_name: str
) -> Iterator[int]:
    """Feed `blocks` to `parser`; the bytes fed each time.

    The expat under Python here (2.5) scans an unfinished token again from its start at
    every feed: a 60 MB attribute value fed in 64 KiB blocks took 100 s, a 100 MB comment
    over two minutes. Blocks wait until they add as many bytes as expat holds unfinished
    (what expat 2.6 calls reparse deferral), so each byte is scanned a few times at most,
    and markup longer than MAX_MARKUP_BYTES is refused."""
    expat = parser.parser
    waiting: list[bytes | memoryview] = []
    size = fed = 0
    for block in blocks:
        waiting.append(block)
        size += len(block)
        start = expat.CurrentByteIndex  # where the token expat has not finished starts
        held = fed - start if start >= 0 else 0
        if held > MAX_MARKUP_BYTES:
            raise FormatError(
                source_name,
                f"one piece of markup (a start tag with its attributes, a comment or a"
                f" processing instruction) is longer than {MAX_MARKUP_BYTES >> 20} MB",
                "Ask the supplier for the file without it: a document or image embedded in"
                " the export belongs in a file of its own",
                line=expat.CurrentLineNumber,
            )
        if size < held:
            continue
        parser.feed(b"".join(waiting) if len(waiting) > 1 else waiting[0])
        fed += size
        yield size
        waiting, size = [], 0
    if waiting:
        parser.feed(b"".join(waiting))
        yield size


def _as_declared(
    blocks: Iterable[bytes | memoryview], source_name: str
) -> tuple[Iterator[bytes | memoryview], bool]:
    """The blocks, once the XML declaration's encoding is known and is not a wrong one, and
    whether it names UTF-8.

    expat decodes by the declaration and never fails on a single-byte code page: UTF-8
    bytes under `encoding="ISO-8859-1"` loaded as mojibake (Søren as SÃ¸ren), and an
    encoding Python does not know (`encoding="ANSI"`, as Windows tools write) raised a
    LookupError out of the parser. expat knows UTF-8 only by that name: under
    `encoding="UTF8"`, as many tools write it, the first ø was "not well-formed", so the
    caller tells expat UTF-8 itself."""
    blocks = iter(blocks)
    first = next(blocks, None)
    if first is None:
        return iter(()), False
    found = _DECLARED_ENCODING.match(bytes(first[:_CHUNK]))
    name = found.group(1).decode() if found else None
    declared = _single_byte_codec(name, source_name) if name else None
    every = itertools.chain([first], blocks)
    if declared is None:
        return every, name is not None and codecs.lookup(name).name == "utf-8"
    return _checked(every, declared, source_name), False


def _checked(
    blocks: Iterator[bytes | memoryview], declared: str, source_name: str
) -> Iterator[bytes]:
    """The blocks, each checked not to be text in another encoding than `declared` (a
    single-byte code page)."""
    carried = b""  # the bytes after a block's last ASCII byte: maybe half a character
    for block in blocks:
        # Checked in blocks cut after an ASCII byte: a UTF-8 character cut in two by the
        # block boundary made both blocks invalid UTF-8, and the file loaded as mojibake.
        data = carried + bytes(block)
        whole = len(data.rstrip(_HIGH_BYTES))
        data, carried = data[:whole], data[whole:]
        _check_declared(data, declared, source_name)
        yield data
    if carried:  # the file ends in non-ASCII bytes
        _check_declared(carried, declared, source_name)
        yield carried


def _check_declared(data: bytes, declared: str, source_name: str) -> None:
    try:
        refuse_utf8_as_single_byte(data, declared, source_name=source_name)
        refuse_unlikely_characters(data, declared, source_name=source_name)
    except FormatError as error:  # its line is the block's; the cause is what counts
        raise FormatError(
            source_name,
            f'{error.cause} (the XML declaration says encoding="{declared}")',
            "Ask the supplier to declare the encoding the file is in, or set"
            " `encoding:` in the dataset YAML to read it as that",
        ) from error


def _single_byte_codec(name: str, source_name: str) -> str | None:
    """The declared encoding if it is a single-byte code page (the ones expat cannot catch
    out), None for UTF-8/16/32; an unknown name is refused."""
    try:
        codec = codecs.lookup(name).name
        b"x".decode(name, "replace")  # a bytes-to-bytes codec (hex, zlib) is no text encoding
    except LookupError:
        raise FormatError(
            source_name,
            f'the XML declaration names encoding="{name}", which is no known encoding',
            "Set `encoding:` in the dataset YAML to the file's real encoding (Windows"
            ' "ANSI" is cp1252 in the Nordic countries)',
            line=1,
        ) from None
    return None if codec.startswith("utf") else name


def _parse_record_path(record_path: str, source_name: str) -> tuple[list[str], bool]:
    text = record_path.strip()
    absolute = text.startswith("/")
    raw_steps = text.removeprefix("/").split("/")
    steps = []
    for raw in raw_steps:
        found = _STEP.match(raw.strip())
        if found is None:
            raise FormatError(
                source_name,
                f"`record_path` {record_path!r} is not a path of element names (step {raw!r})",
                "Write it as element names separated by `/`, e.g. `Dataset/Record`, or one"
                " name for that element at any depth; `*` matches any name",
            )
        steps.append(found.group(1))
    return steps, len(steps) == 1 and not absolute


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


_XML_NAMESPACE = "{http://www.w3.org/XML/1998/namespace}"
# XML Schema's instance attributes (`xsi:nil`, `xsi:type`, `xsi:schemaLocation`) tell a
# validator about the element; they are no data. `<Slutdato xsi:nil="true"/>` is how
# schema-valid exports (OIOXML) write a null, and as a `Slutdato/@nil` column it was a new
# column in every such file, which a `schema_drift: freeze` dataset rejected.
_XSI_NAMESPACE = "{http://www.w3.org/2001/XMLSchema-instance}"


def _attribute_name(name: str) -> str:
    """An attribute's column name: its local part, but `xml:lang`, `xml:id` and `xml:space`
    keep their fixed `xml:` prefix, so a record may also carry a `lang` of its own."""
    if name.startswith(_XML_NAMESPACE):
        return "xml:" + name.removeprefix(_XML_NAMESPACE)
    return _local(name)


def _shown_name(name: str) -> str:
    namespace, _, local = name.rpartition("}")
    return f"`{local}` (namespace {namespace.lstrip('{')})" if namespace else f"`{local}`"


class _Element:
    __slots__ = ("has_children", "has_own_text", "key", "size", "text")

    def __init__(self, key: str) -> None:
        self.key = key
        # Its whole text, its children's included in document order (XPath's string value),
        # so `<note>Ring til <b>Hans</b> kl. 9</note>` keeps the sentence whole in `note`.
        self.text: list[str] = []
        self.size = 0  # characters of text directly inside
        self.has_own_text = False  # non-blank text directly inside, not only in children
        self.has_children = False


class _Records:
    """An expat target that keeps only the record being read and the columns so far."""

    def __init__(self, steps: list[str], anywhere: bool, source_name: str) -> None:
        self.steps = steps
        self.anywhere = anywhere
        self.source_name = source_name
        self.expat: Any = None
        self.path: list[str] = []
        self.paths: Counter[str] = Counter()  # element paths seen, for the "not found" hint
        # No records is an empty export when the records' parent is there and holds nothing
        # else (`<Borgere/>`); anything else means `record_path` is wrong.
        self.parent_found = False
        self.parent_has_others = False
        # The current record: its element stack, its fields, where it starts.
        self.open: list[_Element] = []
        self.fields: dict[str, str | None] = {}
        # Element paths in this record, to refuse repeats, and each one's namespaced name.
        self.seen: dict[str, str] = {}
        self.record_line = 0
        # Columns, sparse: record indices and values per key, in first-seen order, for the
        # records finished since the last `take` (records before it went out as a frame).
        self.count = 0  # records started, for messages
        self.done = 0  # records finished
        self.taken = 0  # records already handed out by `take`
        self.indices: dict[str, list[int]] = {}
        self.values: dict[str, list[str | None]] = {}
        self.known: dict[str, None] = {}  # every field name so far, for MAX_COLUMNS
        self.fields_seen = FieldsSeen(source_name)  # names that become one column in two frames

    def line(self) -> int | None:
        return self.expat.CurrentLineNumber if self.expat is not None else None

    def _is_record(self) -> bool:
        if self.anywhere:
            return self.steps[0] in ("*", self.path[-1])
        return len(self.path) == len(self.steps) and all(
            s in ("*", p) for s, p in zip(self.steps, self.path, strict=True)
        )

    def _put(self, key: str, value: str | None) -> None:
        if key in self.fields:
            self._repeated(key)
        self.fields[key] = value

    def _repeated(self, key: str) -> None:
        raise FormatError(
            self.source_name,
            f"record {self.count} (from line {self.record_line}) has `{key}` more than"
            " once, and one row holds one value per column",
            "Point `record_path` at the repeating element to read it as rows of its own,"
            " or ask the supplier for one value per element",
            line=self.line(),
        )

    # -- the target interface (expat calls these) -------------------------------------------

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.path.append(_local(tag))
        if self.open:
            if len(self.open) > MAX_DEPTH:  # the record element itself is open[0]
                raise FormatError(
                    self.source_name,
                    f"record {self.count} (from line {self.record_line}) nests elements more"
                    f" than {MAX_DEPTH} levels deep",
                    "Check `record_path` (it should name the repeating record element), or ask"
                    " the supplier for records without such deep nesting",
                    line=self.line(),
                )
            parent = self.open[-1]
            parent.has_children = True
            key = f"{parent.key}/{self.path[-1]}" if parent.key else self.path[-1]
            if key in self.seen:
                if self.seen[key] != tag:
                    self._same_name_twice("element", self.seen[key], tag)
                self._repeated(key)
            self.seen[key] = tag
            self.open.append(_Element(key))
            self.fields[key] = None  # holds the column's place in document order until end()
            prefix = f"{key}/@"
        elif self._is_record():
            self.count += 1
            self.record_line = self.line() or 0
            self.fields = {}
            self.seen = {}
            self.open.append(_Element(""))
            prefix = "@"
        else:
            if len(self.path) <= _HINT_DEPTH and (
                len(self.paths) < _MAX_PATHS_REMEMBERED or "/".join(self.path) in self.paths
            ):
                self.paths["/".join(self.path)] += 1
            if not self.anywhere and len(self.path) in (len(self.steps) - 1, len(self.steps)):
                under_parent = all(
                    s in ("*", p) for s, p in zip(self.steps[:-1], self.path, strict=False)
                )
                if len(self.path) < len(self.steps):
                    self.parent_found = self.parent_found or under_parent
                else:
                    self.parent_has_others = self.parent_has_others or under_parent
            return
        names: dict[str, str] = {}
        for name, value in attrib.items():
            if name.startswith(_XSI_NAMESPACE):
                continue  # a nilled element is empty, so its value is null as it is
            column = _attribute_name(name)
            if column in names:
                self._same_name_twice("attribute", names[column], name)
            names[column] = name
            if len(value) > MAX_VALUE_CHARS:
                self._too_long(f"the attribute `{prefix + column}`")
            self._put(prefix + column, value)

    def data(self, text: str) -> None:
        if self.open:
            element = self.open[-1]
            element.size += len(text)
            if element.size > MAX_VALUE_CHARS:  # refused before it costs the frame's memory
                self._too_long(f"the text of `{element.key or self.path[-1]}`")
            element.text.append(text)
            element.has_own_text = element.has_own_text or not text.isspace()

    def end(self, tag: str) -> None:
        if self.open:
            element = self.open.pop()
            if self.open:
                text = "".join(element.text)
                if element.has_own_text or not element.has_children:
                    self.fields[element.key] = text
                else:
                    del self.fields[element.key]
                self.open[-1].text.append(text)
            else:
                if element.has_own_text:
                    self._put(self.path[-1], "".join(element.text))
                self._end_record()
        self.path.pop()

    def _too_long(self, what: str) -> None:
        raise too_long_value(
            what, self.count, self.source_name, line=self.line(), from_line=self.record_line
        )

    def _same_name_twice(self, kind: str, first: str, second: str) -> None:
        """Refuse two elements (`kind` "element") or two attributes of one element that
        differ only by namespace: both would be one column."""
        holder = "the elements" if kind == "element" else "an element with the attributes"
        raise FormatError(
            self.source_name,
            f"record {self.count} (from line {self.record_line}) has {holder}"
            f" {_shown_name(first)} and {_shown_name(second)}, which differ only by"
            " namespace, and columns are named without namespaces",
            f"Ask the supplier for one of the two {kind}s, or for distinct names",
            line=self.line(),
        )

    def close(self) -> None:
        return None

    # ----------------------------------------------------------------------------------------

    def _end_record(self) -> None:
        index = self.done - self.taken
        for key, value in self.fields.items():
            if key not in self.values:
                if key not in self.known and len(self.known) >= MAX_COLUMNS:
                    raise too_many_fields(
                        self.known,
                        key,
                        self.count,
                        self.source_name,
                        line=self.record_line or None,
                    )
                self.known[key] = None
                self.indices[key] = []
                self.values[key] = []
            self.indices[key].append(index)
            self.values[key].append(value)
        self.fields = {}
        self.done += 1

    def pending(self) -> bool:
        """Whether records finished since the last `take` wait to go out."""
        return self.done > self.taken

    def take(self) -> pl.DataFrame:
        """The records finished since the last `take` as a frame (`_source_row` goes on
        counting), and room for the next ones."""
        self.fields_seen.add(self.indices, self.done - self.taken)
        frame = records_frame(
            self.indices,
            self.values,
            list(range(self.taken + 1, self.done + 1)),
            self.source_name,
        )
        self.taken = self.done
        self.indices, self.values = {}, {}
        return frame

    def frame(self, record_path: str) -> pl.DataFrame:
        if not self.count and (not self.parent_found or self.parent_has_others):
            raise FormatError(
                self.source_name,
                f"no element matches `record_path` {record_path!r}",
                "Set `record_path` to the repeating record element" + self._suggestion(),
            )
        return self.take()

    def _suggestion(self) -> str:
        if not self.paths:
            return ""
        repeated = [(n, p) for p, n in self.paths.items() if n > 1]
        if repeated:
            # The most repeated element, the shallowest on a tie: the likely records.
            count, path = max(repeated, key=lambda item: (item[0], -item[1].count("/")))
            return f"; the most repeated element is `{path}` ({count} times)"
        return "; the document has " + ", ".join(f"`{p}`" for p in list(self.paths)[:8])
