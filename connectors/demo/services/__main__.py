"""`python -m connectors.demo.services [--persons N] [--seed S] [--port P]`: serve till Ctrl-C."""

from __future__ import annotations

import argparse
import threading

from .server import DEMO_API_KEY, DemoServices


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectors.demo.services")
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEMO_API_KEY)
    args = parser.parse_args(argv)
    services = DemoServices(args.persons, args.seed, api_key=args.api_key, port=args.port)
    urls = services.start()
    print(f"Datafordeler GraphQL: {urls.datafordeler}/DAR/v1?apiKey={urls.api_key} (and /BBR/v1)")
    print(f"StatBank:             {urls.statbank}/tableinfo, {urls.statbank}/data (table DEMOFOLK)")
    print(f"CVR (Elasticsearch):  {urls.cvr}/cvr-permanent/virksomhed/_search (Basic auth:")
    print(f"                      {urls.cvr_username} / {urls.cvr_password})")
    print(f"CKAN:                 {urls.ckan}/api/3/action/package_search")
    print(f"Vendor REST:          {urls.vendor}?page=1 (Bearer {urls.vendor_token})")
    print("Ctrl-C stops.")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        services.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
