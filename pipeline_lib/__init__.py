"""The Dagster-facing library that assets are built from.

Settings and profiles, resources, the Parquet IO manager and staged tables, emit/lineage/metadata
helpers, history, the DuckDB catalog, executors, partition files and source fingerprints. It sits
below ``assets/`` and above the pure packages (``perception_tokens``, ``training``, ``evaluation``);
it never imports ``assets`` or ``pipelines`` (tests/architecture/test_layers.py).
"""
