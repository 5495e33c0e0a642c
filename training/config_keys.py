"""Configs read back from dicts (JSON, YAML) refuse keys their dataclass does not have."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping


def dataclass_kwargs(cls: type, data: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``data`` as keyword arguments for dataclass ``cls``; a ValueError names every unknown key
    (``unknown <what> keys: [...]``) instead of a TypeError about the first."""
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what} keys: {unknown}")
    return dict(data)
