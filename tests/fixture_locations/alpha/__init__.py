"""A tiny code location for the platform tests: one asset and one job, nothing heavy."""

from dagster import Definitions, asset, define_asset_job, in_process_executor


@asset(group_name="alpha_group")
def alpha_numbers() -> list[int]:
    return [1, 2, 3]


defs = Definitions(
    assets=[alpha_numbers],
    jobs=[define_asset_job("alpha_job", selection=[alpha_numbers])],
    executor=in_process_executor,
)
