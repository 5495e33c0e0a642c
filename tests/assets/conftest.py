"""Fixtures of the asset unit tests; the helpers they share are in asset_unit_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from asset_unit_helpers import TINY_DEMO, make_settings


@pytest.fixture
def tiny_world(tmp_path: Path):
    """The demo writers' ADE20K / LVIS / RefCOCO layouts with 3 / 2 / 2 images, under tmp_path/demo."""
    from perception_tokens.demo import write_demo_datasets

    settings = make_settings(tmp_path)
    manifest = write_demo_datasets(settings.demo_root, **{k: v for k, v in TINY_DEMO.items() if k not in ("width", "height")},
                                   image_size=(TINY_DEMO["width"], TINY_DEMO["height"]))
    return settings, manifest
