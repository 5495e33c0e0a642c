"""Evaluation reloads adapters through the backends; that path must not import the trainer."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from training.backends import get_backend
backends = [get_backend(f) for f in ("llava", "qwen2_5_vl")]
heavy = ("training.finetune.trainer", "training.finetune.session", "training.llava.train",
         "training.backends.qwen2_5_vl.train", "transformers.trainer")
print(json.dumps({"loaded": [m for m in heavy if m in sys.modules], "recipes": [b.recipe for b in backends]}))
"""


def test_backends_load_without_the_trainer_and_name_their_recipes():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []
    assert out["recipes"] == ["training.llava.train", "training.backends.qwen2_5_vl.train"]
