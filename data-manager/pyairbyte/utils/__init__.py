"""The guide's utility modules. Framework-free: nothing here imports Dagster.

PyAirbyte reads its settings (offline mode, install and cache directories) once, when `airbyte`
is first imported. Setting them here, when the utils package is imported, means they are in place
whichever code imports airbyte first. This only sets env defaults; it imports nothing heavy.
"""

from pyairbyte.utils.airbyte_env import configure_airbyte_environment

configure_airbyte_environment(create_dirs=False)
