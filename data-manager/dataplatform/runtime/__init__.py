"""Running the platform: code-location config, the dagster-init supervisor, derived configs.

Nothing here imports Dagster at module level, so the CLI and the supervisor stay light.
"""
