"""A small vendor REST API: the road department's work-order system (*driftssystem*).

``GET /vendor/api/v2/work-orders?page=N&page_size=S`` with ``Authorization: Bearer <token>``
answers one page of work orders (potholes, street lights, signs, ...) at demo addresses::

    {"data": {"items": [{...}, ...]},
     "meta": {"page": 1, "page_size": 50, "total_items": 123, "total_pages": 3}}

Items are flat JSON objects (``order_id``, ``category``, ``status``, ``priority``, the
address as ``street``/``house_number``/``postcode``/``district``/``address_id`` and the
timestamps ``reported_at``/``updated_at``/``closed_at`` in UTC) in ``order_id`` order, so a
page always holds the same orders. No person data: orders record the fault, not who
reported it. Everything is fixed by (persons, seed).

There is no real service to copy, so every status code is a **guess** modelled on common
practice: no or a wrong token is 401 with ``WWW-Authenticate: Bearer`` (RFC 6750) and
``{"error": {"code": "unauthorized", ...}}``; ``page`` below 1, a non-number or
``page_size`` outside 1..``MAX_PAGE_SIZE`` is 400 ``invalid_parameter``; a page after the
last is 200 with no items (so a client that pages to an empty page stops cleanly).
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ..dates import EXTRACT_DATE
from ..generator import stream
from ..people import Population
from .statbank import Answer

PATH = ("vendor", "api", "v2", "work-orders")
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 25
JSON_TYPE = "application/json; charset=utf-8"

CATEGORIES = (
    ("Hul i vejen", 6),
    ("Gadelys ude", 5),
    ("Skilt væltet", 2),
    ("Tilstoppet rist", 3),
    ("Glatførebekæmpelse", 2),
    ("Graffiti", 2),
)
PRIORITIES = ("lav", "normal", "høj")
STATUSES = ("modtaget", "planlagt", "igangsat", "afsluttet")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def work_orders(population: Population, seed: int) -> list[dict[str, Any]]:
    """The work orders, in ``order_id`` order."""
    rng = stream(seed, "services/vendor")
    count = max(10, len(population.persons) // 8)
    end = datetime(EXTRACT_DATE.year, EXTRACT_DATE.month, EXTRACT_DATE.day, tzinfo=UTC)
    orders = []
    for number in range(1, count + 1):
        address = rng.choice(population.addresses)
        category = rng.choices([c for c, _ in CATEGORIES], [w for _, w in CATEGORIES])[0]
        reported = end - timedelta(seconds=rng.randint(3600, 540 * 86400))
        status = rng.choices(STATUSES, (1, 1, 1, 6))[0]
        updated = min(end - timedelta(minutes=5), reported + timedelta(hours=rng.randint(1, 900)))
        street = address.street
        orders.append(
            {
                "order_id": f"WO-{number:06d}",
                "category": category,
                "status": status,
                "priority": rng.choices(PRIORITIES, (3, 6, 1))[0],
                "street": street.name,
                "house_number": address.husnr,
                "postcode": street.postnr,
                "district": street.district,
                "address_id": address.id,
                "reported_at": _iso(reported),
                "updated_at": _iso(updated),
                "closed_at": _iso(updated) if status == "afsluttet" else None,
            }
        )
    return orders


def _json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Answer:
    body = _json({"error": {"code": code, "message": message}})
    return Answer(status, JSON_TYPE, body, dict(headers or {}))


class VendorService:
    """Answers work-order page requests; read-only, so thread-safe."""

    def __init__(self, population: Population, seed: int, *, token: str) -> None:
        self.orders = work_orders(population, seed)
        self._token = token

    def handle(self, query: Mapping[str, str], authorization: str) -> Answer:
        scheme, _, given = authorization.partition(" ")
        if scheme.casefold() != "bearer" or not hmac.compare_digest(given, self._token):
            return _error(
                401,
                "unauthorized",
                "A valid bearer token is required.",
                {"WWW-Authenticate": 'Bearer realm="work-orders"'},
            )
        try:
            page = int(query.get("page", "1"))
            size = int(query.get("page_size", str(DEFAULT_PAGE_SIZE)))
        except ValueError:
            return _error(400, "invalid_parameter", "page and page_size must be integers.")
        if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            return _error(
                400,
                "invalid_parameter",
                f"page must be >= 1 and page_size 1..{MAX_PAGE_SIZE}.",
            )
        items = self.orders[(page - 1) * size : page * size]
        meta = {
            "page": page,
            "page_size": size,
            "total_items": len(self.orders),
            "total_pages": math.ceil(len(self.orders) / size),
        }
        return Answer(200, JSON_TYPE, _json({"data": {"items": items}, "meta": meta}))
