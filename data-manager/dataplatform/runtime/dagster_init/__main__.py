"""`python -m dataplatform.runtime.dagster_init`, the same as `dataplatform dagster-init`."""

from dataplatform.runtime.dagster_init.cli import command

command(prog_name="dagster-init")
