"""The demo's vendor REST API (road work orders): page-number paging, a bearer token, and
the generic REST connector reading it from a YAML-style config with the token from the
environment."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connectors.demo.services import ServiceUrls
from connectors.demo.services.registers import build_registers
from connectors.demo.services.vendor import MAX_PAGE_SIZE, work_orders
from connectors.http import HttpError
from connectors.rest import RestSource
from tests.demo.conftest import LOCAL, SEED

ITEM_KEYS = {"order_id", "category", "status", "priority", "street", "house_number"}
ITEM_KEYS |= {"postcode", "district", "address_id", "reported_at", "updated_at", "closed_at"}


def get(urls: ServiceUrls, token: str | None = None, **params: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or urls.vendor_token}"}
    return httpx.get(urls.vendor, params=params, headers=headers, trust_env=False)


def source(urls: ServiceUrls, size: int, token: str) -> RestSource:
    config = {
        "type": "rest",
        "name": "work_orders",
        "url": urls.vendor,
        "auth": {"type": "bearer"},
        "paging": {"type": "page_number", "page_param": "page", "size_param": "page_size"}
        | {"size": size},
        "records_path": "data.items",
    }
    return RestSource.from_config(config, {"SOURCES__WORK_ORDERS__TOKEN": token}, settings=LOCAL)


def test_pages_hold_every_order_once_in_order(urls, services):
    assert services.vendor is not None
    orders = services.vendor.orders
    first = get(urls, page=1, page_size=7).json()
    assert first["meta"] == {
        "page": 1,
        "page_size": 7,
        "total_items": len(orders),
        "total_pages": -(-len(orders) // 7),
    }
    seen = []
    for page in range(1, first["meta"]["total_pages"] + 2):
        seen += get(urls, page=page, page_size=7).json()["data"]["items"]
    assert [o["order_id"] for o in seen] == sorted(o["order_id"] for o in orders)
    assert all(set(o) == ITEM_KEYS for o in seen)  # flat, and nobody who reported it
    assert get(urls, page=999, page_size=7).json()["data"]["items"] == []


def test_rest_connector_reads_every_order_with_as_many_requests_as_pages(urls, services):
    assert services.vendor is not None
    before = len(services.seen())
    pages = list(source(urls, 40, urls.vendor_token).pages())
    records = [r for p in pages for r in p.records]
    assert records == services.vendor.orders
    requests = services.seen()[before:]
    numbers = [parse_qs(urlsplit(r.path).query)["page"] for r in requests]
    assert numbers == [[str(n)] for n in range(1, len(pages) + 1)]
    assert len(pages) == -(-len(records) // 40) + (len(records) % 40 == 0)
    assert pages[-1].state == {"paging": None}


def test_a_missing_or_wrong_token_is_refused(urls):
    anonymous = httpx.get(urls.vendor, trust_env=False)
    wrong = get(urls, token="not-the-token")
    for answer in (anonymous, wrong):
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert answer.json()["error"]["code"] == "unauthorized"
    with pytest.raises(HttpError) as caught:
        list(source(urls, 40, "not-the-token").pages())
    assert caught.value.status == 401 and "not-the-token" not in str(caught.value)


def test_bad_paging_parameters_are_400(urls):
    for params in ({"page": 0}, {"page_size": MAX_PAGE_SIZE + 1}, {"page": "x"}):
        answer = get(urls, **params)
        assert answer.status_code == 400, params
        assert answer.json()["error"]["code"] == "invalid_parameter"


def test_orders_are_deterministic_and_closed_after_they_were_reported():
    population = build_registers(300, SEED).population
    orders = work_orders(population, SEED)
    assert orders == work_orders(population, SEED)
    assert orders != work_orders(build_registers(300, SEED + 1).population, SEED + 1)
    ids = {a.id for a in population.addresses}
    for order in orders:
        assert order["address_id"] in ids
        assert (order["closed_at"] is None) == (order["status"] != "afsluttet")
        assert order["reported_at"] <= order["updated_at"]
