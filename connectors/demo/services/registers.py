"""The Demo Kommune's DAR and BBR registers as bitemporal version rows, as Datafordeler holds them.

Built from the same in-memory population as the drop-folder extracts (same seed, same
random streams), so the services and the files agree:

- ``DAR_Adresse.id_lokalId`` is the address id in ``dar_addresses/dar_adresser.csv``;
- ``BBR_Enhed.id_lokalId`` and its area/rooms/use are the units of
  ``bbr_dwellings/bbr_enheder.json`` before defects were injected (the API serves clean data);
- husnumre, streets, postcodes and buildings, which the files do not carry, are derived
  here from a separate random stream, so adding them reshuffles nothing else.

Every row is one version: a ``virkning`` interval (when it was true in the world) and a
``registrering`` interval (when the register said so); a null ``...Til`` is open. Three kinds
of history exist so that as-of queries have something to show:

- addresses built before DAR went live (``DAR_LIVE``) were converted once: one version,
  in effect (virkning) from 1 January of the construction year, 1900 at the earliest;
- newer addresses were registered *foreløbig* (status 2) and later made *gældende*
  (status 3) from a virkning date; the register then replaced its first registration by
  two versions (split virkning), which is how a bitemporal register records a change;
- a few flats (``Registers.corrections``) had a wrong door registered and were corrected
  retroactively: same virkning, a new registration — ``registreringstid`` before the
  correction shows the wrong door, after it the right one.

All timestamps lie before ``EXTRACT_INSTANT`` (the generator's extract date, UTC).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..dates import EXTRACT_DATE
from ..extracts import bbr_dwellings
from ..generator import stream
from ..people import Population, build_population
from ..places import FARM, FLAT, HOUSE, KOMMUNEKODE, TERRACED, Address, new_uuid

Row = dict[str, Any]

EXTRACT_INSTANT = datetime(EXTRACT_DATE.year, EXTRACT_DATE.month, EXTRACT_DATE.day, tzinfo=UTC)
DAR_LIVE = datetime(2018, 7, 2, tzinfo=UTC)  # DAR replaced the old address registers
_CONVERTED_BY = DAR_LIVE + timedelta(days=1)
KOMMUNEINDDELING = "390350"  # the DAGI id of the Demo Kommune (made up, DAGI-shaped)
DAR_NAMESPACE = "http://data.gov.dk/dar"
BBR_NAMESPACE = "http://data.gov.dk/bbr"

# DAR status codes: 2 foreløbig, 3 gældende. BBR: 6 opført (building/unit in use).
DAR_PROVISIONAL, DAR_CURRENT, BBR_BUILT = "2", "3", "6"
_BYG_USE = {FLAT: "140", TERRACED: "130", HOUSE: "120", FARM: "110"}
_RESIDENTIAL = {"110", "120", "130", "140", "150"}
# Rough EPSG:25832 centre per district, metres (a made-up spot on Zealand).
_CENTRE = (690_000.0, 6_170_000.0)
_DISTRICT_OFFSET = {
    "Midtbyen": (0, 0),
    "Nørrebro Øst": (1_500, 1_200),
    "Søndermark": (-200, -2_000),
    "Vesterlund": (-2_500, 300),
    "Havnekvarteret": (1_800, -900),
    "Ålykke": (-6_000, 5_000),
}


@dataclass(frozen=True)
class Correction:
    """A retroactive correction of one address's door: registered wrong, corrected at ``at``."""

    adresse_id: str
    wrong_door: str
    right_door: str
    virkning_fra: datetime
    first_registered: datetime
    at: datetime


@dataclass(frozen=True)
class Registers:
    """Every version row per entity, in the Datafordeler field names (plus ``kommunekode``
    on DAR rows, a demo-only filter key that the DAR schema does not expose as a field)."""

    dar: dict[str, tuple[Row, ...]]  # DAR_Adresse, DAR_Husnummer, DAR_NavngivenVej, DAR_Postnummer
    bbr: dict[str, tuple[Row, ...]]  # BBR_Bygning, BBR_Enhed
    corrections: tuple[Correction, ...]
    population: Population


def build_registers(persons: int = 20_000, seed: int = 2026) -> Registers:
    """The registers for the population ``generate(home, persons, seed)`` writes."""
    population = build_population(stream(seed, "population"), persons)
    return registers_for(population, seed)


