"""Column names from several header rows of a sheet (`header_rows`), joined top to bottom
with " / ": a group label over "Dato" and "Varighed" gives "Besøg / Dato" and
"Besøg / Varighed".

A merged cell holds its text in its top-left cell only. Where the file says which cells are
merged (.xlsx, .xls from Excel 97 on, .ods), a label covers its merged range exactly;
where it cannot, a label is carried right over empty cells up to the next one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from connectors.formats.workbook_package import Merge


def _joined(rows: list[list[str]]) -> list[str]:
    return [" / ".join(part for part in column if part) for column in zip(*rows, strict=True)]


def merged_header(
    rows: list[list[str]],
    header_row: int,
    first_column: int,
    merges: Iterable[Merge],
    outside: Mapping[tuple[int, int], str] | None = None,
) -> list[str]:
    """Column names from several header rows, a group label covering its merged range.

    A merged cell holds its text in its top-left cell only; that text is given to the other
    columns of the merge, in every header row but the last (which names single columns),
    and only to columns with a name in a lower header row, so a group never names an empty
    column after the table. A label that is not merged names its own column only. `rows`
    start at sheet row `header_row` and column `first_column`; a range reaching in from
    the left (`columns_range: "B:C"` with "Kommune" merged over A1:B1) takes its label from
    `outside` (sheet row, column -> text, see `labels_left_of`).
    """
    width = len(rows[0])
    filled = [list(row) for row in rows]
    named_below = [
        [any(row[c] for row in rows[r + 1 :]) for c in range(width)] for r in range(len(rows))
    ]
    for r, spans in _label_spans(merges, header_row, len(rows) - 1, first_column, width).items():
        # Ranges in order of their first column, each column given one label: ranges that
        # overlap are no layout Excel saves (it repairs them), and a forged file may hold
        # thousands over one row, so no column is filled twice.
        reach = -1
        for start, end, label in sorted(spans):
            if label >= 0:
                text = rows[r][label]
            else:
                text = (outside or {}).get((header_row + r, first_column + label), "")
            for c in range(max(start, reach + 1), end + 1):
                if c != label and named_below[r][c]:
                    filled[r][c] = text
            reach = max(reach, end)
    return _joined(filled)


def _label_spans(
    merges: Iterable[Merge], header_row: int, label_rows: int, first_column: int, width: int
) -> dict[int, list[tuple[int, int, int]]]:
    """Header row (from 0) -> the merged ranges starting in it, as their first and last
    columns within the loaded ones and their label's column, all counted from 0 there."""
    spans: dict[int, list[tuple[int, int, int]]] = {}
    last = first_column + width - 1
    for merge in merges:
        start, end = max(merge.left, first_column), min(merge.right + merge.columns - 1, last)
        if start > end:
            continue  # outside the loaded columns
        for row in _starts(merge, range(header_row, header_row + label_rows)):
            spans.setdefault(row - header_row, []).append(
                (start - first_column, end - first_column, merge.left - first_column)
            )
    return spans


def labels_left_of(
    merges: Iterable[Merge], label_rows: range, first_column: int
) -> set[tuple[int, int]]:
    """The (row, column) label cells of the ranges starting in `label_rows` left of the
    loaded columns and reaching into them: `merged_header` needs their texts."""
    return {
        (row, merge.left)
        for merge in merges
        if merge.left < first_column <= merge.right + merge.columns - 1
        for row in _starts(merge, label_rows)
    }


def _starts(merge: Merge, rows: range) -> range:
    """The rows among `rows` in which the range starts: an .ods range repeated over rows
    starts in each of them (`Merge`)."""
    return range(max(merge.top, rows.start), min(merge.top + merge.rows, rows.stop))


def carried_header(rows: list[list[str]]) -> list[str]:
    """Column names from several header rows when the file cannot say what is merged (an .xls
    older than Excel 97, which had no merged cells).

    A merged cell holds its text in its top-left cell only, so in every row but the last an
    upper value is carried right across empty cells, until a cell in that row or any row above
    it starts a new group, and only into columns with a name in a lower header row. The last
    row names single columns and is never carried. Empty parts are left out.
    """
    filled = [list(row) for row in rows]
    for r in range(len(rows) - 1):
        carried = ""
        for c in range(len(rows[0])):
            if rows[r][c]:
                carried = rows[r][c]
            elif any(rows[above][c] for above in range(r)):
                carried = ""
            # Only into columns named below: a group never spills over empty columns after
            # the table (or a note column beside it).
            if any(rows[below][c] for below in range(r + 1, len(rows))):
                filled[r][c] = carried
    filled[-1] = rows[-1]
    return _joined(filled)
