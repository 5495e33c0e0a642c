"""Loading the Dagster definitions (every ``ptok`` command, the UI's code location) imports no
model library: torch, transformers, peft and matplotlib are imported by the steps that use them.

Before the fix ``import pipelines.definitions`` pulled in torch and transformers through
``perception_tokens.depth`` (its ``__init__`` imported every submodule), the fine-tune config
(``LoraSettings`` beside the peft code, ``DepthLossWeights`` beside the losses) and
``training.weights_id``: ~6 s of CPU before a no-op ``ptok demo`` could say "fresh".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "peft", "matplotlib")
PROBE = f"""
import json, sys
import pipelines.definitions
from perception_tokens.depth import decode_png
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""


def test_definitions_load_without_model_libraries(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "PTOK_WORKDIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "home"),
           "PTOK_CONFIG": str(REPO / "configs" / "demo.yaml")}
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", PROBE], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_lazy_depth_package_still_gives_every_name():
    import perception_tokens.depth as depth

    assert callable(depth.decode_png) and callable(depth.build_teacher)
    from perception_tokens.depth.preprocess import decode_png  # the old home re-exports it

    assert decode_png is depth.decode_png
    assert set(depth.__all__) <= set(dir(depth))
