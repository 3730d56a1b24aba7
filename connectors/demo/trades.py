"""Industries (DB07 codes with their Danish texts) and company-name patterns for the CVR demo."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .names import first_name, last_name


@dataclass(frozen=True, slots=True)
class Trade:
    code: str
    text: str
    weight: int
    names: tuple[str, ...]  # str.format patterns, see company_name
    farm: bool = False  # registered at a farm address


# fmt: off
TRADES: tuple[Trade, ...] = (
    Trade("011100", "Dyrkning af korn (undtagen ris), bælgfrugter og olieholdige frø", 5,
          ("{word}gården v/{first} {last}", "{last_gen} Landbrug", "{place} Planteavl"), farm=True),
    Trade("014100", "Opdræt af malkekvæg", 3,
          ("{word}gård Mælkeproduktion", "{last} Kvæg", "{word}lund v/{first} {last}"), farm=True),
    Trade("014600", "Svineavl", 2, ("{word}gårdens Svineproduktion", "{last} Svin"), farm=True),
    Trade("107100", "Fremstilling af brød; fremstilling af friske bagerivarer og kager", 4,
          ("Bager {last}", "{place} Bageri", "{first_gen} Bageri")),
    Trade("433200", "Tømrer- og bygningssnedkervirksomhed", 8,
          ("Tømrer {last}", "{place} Tømrerforretning", "Tømrerfirmaet {first} {last}")),
    Trade("432100", "El-installation", 5,
          ("{last} El-service", "El-installatør {last}", "{place} El")),
    Trade("432200", "VVS- og blikkenslagerforretninger", 4, ("{last} VVS", "{place} VVS & Blik")),
    Trade("433410", "Malerforretninger", 4, ("Malerfirmaet {last}", "{place} Malerforretning")),
    Trade("561010", "Restauranter", 6,
          ("Restaurant {spot}", "{place} Kro", "Café {spot}", "{first_gen} Køkken")),
    Trade("561020", "Pizzeriaer, grillbarer, isbarer mv.", 4,
          ("{place} Pizza", "Pizzeria Napoli {place}", "{place} Grill")),
    Trade("960210", "Frisørsaloner", 6, ("Salon {first}", "Frisør {first}", "{place} Frisørsalon")),
    Trade("620200", "Konsulentbistand vedrørende informationsteknologi", 8,
          ("{last} IT", "{last} Consulting", "{place} Data", "{first} {last} IT-rådgivning")),
    Trade("620100", "Computerprogrammering", 4, ("{last} Software", "Kodeværkstedet {place}")),
    Trade("692000", "Bogføring og revision; skatterådgivning", 4,
          ("Revisionsfirmaet {last}", "{place} Regnskab", "{last} & {last2} Revision")),
    Trade("812100", "Almindelig rengøring i bygninger", 5,
          ("{place} Rengøring", "{first_gen} Rengøringsservice")),
    Trade("813000", "Landskabspleje", 4, ("{last_gen} Anlægsgartner", "{place} Have & Anlæg")),
    Trade("452010", "Almindelig service og reparation af motorkøretøjer", 4,
          ("{place} Autoværksted", "{last} Auto", "{first_gen} Autoservice")),
    Trade("862300", "Tandlæger", 2, ("Tandlægerne {place}", "Tandlæge {first} {last}")),
    Trade("702200", "Virksomhedsrådgivning og anden rådgivning om driftsledelse", 5,
          ("{last} Rådgivning", "{last} & {last2} Consult")),
)

_WORDS = ("Bakke", "Skov", "Mølle", "Lykke", "Kilde", "Eng", "Ege", "Nørre", "Vester", "Høj",
          "Lund", "Bøge", "Rødkilde", "Østrup")
_SPOTS = ("Havnen", "Hjørnet", "Solsiden", "Møllen", "Torvet", "Stationen", "Åen", "Kastanjen")
_PLACES = ("Demoby", "Midtbyen", "Nørrebro Øst", "Søndermark", "Vesterlund", "Havnekvarteret",
           "Ålykke", "Åby Strand", "Lundby", "Demo Havn")

# (form, weight, suffix added to the name)
FORMS: tuple[tuple[str, int, str], ...] = (
    ("ApS", 50, " ApS"), ("Enkeltmandsvirksomhed", 30, ""), ("A/S", 8, " A/S"), ("I/S", 7, " I/S"),
    ("K/S", 2, " K/S"), ("P/S", 3, " P/S"),
)
# fmt: on


def pick_trade(rng: random.Random) -> Trade:
    return rng.choices(TRADES, [t.weight for t in TRADES])[0]


def genitive(name: str) -> str:
    """Danish possessive: "Jensens", but "Anders'" for names already ending in s, x or z."""
    return name + "'" if name[-1] in "sxz" else name + "s"


def company_name(rng: random.Random, trade: Trade, suffix: str) -> str:
    female = rng.random() < 0.5
    pattern = rng.choice(trade.names)
    first, last = first_name(rng, rng.randint(1950, 1995), female), last_name(rng)
    name = pattern.format(
        last=last,
        last_gen=genitive(last),
        last2=last_name(rng),
        first=first,
        first_gen=genitive(first),
        place=rng.choice(_PLACES),
        word=rng.choice(_WORDS),
        spot=rng.choice(_SPOTS),
    )
    return name + suffix
