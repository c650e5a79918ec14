"""The data-manager's Python package: framework-free utils for syncing and caching data.

Nothing here imports Dagster. Heavy libraries (airbyte, pandas, dbt) are imported lazily inside
functions, because code locations that import this package are long-running gRPC servers.
"""
