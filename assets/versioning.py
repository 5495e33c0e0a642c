"""Code versions that also move when an asset's configuration moves.

Dagster marks an asset stale when its code version changes; folding a fingerprint of the
asset's settings section into it means an edited config file marks exactly that asset
(and, through data versions, its descendants) stale after the code location reloads.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def code_version(logic_version: str, *config_sections: Any) -> str:
    payload = [s.model_dump(mode="json") if hasattr(s, "model_dump") else s for s in config_sections]
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{logic_version}+{digest}"
