"""Geography of the fictional Demo Kommune: districts, postcodes, streets and DAR-like addresses.

Districts differ in housing (flats in the centre and harbour, detached houses in the suburbs,
farms in the countryside) and in building age, so BBR data and household patterns differ
by district the way they do in a real municipality.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

KOMMUNEKODE = "0350"
KOMMUNENAVN = "Demo Kommune"

FLAT, TERRACED, HOUSE, FARM = "flat", "terraced", "house", "farm"


@dataclass(frozen=True, slots=True)
class District:
    name: str
    share: float  # share of the municipality's addresses
    postcodes: tuple[tuple[str, str], ...]  # (postnr, postnrnavn)
    housing: tuple[tuple[str, int], ...]  # (kind, weight)
    built: tuple[int, int]  # typical construction years (farms are older everywhere)


# fmt: off
DISTRICTS: tuple[District, ...] = (
    District("Midtbyen", 0.22, (("4350", "Demoby"),),
             ((FLAT, 85), (TERRACED, 15)), (1700, 1965)),
    District("Nørrebro Øst", 0.20, (("4352", "Nørre Demo"), ("4353", "Demoby Ø")),
             ((FLAT, 70), (TERRACED, 30)), (1890, 1975)),
    District("Søndermark", 0.17, (("4355", "Sønder Demo"),),
             ((HOUSE, 80), (TERRACED, 15), (FLAT, 5)), (1955, 1990)),
    District("Vesterlund", 0.17, (("4360", "Vesterdemo"), ("4361", "Lundby")),
             ((HOUSE, 65), (TERRACED, 25), (FLAT, 10)), (1965, 2020)),
    District("Havnekvarteret", 0.12, (("4370", "Demo Havn"),),
             ((FLAT, 95), (TERRACED, 5)), (2003, 2025)),
    District("Ålykke", 0.12, (("4380", "Ålykke"), ("4381", "Åby Strand")),
             ((HOUSE, 60), (FARM, 40)), (1900, 2020)),
)

# Street names are "prefix + suffix" as in Skov+vej, Mølle+bakken, Å+boulevarden.
STREET_PREFIXES: tuple[str, ...] = (
    "Skov", "Kirke", "Mølle", "Å", "Præste", "Birke", "Ege", "Strand", "Bøge", "Hav", "Enge",
    "Kilde", "Lunde", "Rose", "Syrene", "Hyld", "Bakke", "Sol", "Vester", "Nørre", "Søndre",
    "Øster", "Fjord", "Mark", "Hede", "Toft", "Ager", "Lærke", "Svane", "Grønne", "Kongens",
    "Dronning", "Pile", "Lind", "Æble", "Kirsebær", "Smede", "Skole", "Gl. Kongs", "Ryttergårds",
    "Fælled", "Havre", "Rug", "Byg", "Tjørne", "Ahorn", "Valmue", "Ørne", "Hjorte", "Rådhus",
)
STREET_SUFFIXES: tuple[str, ...] = (
    "vej", "gade", "bakken", "boulevarden", "vænget", "stræde", "allé", "parken", "toften",
    "haven", "stien", "engen", "løkken", "høj", "vangen",
)
# fmt: on


@dataclass(frozen=True, slots=True)
class Street:
    prefix: str
    suffix: str
    postnr: str
    postnrnavn: str
    district: str

    @property
    def name(self) -> str:
        return self.prefix + self.suffix


@dataclass(frozen=True, slots=True)
class Address:
    id: str
    street: Street
    husnr: str
    etage: str  # "" for houses, "st", "1", "2", ... for flats
    doer: str  # "" for houses, "th", "tv", "mf" for flats
    kind: str
    built: int

    @property
    def vejnavn(self) -> str:
        return self.street.name

    def label(self) -> str:
        """How people write the address: ``Skovvej 12, 1. th`` or ``Skovvej 12``."""
        if not self.etage:
            return f"{self.street.name} {self.husnr}"
        return f"{self.street.name} {self.husnr}, {self.etage}. {self.doer}"


def new_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _streets(rng: random.Random, quotas: dict[str, int]) -> dict[str, list[Street]]:
    names = [(p, s) for p in STREET_PREFIXES for s in STREET_SUFFIXES]
    rng.shuffle(names)
    wanted = {d: max(3, n // 35) for d, n in quotas.items()}
    total = sum(wanted.values())
    # Street names are unique within the municipality; when a huge population exhausts the
    # name pool the streets just get longer (higher house numbers) instead of repeating.
    if total > len(names):
        wanted = {d: max(1, n * len(names) // total) for d, n in wanted.items()}
    streets: dict[str, list[Street]] = {}
    for district in DISTRICTS:
        streets[district.name] = []
        for _ in range(wanted[district.name]):
            prefix, suffix = names.pop()
            postnr, town = rng.choice(district.postcodes)
            streets[district.name].append(Street(prefix, suffix, postnr, town, district.name))
    return streets


def _quotas(count: int) -> dict[str, int]:
    quotas = {d.name: int(count * d.share) for d in DISTRICTS}
    quotas[DISTRICTS[0].name] += count - sum(quotas.values())
    return quotas


def build_addresses(rng: random.Random, count: int) -> list[Address]:
    """``count`` addresses, street by street, flats grouped per building as DAR lists them."""
    quotas = _quotas(count)
    streets = _streets(rng, quotas)
    addresses: list[Address] = []
    for district in DISTRICTS:
        kinds = [kind for kind, _ in district.housing]
        weights = [weight for _, weight in district.housing]
        next_number = {street.name: rng.randint(1, 4) for street in streets[district.name]}
        built: list[Address] = []
        while len(built) < quotas[district.name]:
            kind = rng.choices(kinds, weights)[0]
            street = rng.choice(streets[district.name])
            number = next_number[street.name]
            # Farms lie far apart along country roads; houses alternate sides of the street.
            next_number[street.name] += (
                rng.randint(3, 12) if kind == FARM else rng.choice((1, 2, 2))
            )
            year = rng.randint(1780, 1950) if kind == FARM else rng.randint(*district.built)
            if kind == FLAT:
                floors = ["st", *(str(f) for f in range(1, rng.randint(2, 5)))]
                doors = rng.choice((("tv", "th"), ("tv", "th"), ("tv", "mf", "th")))
                units = [(str(number), floor, door) for floor in floors for door in doors]
            elif rng.random() < 0.08:
                units = [(f"{number}A", "", ""), (f"{number}B", "", "")]
            else:
                units = [(str(number), "", "")]
            for husnr, etage, doer in units:
                built.append(Address(new_uuid(rng), street, husnr, etage, doer, kind, year))
        addresses.extend(built[: quotas[district.name]])
    return addresses
