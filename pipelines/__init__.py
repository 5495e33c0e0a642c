"""Dagster wiring for the Perception Tokens pipeline (the only package that imports dagster)."""
