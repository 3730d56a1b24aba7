"""A fixed-width extract's trailer record read as data, told as what it probably is.

Mainframe and register extracts end with a trailer record (`999000004`: a record type and a
count). Without `allow_short_lines`, the reader refuses its short line and names
`skip_footer_lines`; with it, the line is a row whose fields past its end are empty, which
fails the contract on every required field and said nothing of the trailer. So the rows are
looked at as read: a last line leaving more fields empty than any line before it, and most
of them, is pointed to `skip_footer_lines: 1`.
"""

from __future__ import annotations

import polars as pl

from lake.validation import READER_LINEAGE, SOURCE_ROW
from pipelines.specs import DatasetSpec


class ShortLastLine:
    """Follows a fixed-width file chunk by chunk (`look`); `line()` is the file's last line
    when it looks like a trailer record read as data, else None."""

    def __init__(self, spec: DatasetSpec) -> None:
        layout = spec.format
        self.wanted = (
            layout.get("type") == "fixed_width"
            and layout.get("allow_short_lines") is True
            and not layout.get("skip_footer_lines")
        )
        self._before = -1  # the most empty fields of a line before the last one seen
        self._last: tuple[int, int] | None = None  # that line: (source row, empty fields)
        self._fields = 0

    def look(self, raw: pl.DataFrame) -> None:
        if not self.wanted or not raw.height:
            return
        fields = [c for c in raw.columns if c not in READER_LINEAGE]
        self._fields = len(fields)
        empty = raw.select(
            pl.sum_horizontal(
                (pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "")) for c in fields
            )
        ).to_series()
        if self._last is not None:
            self._before = max(self._before, self._last[1])
        if raw.height > 1:
            self._before = max(self._before, int(empty.head(raw.height - 1).max()))
        self._last = (int(raw[SOURCE_ROW][-1]), int(empty[-1]))

    def line(self) -> int | None:
        if self._last is None or self._before < 0:  # a file of one line has nothing to compare
            return None
        row, empty = self._last
        return row if empty > self._before and empty * 2 > self._fields else None


def trailer_hint(line: int) -> str:
    return (
        f"line {line}, the file's last, leaves more fields empty than any line before it: if"
        " it is the extract's trailer record (a record count), leave it out with"
        " `skip_footer_lines: 1` under `format:` in the dataset YAML"
    )
