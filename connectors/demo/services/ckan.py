"""A CKAN-like open-data portal (``/ckan/api/3/action/...``) with the Demo Kommune's datasets.

Two packages of the organization ``demo-kommune``, each with one CSV resource made from the
generator's population (so the institutions stand at real demo addresses, ``adresse_id``
joins to DAR):

- ``daginstitutioner``: day-care institutions (name, type, owner, places, address, district);
- ``legepladser``: public playgrounds (name, district, address, equipment, last inspection).

The portal writes its links (``help``, resource ``url``) under its public address
``SITE_URL`` (CKAN's ``ckan.site_url``), not under the 127.0.0.1 address it is reached at:
real portals do the same behind a proxy, and the answers then stay byte-identical from one
demo run (and port) to the next. A client fetches a file of the portal itself through the
address it uses for the portal (``connectors.ckan.via_portal``).

Shapes follow the real CKAN 2.x answers in ``shared/fixtures/real/ckan`` (Birmingham's
``package_search``; opendata.swiss's ``package_show``): ``{"help", "success", "result"}``,
packages with the core keys in Birmingham's order (``license_title`` ... ``revision_id``),
resources with ``url``/``format``/``mimetype``/``size``/``last_modified``/``created``,
``organization`` and ``tags`` objects, JSON written as CKAN writes it (``", "``/``": "``
separators, non-ASCII escaped). Timestamps are naive UTC with microseconds. The maintainer
is a team mailbox, never a person. Everything is fixed by (persons, seed): a re-run of the
demo downloads byte-identical metadata and files.

Actions (GET query parameters or a POSTed JSON object): ``package_search`` (``q``: words
that must all occur in title, notes or tags; ``fq``: ``organization:<name>`` /
``tags:<tag>`` / ``name:<name>`` clauses; ``sort``: ``name asc|desc`` or the default
``score desc, metadata_modified desc``; ``start``/``rows``), ``package_show`` (``id``: id or
name), ``package_list``, ``organization_show``. Resource files are at
``/ckan/dataset/<package id>/resource/<resource id>/download/<file>`` as on CKAN.

Errors, as CKAN's action API answers them (its source, ``ckan/views/api.py``, documents the
mapping; the fixtures hold no error answer): an unknown dataset is 404 ``{"__type": "Not Found
Error", "message": "Not found"}``; a missing or invalid parameter is 409 ``Validation Error``
with the field's messages (``rows`` above 1000 included, CKAN's default
``ckan.search.rows_max``); an unknown action is 400 with the JSON string ``"Bad request -
Action name not known: <action>"``; an ``fq`` we cannot read is 400 ``Search Query Error``
(**guess**: real CKAN passes ``fq`` to Solr and answers whatever Solr finds wrong). A resource
file that does not exist is a plain 404 page (**guess**: CKAN renders its HTML 404).
"""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ..dates import EXTRACT_DATE
from ..generator import stream
from ..people import Population
from ..places import FLAT, KOMMUNENAVN, Address
from .statbank import Answer

PORTAL_PATH = "/ckan"
SITE_URL = "https://opendata.demo-kommune.example"
ORGANIZATION = "demo-kommune"
MAX_ROWS = 1000
JSON_TYPE = "application/json;charset=utf-8"
CSV_TYPE = "text/csv"
LICENSE = (
    "cc-by-4.0",
    "Creative Commons Attribution 4.0",
    "https://creativecommons.org/licenses/by/4.0/",
)
MAINTAINER = ("Demo Kommune, Data og Digitalisering", "data@demo-kommune.example")
_PUBLISHED = datetime(2024, 3, 4, 9, 12, 31, 402113)

_NAMES = ("Solsikken", "Mælkebøtten", "Regnbuen", "Troldehøj", "Myretuen", "Skovbrynet",
          "Bikuben", "Lærkereden", "Spiren", "Kastanjen", "Søstjernen", "Tusindfryd")  # fmt: skip
_KINDS = ("Vuggestue", "Børnehave", "Integreret institution")
_PREFIX = {
    "Vuggestue": "Vuggestuen",
    "Børnehave": "Børnehaven",
    "Integreret institution": "Børnehuset",
}
_OWNERS = (("Kommunal", 7), ("Selvejende", 2), ("Privat", 1))
_PLAYGROUNDS = ("Legepladsen ved {street}", "{street} Legeplads", "Naturlegepladsen {word}")
_WORDS = ("Skovbrynet", "Engen", "Mosen", "Bakken", "Søen", "Lunden")


