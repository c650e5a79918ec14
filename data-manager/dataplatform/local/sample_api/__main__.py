"""Run the sample products API: python -m dataplatform.local.sample_api [--host H] [--port P]."""

import argparse

from dataplatform.local.sample_api.server import SampleProductsApi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    api = SampleProductsApi(args.host, args.port)
    print(f"sample products API on {api.url}/products", flush=True)
    try:
        api.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
