"""Small-cell suppression for gold figures that leave the analyst tier.

Gold tables are for analysts inside the municipality, who may see that two persons aged 0-17
live in a district. A figure shown outside (a public dashboard, an open-data file, a report to
the council) must not let a reader single out a few persons. The serving layer's `published`
schema therefore holds, for every aggregate gold table, a view where each figure that
describes fewer than `KOMMUNELAKE_MIN_CELL` persons (default 5) is NULL, and a column
`suppressed` lists which figures of the row were hidden.

The rules, per row:
- **Primary**: a figure is hidden when one of the counts of persons behind it is 1 to k-1
  (0 is shown: nobody is singled out by an empty cell).
- **Differences**: where one figure counts some of the persons of another (80+ of 65+,
  recipients of care of the residents), the difference counts persons too (the 65-79s, the
  residents without care); while it is 1 to k-1, the smaller figure is hidden.
- **Complementary**: where parts add up to a total that is shown (age bands to `persons`), the
  hidden parts' sum can be computed back from the total; while it is under k, the smallest
  other part that is not zero is hidden too.

Not covered, and said in README: totals a reader can take from elsewhere (a published
municipality total minus the other districts). Tables classified `personal` (one row per
person) are never published.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lake.errors import ConfigError

MIN_CELL_ENV = "KOMMUNELAKE_MIN_CELL"
DEFAULT_MIN_CELL = 5
PUBLISHED = "published"


@dataclass(frozen=True)
class SmallCells:
    """Which of a gold table's figures describe persons, and which add up to which."""

    # figure → the columns counting the persons behind it (a count of persons is its own)
    figures: tuple[tuple[str, tuple[str, ...]], ...]
    # total → the parts that add up to it within the row
    totals: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # figure → the figures counting some of its persons (65+ → 80+), so the difference does too
    within: tuple[tuple[str, tuple[str, ...]], ...] = ()


def min_cell(environ: Mapping[str, str]) -> int:
    """The smallest count of persons a published figure may describe."""
    text = environ.get(MIN_CELL_ENV, "").strip()
    if not text:
        return DEFAULT_MIN_CELL
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(
            f"{MIN_CELL_ENV}={text!r} is not a whole number of persons of 1 or more: set it to "
            f"the smallest count a published figure may describe (default {DEFAULT_MIN_CELL}; "
            "1 publishes every figure)"
        )
    return int(text)


def suppression_rule(k: int) -> str:
    """The rule a published view applies, in words, for the catalog."""
    if k == 1:
        return f"Every figure is shown ({MIN_CELL_ENV} = 1: no small-cell suppression)."
    return (
        f"Small cells are hidden ({MIN_CELL_ENV} = {k}): a figure about 1 to {k - 1} persons "
        "is NULL (0 is shown); a figure counting some of another's persons is hidden while "
        f"the difference is 1 to {k - 1}; where hidden parts of a shown total add up to under "
        f"{k}, the smallest other part is hidden too. `suppressed` lists the row's hidden "
        "figures."
    )


def published_select(source: str, columns: Iterable[str], rules: SmallCells, k: int) -> str:
    """SELECT of `source` (a served gold view) with small cells set to NULL.

    `columns`: the table's columns in order; every one is kept, figures as NULL where hidden."""
    columns = list(columns)
    figures = dict(rules.figures)
    primary = {
        name: " OR ".join(f"{_q(b)} BETWEEN 1 AND {k - 1}" for b in bases)
        for name, bases in figures.items()
    }
    hidden = {name: f"({condition})" for name, condition in primary.items()}
    # Before the totals: a part hidden here is then one of the hidden parts they account for.
    for outer, inners in rules.within:
        for inner in inners:
            difference = f"{_q(outer)} - {_q(inner)} BETWEEN 1 AND {k - 1}"
            hidden[inner] = f"({hidden[inner]} OR (NOT {hidden[outer]} AND {difference}))"
    for total, parts in rules.totals:
        flags = [hidden[p] for p in parts]
        # What the hidden parts add up to can be read off the total: while that is 1 to k-1,
        # the smallest part still shown that is not zero is hidden too. Being shown and not
        # zero, it is k or more, so one more part is always enough.
        hidden_sum = " + ".join(
            f"CASE WHEN {f} THEN {_q(p)} ELSE 0 END" for p, f in zip(parts, flags, strict=True)
        )
        exposed = f"NOT {hidden[total]} AND ({hidden_sum}) BETWEEN 1 AND {k - 1}"
        candidates = [
            f"CASE WHEN {f} OR {_q(p)} = 0 THEN NULL ELSE {_q(p)} END"
            for p, f in zip(parts, flags, strict=True)
        ]
        smallest = f"least({', '.join(candidates)})"
        for i, part in enumerate(parts):
            chosen = f"{candidates[i]} = {smallest}"
            earlier = [f"{candidates[j]} = {smallest}" for j in range(i)]  # ties: the first
            if earlier:
                chosen += f" AND NOT coalesce({' OR '.join(earlier)}, false)"
            hidden[part] = f"({flags[i]} OR coalesce({exposed} AND {chosen}, false))"
    shown_columns = [
        f"CASE WHEN {hidden[c]} THEN NULL ELSE {_q(c)} END AS {_q(c)}" if c in hidden else _q(c)
        for c in columns
    ]
    listed = ", ".join(f"CASE WHEN {hidden[c]} THEN '{c}' END" for c in columns if c in hidden)
    suppressed = f"list_filter([{listed}]::VARCHAR[], lambda x: x IS NOT NULL) AS suppressed"
    # `hidden` reads the figures as the table holds them: one SELECT, no self-reference.
    return f"SELECT {', '.join(shown_columns)}, {suppressed} FROM {source}"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