@dataclass(frozen=True)
class Resource:
    id: str
    name: str
    description: str
    filename: str
    content: bytes
    created: datetime
    last_modified: datetime


@dataclass(frozen=True)
class Package:
    id: str
    name: str
    title: str
    notes: str
    tags: tuple[str, ...]
    created: datetime
    modified: datetime
    resources: tuple[Resource, ...]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _where(address: Address) -> list[Any]:
    street = address.street
    return [address.label(), street.postnr, street.postnrnavn, street.district, address.id]


def daycare_csv(population: Population, rng: random.Random) -> bytes:
    """``daginstitutioner.csv``: one row per institution, at houses (not flats) of the demo."""
    count = max(3, len(population.persons) // 400)
    sites = [a for a in population.addresses if a.kind != FLAT] or list(population.addresses)
    rows = []
    chosen = sorted(rng.sample(sites, min(count, len(sites))), key=Address.label)
    for number, address in enumerate(chosen, 1):
        kind = rng.choice(_KINDS)
        places = rng.randrange(20, 121, 2) if kind != "Vuggestue" else rng.randrange(12, 49, 2)
        owner = rng.choices([o for o, _ in _OWNERS], [w for _, w in _OWNERS])[0]
        name = f"{_PREFIX[kind]} {rng.choice(_NAMES)}"
        rows.append([f"DI-{number:03d}", name, kind, owner, places, *_where(address)])
    header = ["id", "navn", "type", "ejerform", "pladser", "adresse", "postnr"]
    header += ["postdistrikt", "distrikt", "adresse_id"]
    return _csv(header, rows)


def playground_csv(population: Population, rng: random.Random) -> bytes:
    """``legepladser.csv``: public playgrounds with their last safety inspection."""
    count = max(3, len(population.persons) // 600)
    every = list(population.addresses)
    sites = sorted(rng.sample(every, min(count, len(every))), key=Address.label)
    rows = []
    for number, address in enumerate(sites, 1):
        pattern = rng.choice(_PLAYGROUNDS)
        name = pattern.format(street=address.street.name, word=rng.choice(_WORDS))
        inspected = EXTRACT_DATE - timedelta(days=rng.randint(20, 400))
        street = address.street
        equipment = rng.randint(3, 14)
        rows.append(
            [
                f"LP-{number:03d}",
                name,
                street.district,
                address.label(),
                street.postnr,
                equipment,
                inspected.isoformat(),
            ]
        )
    header = ["id", "navn", "distrikt", "adresse", "postnr", "antal_redskaber"]
    return _csv([*header, "senest_inspiceret"], rows)


def _moment(day: date, rng: random.Random) -> datetime:
    return datetime(day.year, day.month, day.day) + timedelta(
        seconds=rng.randint(7 * 3600, 16 * 3600), microseconds=rng.randint(0, 999_999)
    )


def build_packages(population: Population, seed: int) -> tuple[Package, ...]:
    rng = stream(seed, "services/ckan")
    updated = _moment(EXTRACT_DATE - timedelta(days=1), rng)
    specs = (
        (
            "daginstitutioner",
            "Daginstitutioner i Demo Kommune",
            "Kommunale, selvejende og private daginstitutioner (vuggestuer, børnehaver og "
            "integrerede institutioner) med antal pladser og adresse. Opdateres, når en "
            "institution åbner, lukker eller ændrer normering.",
            ("børn", "dagtilbud", "institutioner"),
            daycare_csv(population, rng),
        ),
        (
            "legepladser",
            "Offentlige legepladser",
            "Kommunens offentlige legepladser med antal legeredskaber og datoen for seneste "
            "sikkerhedsinspektion.",
            ("børn", "fritid", "legepladser"),
            playground_csv(population, rng),
        ),
    )
    packages = []
    for name, title, notes, tags, content in specs:
        created = _moment(_PUBLISHED.date() + timedelta(days=rng.randint(0, 200)), rng)
        resource = Resource(
            id=_uuid(rng),
            name=f"{title} (CSV)",
            description=f"{title}, kommasepareret, UTF-8.",
            filename=f"{name}.csv",
            content=content,
            created=created + timedelta(minutes=4),
            last_modified=updated,
        )
        packages.append(
            Package(
                id=_uuid(rng),
                name=name,
                title=title,
                notes=notes,
                tags=tags,
                created=created,
                modified=updated + timedelta(seconds=2),
                resources=(resource,),
            )
        )
    return tuple(packages)


class CkanRequestError(Exception):
    def __init__(self, status: int, error: Any) -> None:
        super().__init__(str(error))
        self.status = status
        self.error = error


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload).encode("utf-8")  # CKAN: ", "/": " separators, ASCII escapes


class CkanService:
    """Answers action API calls and resource downloads; read-only, so thread-safe."""

    def __init__(self, population: Population, seed: int) -> None:
        self.packages = build_packages(population, seed)
        self._org_id = _uuid(stream(seed, "services/ckan/organization"))
        self._org_created = datetime(2019, 5, 14, 10, 2, 11, 874231)

    # -- HTTP

    def action(self, portal: str, name: str, params: Mapping[str, Any]) -> Answer:
        actions = {
            "package_search": self._package_search,
            "package_show": self._package_show,
            "package_list": self._package_list,
            "organization_show": self._organization_show,
        }
        if name not in actions:
            body = _dumps(f"Bad request - Action name not known: {name}")
            return Answer(400, JSON_TYPE, body)
        envelope: dict[str, Any] = {"help": f"{portal}/api/3/action/help_show?name={name}"}
        try:
            result = actions[name](portal, params)
        except CkanRequestError as exc:
            envelope |= {"error": exc.error, "success": False}
            return Answer(exc.status, JSON_TYPE, _dumps(envelope))
        envelope |= {"success": True, "result": result}
        return Answer(200, JSON_TYPE, _dumps(envelope))

    def download(self, package_id: str, resource_id: str, filename: str) -> Answer:
        for package in self.packages:
            for resource in package.resources:
                if (package.id, resource.id, resource.filename) == (
                    package_id,
                    resource_id,
                    filename,
                ):
                    disposition = f'attachment; filename="{resource.filename}"'
                    headers = {
                        "Content-Disposition": disposition,
                        "Last-Modified": resource.last_modified.strftime(
                            "%a, %d %b %Y %H:%M:%S GMT"
                        ),
                    }
                    return Answer(200, CSV_TYPE, resource.content, headers)
        return Answer(404, "text/html; charset=utf-8", b"<h1>404 Not Found</h1>")

    # -- actions

    def _package_search(self, portal: str, params: Mapping[str, Any]) -> dict[str, Any]:
        rows = _number(params, "rows", 10, maximum=MAX_ROWS)
        start = _number(params, "start", 0)
        sort = str(params.get("sort") or "score desc, metadata_modified desc")
        found = [p for p in self.packages if _matches_q(p, str(params.get("q") or ""))]
        found = [p for p in found if _matches_fq(p, str(params.get("fq") or ""))]
        if sort.strip() in ("name asc", "name desc"):
            found.sort(key=lambda p: p.name, reverse=sort.strip().endswith("desc"))
        elif sort.strip() == "score desc, metadata_modified desc":
            found.sort(key=lambda p: p.modified, reverse=True)
        else:
            raise CkanRequestError(
                409, {"sort": [f"Unknown sort {sort!r}"], "__type": "Validation Error"}
            )
        results = [self._package(portal, p) for p in found[start : start + rows]]
        return {
            "count": len(found),
            "sort": sort,
            "facets": {},
            "results": results,
            "search_facets": {},
        }

    def _package_show(self, portal: str, params: Mapping[str, Any]) -> dict[str, Any]:
        wanted = params.get("id")
        if not wanted:
            raise CkanRequestError(409, {"id": ["Missing value"], "__type": "Validation Error"})
        for package in self.packages:
            if wanted in (package.id, package.name):
                return self._package(portal, package)
        raise CkanRequestError(404, {"message": "Not found", "__type": "Not Found Error"})

    def _package_list(self, portal: str, params: Mapping[str, Any]) -> list[str]:
        return sorted(p.name for p in self.packages)

    def _organization_show(self, portal: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if params.get("id") not in (ORGANIZATION, self._org_id):
            raise CkanRequestError(404, {"message": "Not found", "__type": "Not Found Error"})
        return self._organization()

    # -- documents

    def _organization(self) -> dict[str, Any]:
        return {
            "description": f"{KOMMUNENAVN}s åbne data.",
            "created": self._org_created.isoformat(),
            "title": KOMMUNENAVN,
            "name": ORGANIZATION,
            "is_organization": True,
            "state": "active",
            "image_url": "",
            "revision_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-kommune/{self._org_id}")),
            "type": "organization",
            "id": self._org_id,
            "approval_status": "approved",
        }

    def _package(self, portal: str, package: Package) -> dict[str, Any]:
        license_id, license_title, license_url = LICENSE
        maintainer, email = MAINTAINER
        return {
            "license_title": license_title,
            "maintainer": maintainer,
            "relationships_as_object": [],
            "private": False,
            "maintainer_email": email,
            "num_tags": len(package.tags),
            "id": package.id,
            "metadata_created": package.created.isoformat(),
            "metadata_modified": package.modified.isoformat(),
            "author": maintainer,
            "author_email": email,
            "state": "active",
            "version": "",
            "creator_user_id": self._org_id,
            "type": "dataset",
            "resources": [
                self._resource(portal, package, position, resource)
                for position, resource in enumerate(package.resources)
            ],
            "num_resources": len(package.resources),
            "tags": [
                {
                    "vocabulary_id": None,
                    "state": "active",
                    "display_name": tag,
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-kommune/tag/{tag}")),
                    "name": tag,
                }
                for tag in package.tags
            ],
            "groups": [],
            "license_id": license_id,
            "relationships_as_subject": [],
            "organization": self._organization(),
            "name": package.name,
            "isopen": True,
            "url": "",
            "notes": package.notes,
            "owner_org": self._org_id,
            "extras": [],
            "license_url": license_url,
            "title": package.title,
            "revision_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-kommune/{package.id}")),
        }

    def _resource(
        self, portal: str, package: Package, position: int, resource: Resource
    ) -> dict[str, Any]:
        url = f"{portal}/dataset/{package.id}/resource/{resource.id}/download/{resource.filename}"
        return {
            "mimetype": CSV_TYPE,
            "cache_url": None,
            "hash": "",
            "description": resource.description,
            "name": resource.name,
            "format": "CSV",
            "url": url,
            "datastore_active": False,
            "cache_last_updated": None,
            "package_id": package.id,
            "created": resource.created.isoformat(),
            "state": "active",
            "mimetype_inner": None,
            "last_modified": resource.last_modified.isoformat(),
            "position": position,
            "revision_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-kommune/{resource.id}")),
            "url_type": "upload",
            "id": resource.id,
            "resource_type": None,
            "size": len(resource.content),
        }


