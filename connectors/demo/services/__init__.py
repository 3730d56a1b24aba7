"""The Demo Kommune serves its registers and a statistics table over HTTP on 127.0.0.1.

So that the demo exercises the API path end to end, not only file drops:

- a Datafordeler-like GraphQL service (``/DAR/v1``, ``/BBR/v1``, key in ``apiKey``) over the
  demo's addresses, husnumre, streets, postcodes, buildings and units, with bitemporal
  history (``datafordeler``, ``registers``);
- a StatBank-like service (``/v1/tableinfo``, ``/v1/data``) with ``DEMOFOLK``, the
  population by district, sex and quarter (``statbank``);
- a CVR-like Elasticsearch (``_search`` + scroll, HTTP Basic auth) with the demo's companies
  in CVR's ``Vrvirksomhed`` format and no person data (``cvr``);
- a CKAN-like open-data portal (``package_search``, ``package_show``, CSV downloads) with the
  municipality's day-care institutions and playgrounds (``ckan``);
- a vendor REST API with page-number paging and a bearer token: the road department's work
  orders (``vendor``).

Usage::

    from connectors.demo.services import DemoServices

    with DemoServices(persons=20_000, seed=2026) as urls:
        urls.datafordeler  # http://127.0.0.1:PORT   (POST /DAR/v1?apiKey=urls.api_key)
        urls.statbank      # http://127.0.0.1:PORT/v1
        urls.cvr           # http://127.0.0.1:PORT   (Basic urls.cvr_username/cvr_password)
        urls.ckan          # http://127.0.0.1:PORT/ckan
        urls.vendor        # http://127.0.0.1:PORT/vendor/api/v2/work-orders (urls.vendor_token)

or ``services.start()`` / ``services.stop()``; ``python -m connectors.demo.services`` runs
them in the foreground. Same (persons, seed) as ``connectors.demo.generate`` = same data.
"""

from .server import (
    DEMO_API_KEY,
    DEMO_CVR_PASSWORD,
    DEMO_CVR_USERNAME,
    DEMO_VENDOR_TOKEN,
    DemoServices,
    SeenRequest,
    ServiceUrls,
)

__all__ = [
    "DEMO_API_KEY",
    "DEMO_CVR_PASSWORD",
    "DEMO_CVR_USERNAME",
    "DEMO_VENDOR_TOKEN",
    "DemoServices",
    "SeenRequest",
    "ServiceUrls",
]
