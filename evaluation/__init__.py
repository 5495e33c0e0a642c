"""Evaluation stage: benchmark readers, generation with constrained decoding, answer
parsing and scoring. Pure code: no Dagster imports here."""
