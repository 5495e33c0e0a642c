"""Dagster assets, one module per stage. Thin: read config, call pure code, write metadata."""
