"""dagster-webserver with the platform's gRPC watch interval (see grpc_watch).

    python -m dataplatform.runtime.dagster_webserver -h 127.0.0.1 -p 3030 -w workspace.yaml

Everything else is the stock command (`dagster_webserver.cli.main`), with the same arguments.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    from dagster_webserver.cli import main as webserver_main

    from dataplatform.runtime import grpc_watch

    grpc_watch.apply()
    sys.argv = ["dagster-webserver", *argv]
    webserver_main()


if __name__ == "__main__":
    main(sys.argv[1:])
