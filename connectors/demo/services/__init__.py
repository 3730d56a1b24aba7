"""The Demo Kommune serves its registers and a statistics table over HTTP on 127.0.0.1.

So that the demo exercises the API path end to end, not only file drops:

- a Datafordeler-like GraphQL service (``/DAR/v1``, ``/BBR/v1``, key in ``apiKey``) over the
  demo's addresses, husnumre, streets, postcodes, buildings and units, with bitemporal
  history (``datafordeler``, ``registers``);
- a StatBank-like service (``/v1/tableinfo``, ``/v1/data``) with ``DEMOFOLK``, the
  population by district, sex and quarter (``statbank``).

Usage::

    from connectors.demo.services import DemoServices

    with DemoServices(persons=20_000, seed=2026) as urls:
        urls.datafordeler  # http://127.0.0.1:PORT   (POST /DAR/v1?apiKey=urls.api_key)
        urls.statbank      # http://127.0.0.1:PORT/v1

or ``services.start()`` / ``services.stop()``; ``python -m connectors.demo.services`` runs
them in the foreground. Same (persons, seed) as ``connectors.demo.generate`` = same data.
"""

from .server import DEMO_API_KEY, DemoServices, ServiceUrls

__all__ = ["DEMO_API_KEY", "DemoServices", "ServiceUrls"]
