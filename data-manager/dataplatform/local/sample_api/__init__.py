"""A local stand-in for dummyjson.com `/products`, which is unreachable from our hosts.

Same response shape and limit/skip pagination, serving fixture data (products.json). Demos
(`make up`) run it as a process: `python -m dataplatform.local.sample_api --port 8765`;
tests start it in a thread with `SampleProductsApi(...).start()` and can make it fail on purpose.
"""

from dataplatform.local.sample_api.server import SampleProductsApi, load_fixture_products

__all__ = ["SampleProductsApi", "load_fixture_products"]