def registers_for(population: Population, seed: int) -> Registers:
    rng = random.Random(f"kommunelake-demo/{seed}/services/registers")
    builder = _Builder(rng, population)
    builder.build(seed)
    return Registers(
        dar={
            "DAR_Adresse": tuple(builder.adresser),
            "DAR_Husnummer": tuple(builder.husnumre),
            "DAR_NavngivenVej": tuple(builder.veje),
            "DAR_Postnummer": tuple(builder.postnumre),
        },
        bbr={"BBR_Bygning": tuple(builder.bygninger), "BBR_Enhed": tuple(builder.enheder)},
        corrections=tuple(builder.corrections),
        population=population,
    )


def _at(rng: random.Random, day: date | datetime, hours: tuple[int, int] = (7, 17)) -> datetime:
    """A working-hours instant on ``day`` with microseconds, like register timestamps."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    seconds = rng.randint(hours[0] * 3600, hours[1] * 3600)
    return start + timedelta(seconds=seconds, microseconds=rng.randint(0, 999_999))


def _version(
    lokal_id: str,
    namespace: str,
    status: str,
    virkning: tuple[datetime, datetime | None],
    registrering: tuple[datetime, datetime | None],
    event: str,
    fields: Row,
) -> Row:
    return {
        "id_lokalId": lokal_id,
        "id_namespace": namespace,
        "status": status,
        "virkningFra": virkning[0],
        "virkningTil": virkning[1],
        "registreringFra": registrering[0],
        "registreringTil": registrering[1],
        "forretningshaendelse": event,
        "forretningsomraade": "54.15.05.05" if namespace == DAR_NAMESPACE else "BBR",
        "forretningsproces": "0" if namespace == DAR_NAMESPACE else "Demo",
        "registreringsaktoer": f"Kommune{KOMMUNEKODE}",
        "virkningsaktoer": "Konvertering2018" if registrering[0] < _CONVERTED_BY else "Kommune",
        "datafordelerOpdateringstid": registrering[0] + timedelta(minutes=3),
        **fields,
    }


@dataclass(frozen=True)
class _Life:
    """When a husnummer (and its addresses and building) came to be, and its status history."""

    virkning: datetime
    registered: datetime
    current_from: datetime | None = None  # virkning of status 3 after a provisional start
    current_registered: datetime | None = None


class _Builder:
    def __init__(self, rng: random.Random, population: Population) -> None:
        self.rng = rng
        self.population = population
        self.adresser: list[Row] = []
        self.husnumre: list[Row] = []
        self.veje: list[Row] = []
        self.postnumre: list[Row] = []
        self.bygninger: list[Row] = []
        self.enheder: list[Row] = []
        self.corrections: list[Correction] = []

    def build(self, seed: int) -> None:
        rng = self.rng
        groups: dict[tuple[str, str], list[Address]] = defaultdict(list)
        for address in self.population.addresses:
            groups[(address.street.name, address.husnr)].append(address)
        streets = {a.street.name: a.street for a in self.population.addresses}
        postcodes = sorted({(s.postnr, s.postnrnavn) for s in streets.values()})
        post_ids = {postnr: new_uuid(rng) for postnr, _ in postcodes}
        street_ids = {name: new_uuid(rng) for name in sorted(streets)}
        vejkoder = {name: f"{10 * (i + 1):04d}" for i, name in enumerate(sorted(streets))}
        for postnr, navn in postcodes:
            fields = {"postnr": postnr, "navn": navn, "postnummerinddeling": f"19{postnr}"}
            self.postnumre.append(self._static(post_ids[postnr], DAR_NAMESPACE, fields))
        for name in sorted(streets):
            fields = {
                "vejnavn": name,
                "vejadresseringsnavn": name[:20],
                "udtaltVejnavn": name,
                "administreresAfKommune": KOMMUNEKODE,
            }
            self.veje.append(self._static(street_ids[name], DAR_NAMESPACE, fields))

        building_of: dict[str, str] = {}  # address id -> building id
        for (street_name, husnr), addresses in groups.items():
            first = addresses[0]
            street = first.street
            life = self._life(first)
            husnummer_id, building_id = new_uuid(rng), new_uuid(rng)
            label = f"{street_name} {husnr}, {street.postnr} {street.postnrnavn}"
            self._versions(
                self.husnumre,
                husnummer_id,
                DAR_NAMESPACE,
                life,
                {
                    "adgangsadressebetegnelse": label,
                    "husnummertekst": husnr,
                    "navngivenVej": street_ids[street_name],
                    "postnummer": post_ids[street.postnr],
                    "kommuneinddeling": KOMMUNEINDDELING,
                    "vejmidte": f"{KOMMUNEKODE}-{vejkoder[street_name]}",
                    "adgangTilBygning": building_id,
                    "geoDanmarkBygning": str(1_100_000_000 + len(self.husnumre)),
                    "kommunekode": KOMMUNEKODE,
                },
            )
            for address in addresses:
                building_of[address.id] = building_id
                self._versions(
                    self.adresser, address.id, DAR_NAMESPACE, life, _adresse(address, husnummer_id)
                )
            # BBR keeps one version per building: registered shortly after its husnummer.
            registered = life.registered + timedelta(minutes=rng.randint(5, 600))
            self._bygning(building_id, husnummer_id, addresses, _Life(life.virkning, registered))

        self._enheder(seed, building_of)
        self._correct_some_doors()

    # -- DAR

    def _life(self, address: Address) -> _Life:
        rng = self.rng
        if address.built < DAR_LIVE.year:
            # Converted at go-live; virkning from the construction year (not before 1900).
            virkning = _at(rng, date(max(address.built, 1900), 1, 1), (0, 0))
            return _Life(virkning, _at(rng, DAR_LIVE, (1, 5)))
        day = date(address.built, 1, 1) + timedelta(days=rng.randint(0, 364))
        virkning = _at(rng, min(day, EXTRACT_DATE - timedelta(days=200)))
        registered = virkning + timedelta(hours=rng.randint(1, 48))
        current_from = virkning + timedelta(days=rng.randint(60, 240))
        if current_from >= EXTRACT_INSTANT - timedelta(days=2):
            return _Life(virkning, registered)  # still provisional today
        return _Life(virkning, registered, current_from, current_from + timedelta(hours=2))

    def _versions(
        self, rows: list[Row], lokal_id: str, namespace: str, life: _Life, fields: Row
    ) -> None:
        if life.current_from is None:
            if namespace == BBR_NAMESPACE:
                status = BBR_BUILT
            else:
                converted = life.registered < _CONVERTED_BY  # else new, still provisional
                status = DAR_CURRENT if converted else DAR_PROVISIONAL
            rows.append(
                _version(
                    lokal_id,
                    namespace,
                    status,
                    (life.virkning, None),
                    (life.registered, None),
                    "Oprettet",
                    fields,
                )
            )
            return
        assert life.current_registered is not None
        first_status = DAR_PROVISIONAL if namespace == DAR_NAMESPACE else BBR_BUILT
        last_status = DAR_CURRENT if namespace == DAR_NAMESPACE else BBR_BUILT
        # The first registration believed the provisional state open-ended ...
        rows.append(
            _version(
                lokal_id,
                namespace,
                first_status,
                (life.virkning, None),
                (life.registered, life.current_registered),
                "Oprettet",
                fields,
            )
        )
        # ... the second closes it at current_from and opens the current state.
        rows.append(
            _version(
                lokal_id,
                namespace,
                first_status,
                (life.virkning, life.current_from),
                (life.current_registered, None),
                "Ændret",
                fields,
            )
        )
        rows.append(
            _version(
                lokal_id,
                namespace,
                last_status,
                (life.current_from, None),
                (life.current_registered, None),
                "Ændret",
                fields,
            )
        )

    def _static(self, lokal_id: str, namespace: str, fields: Row) -> Row:
        virkning = _at(self.rng, DAR_LIVE, (0, 0))
        registered = _at(self.rng, DAR_LIVE, (1, 5))
        return _version(
            lokal_id,
            namespace,
            DAR_CURRENT,
            (virkning, None),
            (registered, None),
            "Oprettet",
            fields,
        )

    def _correct_some_doors(self) -> None:
        """A few converted flats: registered with the wrong door, corrected retroactively."""
        rng = self.rng
        candidates = [
            i
            for i, row in enumerate(self.adresser)
            if row["doerbetegnelse"]
            and row["status"] == DAR_CURRENT
            and row["forretningshaendelse"] == "Oprettet"  # converted: one version only
        ]
        count = min(len(candidates), max(3, len(self.adresser) // 400))
        for index in sorted(rng.sample(candidates, count)):
            row = self.adresser[index]
            right = row["doerbetegnelse"]
            wrong = rng.choice([d for d in ("tv", "th", "mf") if d != right])
            at = _at(rng, date(2026, 2, 1) + timedelta(days=rng.randint(0, 230)))
            self.adresser[index] = {
                **row,
                "doerbetegnelse": wrong,
                "adressebetegnelse": row["adressebetegnelse"].replace(f". {right},", f". {wrong},"),
                "registreringTil": at,
            }
            self.adresser.append(
                {
                    **row,
                    "registreringFra": at,
                    "datafordelerOpdateringstid": at + timedelta(minutes=3),
                    "forretningshaendelse": "Rettelse",
                    "virkningsaktoer": "Kommune",
                }
            )
            self.corrections.append(
                Correction(
                    row["id_lokalId"], wrong, right, row["virkningFra"], row["registreringFra"], at
                )
            )

    # -- BBR

    def _bygning(
        self, building_id: str, husnummer_id: str, addresses: list[Address], life: _Life
    ) -> None:
        rng = self.rng
        first = addresses[0]
        floors = len({a.etage for a in addresses}) if first.kind == FLAT else 1
        dx, dy = _DISTRICT_OFFSET.get(first.street.district, (0, 0))
        x = _CENTRE[0] + dx + rng.uniform(-700, 700)
        y = _CENTRE[1] + dy + rng.uniform(-700, 700)
        fields = {
            "kommunekode": KOMMUNEKODE,
            "husnummer": husnummer_id,
            "byg007Bygningsnummer": 1,
            "byg021BygningensAnvendelse": _BYG_USE[first.kind],
            "byg026Opfoerelsesaar": first.built,
            "byg054AntalEtager": floors,
            # BBR code lists: walls 1 brick / 2 lightweight concrete / 4 timber; roofs 1 flat /
            # 3 fibre cement / 5 tiles; heating 1 district heating / 2 central heating.
            "byg032YdervaeggensMateriale": rng.choice(("1", "1", "2", "4")),
            "byg033Tagdaekningsmateriale": rng.choice(("1", "3", "5", "5")),
            "byg056Varmeinstallation": "1" if first.kind == FLAT else rng.choice(("1", "2")),
            "byg404Koordinat": {
                "type": "Point",
                "crs": 25832,
                "dimension": "XY",
                "wkt": f"POINT ({x:.2f} {y:.2f})",
            },
            # Areas are filled in from the units below.
            "byg038SamletBygningsareal": 0,
            "byg041BebyggetAreal": 0,
        }
        self._versions(self.bygninger, building_id, BBR_NAMESPACE, life, fields)

    def _enheder(self, seed: int, building_of: dict[str, str]) -> None:
        # The file's units before defects, drawn with the extract's own stream: same ids.
        units = bbr_dwellings.clean_units(stream(seed, bbr_dwellings.NAME), self.population)

        versions = {
            row["id_lokalId"]: row for row in self.bygninger if row["registreringTil"] is None
        }
        area: dict[str, int] = defaultdict(int)
        for unit in units:
            building_id = building_of[str(unit["adresseIdentificerer"])]
            building = versions[building_id]
            use = str(unit["enh020EnhedensAnvendelse"])
            total = int(unit["enh026EnhedensSamledeAreal"])  # type: ignore[arg-type]
            area[building_id] += total
            life = _Life(building["virkningFra"], building["registreringFra"])
            self._versions(
                self.enheder,
                str(unit["id_lokalId"]),
                BBR_NAMESPACE,
                life,
                {
                    "kommunekode": KOMMUNEKODE,
                    "bygning": building_id,
                    "adresseIdentificerer": unit["adresseIdentificerer"],
                    "enh020EnhedensAnvendelse": use,
                    "enh023Boligtype": "1" if use in _RESIDENTIAL else None,
                    "enh026EnhedensSamledeAreal": total,
                    "enh027ArealTilBeboelse": total if use in _RESIDENTIAL else None,
                    "enh028ArealTilErhverv": None if use in _RESIDENTIAL else total,
                    "enh031AntalVaerelser": unit["enh031AntalVaerelser"],
                    # Kitchen/toilet/bath codes as in the real answers (E own kitchen, T own
                    # toilet, V own bath); condemned "0" = no.
                    "enh024KondemneretBoligenhed": "0" if use in _RESIDENTIAL else None,
                    "enh032Toiletforhold": "T",
                    "enh033Badeforhold": "V" if use in _RESIDENTIAL else None,
                    "enh034Koekkenforhold": "E" if use in _RESIDENTIAL else None,
                    "enh065AntalVandskylledeToiletter": 1 if total < 120 else 2,
                },
            )
        for row in self.bygninger:
            total = area[row["id_lokalId"]]
            row["byg038SamletBygningsareal"] = total
            row["byg041BebyggetAreal"] = max(1, round(total / row["byg054AntalEtager"]))


def _adresse(address: Address, husnummer_id: str) -> Row:
    street = address.street
    where = f"{street.name} {address.husnr}"
    if address.etage:
        where += f", {address.etage}. {address.doer}"
    return {
        "adressebetegnelse": f"{where}, {street.postnr} {street.postnrnavn}",
        "husnummer": husnummer_id,
        "etagebetegnelse": address.etage,
        "doerbetegnelse": address.doer,
        "kommunekode": KOMMUNEKODE,
    }
