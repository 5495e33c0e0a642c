"""Run tags the project's runner sets and assets read.

``ptok materialize --force`` (``pipelines/runner.py``) launches each step with ``FORCE_TAG``, so an
asset that would otherwise reuse earlier work (``depth_vqvae`` resumes a finished training run
from its ``train_state.pt``) computes it again. A run launched from the UI can carry the same tag.
"""

from __future__ import annotations

import dagster as dg

FORCE_TAG = "ptok/force"


def is_forced(context: dg.AssetExecutionContext) -> bool:
    """Whether this run asked to recompute rather than reuse (``FORCE_TAG`` set to "true")."""
    try:
        tags = context.run.tags
    except dg.DagsterError:  # invoked directly (dg.build_asset_context) without a run
        return False
    return str(tags.get(FORCE_TAG, "")).lower() == "true"
