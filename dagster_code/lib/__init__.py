"""Reusable Dagster parts shared by the code locations (thin wrappers over pyairbyte utils)."""
