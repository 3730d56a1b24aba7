"""Common Danish first and last names, short built-in lists (no real register data).

First names are grouped by birth cohort because a 90-year-old "Noah" or a newborn "Birthe"
would make the demo look fake at first glance. All names are cp1252-safe on purpose: the HR
export is cp1252.
"""

from __future__ import annotations

import itertools
import random

# fmt: off
# (born before this year, male names, female names); the last cohort is open-ended.
_COHORTS: tuple[tuple[int, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        1955,
        ("Jens", "Hans", "Poul", "Erik", "Niels", "Knud", "Svend", "Bent", "Ole", "Henning",
         "Arne", "Leif", "Kaj", "Preben", "Jørgen", "Børge", "Aage", "Finn", "Verner", "Kurt",
         "Egon", "Villy", "Erling", "Holger"),
        ("Kirsten", "Hanne", "Inge", "Karen", "Birthe", "Grethe", "Ingrid", "Else", "Ruth",
         "Edith", "Gerda", "Lis", "Jytte", "Bodil", "Ellen", "Anna", "Margrethe", "Gudrun",
         "Agnete", "Henny", "Ida", "Lilly", "Esther", "Åse"),
    ),
    (
        1985,
        ("Peter", "Michael", "Lars", "Henrik", "Søren", "Thomas", "Jan", "Morten", "Martin",
         "Jesper", "Anders", "Per", "Torben", "Brian", "Kim", "Claus", "Steen", "Jacob",
         "Rasmus", "Bo", "Allan", "René", "Kenneth", "Carsten"),
        ("Susanne", "Anne", "Lene", "Mette", "Pia", "Tina", "Helle", "Gitte", "Charlotte",
         "Bettina", "Dorthe", "Marianne", "Lone", "Trine", "Camilla", "Louise", "Heidi",
         "Malene", "Rikke", "Jeanette", "Annette", "Maria", "Tanja", "Birgitte"),
    ),
    (
        2005,
        ("Mads", "Christian", "Kasper", "Jonas", "Frederik", "Mikkel", "Nikolaj", "Simon",
         "Mathias", "Emil", "Alexander", "Andreas", "Kristian", "Tobias", "Jonathan",
         "Sebastian", "Nicolai", "Daniel", "Patrick", "Mark"),
        ("Julie", "Sofie", "Cecilie", "Line", "Sarah", "Christina", "Katrine", "Amalie",
         "Emilie", "Stine", "Signe", "Sandra", "Laura", "Nanna", "Maja", "Ditte", "Josefine",
         "Mathilde", "Caroline", "Mia"),
    ),
    (
        9999,
        ("William", "Noah", "Oscar", "Lucas", "Carl", "Victor", "Malthe", "Alfred", "Oliver",
         "Aksel", "Valdemar", "Magnus", "Elias", "August", "Theo", "Felix", "Hugo", "Arthur",
         "Storm", "Bertram"),
        ("Emma", "Ida", "Freja", "Alma", "Clara", "Ella", "Karla", "Agnes", "Sofia", "Olivia",
         "Nora", "Ellen", "Lily", "Asta", "Esther", "Vilma", "Frida", "Luna", "Isabella",
         "Silje"),
    ),
)

# Rough relative frequencies so that Nielsen/Jensen/Hansen dominate as they do in Denmark.
_LAST_NAMES: tuple[tuple[str, int], ...] = (
    ("Nielsen", 240), ("Jensen", 240), ("Hansen", 200), ("Andersen", 160), ("Pedersen", 160),
    ("Christensen", 110), ("Larsen", 110), ("Sørensen", 100), ("Rasmussen", 85),
    ("Jørgensen", 80), ("Petersen", 75), ("Madsen", 60), ("Kristensen", 60), ("Olsen", 50),
    ("Thomsen", 45), ("Christiansen", 40), ("Poulsen", 35), ("Johansen", 35), ("Møller", 35),
    ("Mortensen", 35), ("Knudsen", 25), ("Jakobsen", 25), ("Jacobsen", 20), ("Mikkelsen", 22),
    ("Olesen", 22), ("Frederiksen", 20), ("Laursen", 20), ("Henriksen", 20), ("Lund", 20),
    ("Schmidt", 18), ("Eriksen", 18), ("Holm", 18), ("Kristiansen", 16), ("Clausen", 16),
    ("Simonsen", 15), ("Svendsen", 15), ("Andreasen", 14), ("Iversen", 14),
    ("Østergaard", 14), ("Jeppesen", 13), ("Vestergaard", 13), ("Nissen", 12),
    ("Lauridsen", 12), ("Kjær", 12), ("Jepsen", 12), ("Mogensen", 11), ("Nørgaard", 11),
    ("Jessen", 10), ("Søndergaard", 10), ("Bertelsen", 10), ("Dahl", 10), ("Ali", 8),
    ("Hussein", 7), ("Yilmaz", 7), ("Nguyen", 6), ("Ahmed", 6), ("Kowalski", 4),
)
# fmt: on
_LAST = tuple(name for name, _ in _LAST_NAMES)
_LAST_CUM = tuple(itertools.accumulate(weight for _, weight in _LAST_NAMES))


def first_name(rng: random.Random, birth_year: int, female: bool) -> str:
    for born_before, male_names, female_names in _COHORTS:
        if birth_year < born_before:
            return rng.choice(female_names if female else male_names)
    raise AssertionError("the last cohort is open-ended")


def last_name(rng: random.Random) -> str:
    return rng.choices(_LAST, cum_weights=_LAST_CUM)[0]
