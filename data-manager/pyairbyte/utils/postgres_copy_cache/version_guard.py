"""Fail loudly when the installed PyAirbyte is not the release this package was written against.

The cache processor and the declarative-state patch build on PyAirbyte internals (private methods
of `SqlProcessorBase` and `DeclarativeExecutor`). Those change between releases without notice, so
running against another version could silently lose data instead of failing.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from pyairbyte.errors import UnsupportedAirbyteVersionError

__all__ = ["SUPPORTED_AIRBYTE_VERSION", "UnsupportedAirbyteVersionError", "check_airbyte_version"]

SUPPORTED_AIRBYTE_VERSION = "0.71.3"


def check_airbyte_version() -> None:
    """Raise `UnsupportedAirbyteVersionError` unless airbyte==0.71.3 is installed."""
    try:
        installed = version("airbyte")
    except PackageNotFoundError:
        installed = None
    if installed != SUPPORTED_AIRBYTE_VERSION:
        raise UnsupportedAirbyteVersionError(
            f"pyairbyte.utils.postgres_copy_cache supports airbyte=={SUPPORTED_AIRBYTE_VERSION}, "
            f"but {'airbyte is not installed' if installed is None else f'airbyte {installed} is'}"
            f". It patches and subclasses PyAirbyte internals (SqlProcessorBase, "
            f"DeclarativeExecutor.execute). Fix: pin airbyte=={SUPPORTED_AIRBYTE_VERSION} in "
            f"pyproject.toml, or re-verify these internals against the new release and update "
            f"SUPPORTED_AIRBYTE_VERSION."
        )
