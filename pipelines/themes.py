"""Dataset themes: the EU data-theme vocabulary DCAT-AP recommends for `dcat:theme`.

A closed list: a portal harvesting the catalog files each dataset under these, so a theme
outside it would be lost there. The glossary's concepts stay the datasets' other themes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

THEME_VOCABULARY = "http://publications.europa.eu/resource/authority/data-theme"
DATA_THEMES = {
    "AGRI": "Agriculture, fisheries, forestry and food",
    "ECON": "Economy and finance",
    "EDUC": "Education, culture and sport",
    "ENER": "Energy",
    "ENVI": "Environment",
    "GOVE": "Government and public sector",
    "HEAL": "Health",
    "INTR": "International issues",
    "JUST": "Justice, legal system and public safety",
    "REGI": "Regions and cities",
    "SOCI": "Population and society",
    "TECH": "Science and technology",
    "TRAN": "Transport",
}


def theme_iri(code: str) -> str:
    return f"{THEME_VOCABULARY}/{code}"


def theme_error(themes: Iterable[str]) -> str | None:
    """What is wrong with a list of theme codes, with the code probably meant; None if
    every one is in the vocabulary."""
    for theme in themes:
        if theme in DATA_THEMES:
            continue
        close = _closest(theme)
        hint = f" (did you mean {close}, {DATA_THEMES[close]}?)" if close else ""
        return (
            f"theme {theme!r} is not in the EU data-theme vocabulary{hint}; use one or more "
            f"of {', '.join(DATA_THEMES)}"
        )
    return None


def _closest(word: str) -> str | None:
    """The code a theme probably means: a code in other case (`soci`), one whose label
    starts with the word (`health` → HEAL), else the nearest code (`SOIC` → SOCI)."""
    folded = word.strip().casefold()
    for code, label in DATA_THEMES.items():
        if folded == code.casefold() or (folded and label.casefold().startswith(folded)):
            return code
    close = difflib.get_close_matches(word.upper(), list(DATA_THEMES), n=1, cutoff=0.5)
    return close[0] if close else None
