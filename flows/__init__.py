"""Flows: the store, Prefect orchestration, parquet tables, the HTML report and the `genprint` command."""
