"""dbt around the code locations: its settings (`settings.py`) and the prepared manifest
(`manifest.py`). Here, not in `pyairbyte`, because the guide's utils never run dbt."""
