"""The glossary (begrepskatalog): one agreed definition per concept, read from glossary.yaml.

Contract fields name their concept (`schemas.fields.field(concept=...)`). A concept that the
glossary does not define is a contract mistake, refused when the dataset's YAML is read, so
two sectors cannot each invent their own word for one thing (`kommune` beside
`municipality`) without anyone noticing. The serving layer shows the glossary as
`catalog.glossary`.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

GLOSSARY_PATH = Path(__file__).with_name("glossary.yaml")
_REQUIRED = ("term", "definition", "steward")
_OPTIONAL = ("da", "nb", "unit", "notes", "see_also")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


class GlossaryError(ValueError):
    """The glossary file is unreadable or a concept in it is incomplete."""


@dataclass(frozen=True)
class Concept:
    concept: str
    term: str
    definition: str
    steward: str
    da: str | None = None
    nb: str | None = None
    unit: str | None = None
    notes: str | None = None
    see_also: tuple[str, ...] = ()


_cache: dict[Path, tuple[int, dict[str, Concept]]] = {}


def load_glossary(path: Path = GLOSSARY_PATH) -> dict[str, Concept]:
    """Concept name → Concept. Read again only when the file changed, since every dataset's
    YAML consults it and a long-running code server should see an edited glossary."""
    try:
        changed = os.stat(path).st_mtime_ns
    except OSError as error:
        raise GlossaryError(f"{path}: the glossary cannot be read ({error})") from error
    cached = _cache.get(path)
    if cached is None or cached[0] != changed:
        cached = (changed, _read(path))
        _cache[path] = cached
    return cached[1]


def _read(path: Path) -> dict[str, Concept]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise GlossaryError(f"{path}: not valid YAML ({error}); fix the file") from error
    except (OSError, UnicodeDecodeError) as error:
        raise GlossaryError(f"{path}: the glossary cannot be read ({error})") from error
    if not isinstance(raw, dict):
        raise GlossaryError(f"{path}: expected a mapping of concept name → its definition")
    concepts = {name: _concept(name, entry, path) for name, entry in raw.items()}
    for concept in concepts.values():
        unknown = [other for other in concept.see_also if other not in concepts]
        if unknown:
            raise GlossaryError(
                f"{path}: {concept.concept}: see_also names {unknown}, which the glossary does "
                "not define; name defined concepts only"
            )
    return concepts


def _concept(name: Any, entry: Any, path: Path) -> Concept:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise GlossaryError(
            f"{path}: concept name {name!r} must be lower case letters, digits and _, "
            "e.g. sick_leave_days"
        )
    if not isinstance(entry, dict):
        raise GlossaryError(f"{path}: {name}: expected term, definition and steward")
    unknown = sorted(set(entry) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise GlossaryError(
            f"{path}: {name}: unknown keys {unknown}; allowed: {[*_REQUIRED, *_OPTIONAL]}"
        )
    missing = [key for key in _REQUIRED if not _text(entry.get(key))]
    if missing:
        raise GlossaryError(
            f"{path}: {name}: {', '.join(missing)} missing; every concept needs a term, "
            "a definition and a steward"
        )
    for key in ("da", "nb", "unit", "notes"):
        if key in entry and not _text(entry[key]):
            raise GlossaryError(f"{path}: {name}: {key} must be text, got {entry[key]!r}")
    see_also = entry.get("see_also") or []
    if not isinstance(see_also, list) or not all(isinstance(s, str) for s in see_also):
        raise GlossaryError(f"{path}: {name}: see_also must be a list of concept names")
    # Folded YAML keeps a trailing newline and authors' line breaks: store plain text.
    texts = {key: " ".join(entry[key].split()) for key in entry if key != "see_also"}
    return Concept(concept=name, see_also=tuple(see_also), **texts)


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def undefined_concept(concepts: dict[str, str | None], glossary: dict[str, Concept]) -> str | None:
    """What is wrong when a field (name → concept) names a concept the glossary lacks."""
    for field_name, concept in concepts.items():
        if concept is None or concept in glossary:
            continue
        close = _closest(concept, glossary)
        hint = f" (did you mean {close!r}?)" if close else ""
        return (
            f"field `{field_name}` names concept {concept!r}, which the glossary "
            f"(schemas/glossary.yaml) does not define{hint}; use a defined concept, or add "
            "this one to the glossary with a term, a definition and a steward"
        )
    return None


def _closest(word: str, glossary: dict[str, Concept]) -> str | None:
    """The defined concept a field probably means: one whose English, Danish or Norwegian
    term is this word (`kommune` → municipality), else the nearest concept name."""
    folded = word.replace("_", " ").casefold()
    for concept in glossary.values():
        terms = (concept.term, concept.da, concept.nb)
        if any(t and folded in (t.casefold(), t.split(" (")[0].casefold()) for t in terms):
            return concept.concept
    close = difflib.get_close_matches(word, list(glossary), n=1, cutoff=0.6)
    return close[0] if close else None