def _number(params: Mapping[str, Any], key: str, default: int, maximum: int | None = None) -> int:
    value = params.get(key, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise CkanRequestError(
            409, {key: ["Invalid integer"], "__type": "Validation Error"}
        ) from None
    if number < 0:
        raise CkanRequestError(
            409, {key: ["Must be a natural number"], "__type": "Validation Error"}
        )
    if maximum is not None and number > maximum:
        raise CkanRequestError(
            409,
            {key: [f"Must be less than or equal to {maximum}"], "__type": "Validation Error"},
        )
    return number


def _matches_q(package: Package, q: str) -> bool:
    if q.strip() in ("", "*:*"):
        return True
    text = " ".join((package.title, package.notes, *package.tags)).casefold()
    return all(word in text for word in q.casefold().split())


def _matches_fq(package: Package, fq: str) -> bool:
    for clause in fq.split():
        key, sep, value = clause.partition(":")
        value = value.strip('"')
        if not sep or key.lstrip("+") not in ("organization", "tags", "name"):
            raise CkanRequestError(
                400,
                {
                    "message": f"Search Query is invalid: cannot read fq clause {clause!r}",
                    "__type": "Search Query Error",
                },
            )
        key = key.lstrip("+")
        if key == "organization" and value != ORGANIZATION:
            return False
        if key == "tags" and value not in package.tags:
            return False
        if key == "name" and value != package.name:
            return False
    return True
