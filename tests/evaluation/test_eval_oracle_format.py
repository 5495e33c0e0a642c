"""The oracle-token ablation turns the teacher's raw depth into uint8 with the teacher's own
image format (run.py's float32 min-max for the Depth Anything V1 run.py teacher), as
pseudo_depth stored the maps the VQ-VAE was trained on."""

import cv2
import numpy as np
import pytest
import torch

import training.vqvae as vqvae_pkg
from assets.evaluation import oracle_tokens_fn
from perception_tokens.depth import PROJECT_FORMAT, RUN_PY_FORMAT
from perception_tokens.vocab import decode_depth
from training.vqvae.model import DepthVQVAE, tiny_config

# 0, 1.4, 7 repeated: float32 min-max gives 1.4 -> 51, float64 gives 50 (1.4/7*255 = 50.99999...)
RAW = np.resize(np.array([0.0, 1.4, 7.0], dtype=np.float32), (12, 12))


class _Teacher:
    def __init__(self, image_format=None):
        if image_format is not None:
            self.image_format = image_format
        self.calls = 0

    def predict(self, images, keys):
        self.calls += 1
        assert images[0].shape == (12, 12, 3) and keys == [("blink", "q1")]
        return [RAW.copy()]


def _row():
    ok, png = cv2.imencode(".png", np.full((12, 12, 3), 128, np.uint8))
    assert ok
    return {"benchmark": "blink", "subset": "Relative_Depth", "question_id": "q1", "image_bytes": png.tobytes()}


@pytest.mark.parametrize("image_format, expected", [
    (RUN_PY_FORMAT, [0, 51, 255]),  # the V1 run.py teacher: float32 arithmetic
    (PROJECT_FORMAT, [0, 50, 255]),
    (None, [0, 50, 255]),  # a teacher without image_format: the project's float64 min-max
])
def test_oracle_uses_the_teachers_image_format(monkeypatch, image_format, expected):
    seen = []
    real_extract = vqvae_pkg.extract_codes

    def recording_extract(model, maps, batch_size=64, device=None):
        maps = list(maps)
        seen.extend(maps)
        return real_extract(model, maps, batch_size=batch_size, device=device)

    monkeypatch.setattr(vqvae_pkg, "extract_codes", recording_extract)
    torch.manual_seed(0)
    model = DepthVQVAE(tiny_config()).eval()
    teacher = _Teacher(image_format)

    tokens = oracle_tokens_fn(teacher, model, None)(_row())

    assert teacher.calls == 1 and len(seen) == 1
    depth_u8 = seen[0]
    assert depth_u8.dtype == np.uint8 and depth_u8.shape == (12, 12)
    assert depth_u8.ravel()[:3].tolist() == expected
    assert sorted(np.unique(depth_u8).tolist()) == expected
    codes = decode_depth(tokens)
    assert len(codes) == 100 and all(0 <= c < 128 for c in codes)
