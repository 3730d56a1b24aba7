"""What calamine does not pass on from an .ods: the number styles that pad with zeros.

A CPR number or postcode kept as a number in a cell formatted `0000000000` shows as
0101451234 in LibreOffice but is 101451234 to calamine, which reads `office:value` only.
In the file the format is a number style with one number element of ten integer digits:

    <number:number-style style:name="N2">
      <number:number number:decimal-places="0" number:min-integer-digits="10"/>
    </number:number-style>
    <style:style style:name="ce1" style:family="table-cell" style:data-style-name="N2"/>

and a cell names its cell style (`table:style-name="ce1"`), or takes its row's or column's
`table:default-cell-style-name`. Cell styles are in content.xml (automatic ones, before the
spreadsheet body) and styles.xml (named ones, which automatic ones may inherit from).
Elapsed-time formats need nothing here: calamine passes .ods time cells on as durations.
"""

from __future__ import annotations

import re
import zipfile

from connectors.formats.number_formats import Shown
from connectors.formats.tag_attributes import tag_attributes

_STEP = 1 << 20
_BODY = b"<office:body"
_NUMBER_STYLE = re.compile(
    rb"<number:number-style((?:\s[^>]*?)?)(?<!/)>(.*?)</number:number-style>", re.S
)
_CELL_STYLE = re.compile(rb"<style:style\s([^>]*?)/?>")
_ELEMENT = re.compile(rb"<([\w-]+:[\w-]+)((?:\s[^>]*?)?)/?>")
# Elements that change nothing in how the digits are shown.
_NEUTRAL = {"number:number", "style:text-properties"}


def padded_cell_styles(archive: zipfile.ZipFile) -> dict[str, Shown]:
    """Cell style name -> its zero padding, for the cell styles whose number style pads
    whole numbers with zeros; empty when none does (most workbooks)."""
    parts = [_styles_part(archive, "styles.xml"), _styles_part(archive, "content.xml")]
    widths: dict[str, int] = {}
    for part in parts:
        for found in _NUMBER_STYLE.finditer(part):
            width = _zeros(found.group(2))
            name = tag_attributes(found.group(1)).get("style:name")
            if width and name:
                widths[name] = width
    if not widths:
        return {}
    data_styles: dict[str, tuple[str | None, str | None]] = {}  # own number style, parent
    for part in parts:
        for found in _CELL_STYLE.finditer(part):
            attributes = tag_attributes(found.group(1))
            if attributes.get("style:family") == "table-cell" and "style:name" in attributes:
                data_styles[attributes["style:name"]] = (
                    attributes.get("style:data-style-name"),
                    attributes.get("style:parent-style-name"),
                )
    found_styles = {}
    for name in data_styles:
        width = widths.get(_data_style(name, data_styles) or "")
        if width:
            found_styles[name] = Shown(zeros=width)
    return found_styles


def _zeros(children: bytes) -> int:
    """The width of a number style made of one plain number with two or more integer digits
    (`0000`: no decimals, grouping, scaling, text or conditions), else 0."""
    elements = [(name.decode(), tag_attributes(rest)) for name, rest in _ELEMENT.findall(children)]
    numbers = [attributes for name, attributes in elements if name == "number:number"]
    if len(numbers) != 1 or any(name not in _NEUTRAL for name, _ in elements):
        return 0
    number = numbers[0]
    plain = (
        number.get("number:decimal-places", "0") == "0"
        and number.get("number:min-decimal-places", "0") == "0"
        and number.get("number:grouping", "false") == "false"
        and number.get("number:display-factor", "1") == "1"
    )
    digits = number.get("number:min-integer-digits", "")
    return int(digits) if plain and digits.isdigit() and int(digits) >= 2 else 0


def _data_style(name: str, data_styles: dict[str, tuple[str | None, str | None]]) -> str | None:
    """The number style a cell style has, itself or from the styles it inherits from."""
    seen = set()
    current: str | None = name
    while current is not None and current not in seen and current in data_styles:
        seen.add(current)
        own, parent = data_styles[current]
        if own is not None:
            return own
        current = parent
    return None


def _styles_part(archive: zipfile.ZipFile, member: str) -> bytes:
    """The member's XML up to the spreadsheet body (content.xml holds the cells after it)."""
    if member not in archive.namelist():
        return b""
    text = b""
    with archive.open(member) as stream:
        while step := stream.read(_STEP):
            # From a little before the new step: the tag may span the boundary.
            start = max(len(text) - len(_BODY), 0)
            text += step
            end = text.find(_BODY, start)
            if end >= 0:
                return text[:end]
    return text
