"""execution.engine: ray on a local 2-CPU Ray cluster: same rows as in-process, a killed
worker's batch is rerun with nothing lost, a bad image becomes a reject."""

import os
import signal
import sys
import zlib
from functools import partial

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from perception_tokens.curriculum.marking import MarkingOptions, MarkingWorker  # noqa: E402
from perception_tokens.depth import build_teacher  # noqa: E402
from perception_tokens.depth.on_engine import label_images_on  # noqa: E402
from perception_tokens.engine import EngineSettings, ensure_ray, map_batches  # noqa: E402

INPROCESS = EngineSettings()
RAY = EngineSettings(kind="ray", num_workers=2, num_cpus=2, object_store_mb=96, max_restarts=2)


@pytest.fixture(scope="module")
def cluster():
    # Test-module helpers travel by value: the Ray workers cannot import the tests package.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ensure_ray(RAY)
    yield
    ray.shutdown()


def image_shape(image_id: str) -> tuple[int, int]:
    k = zlib.crc32(image_id.encode()) % 7
    return 24 + k, 32 + 2 * k


def scene_depth(dataset: str, image_id: str) -> np.ndarray:
    h, w = image_shape(image_id)
    yy, xx = np.mgrid[0:h, 0:w]
    return 1.0 + (xx + 2 * yy + zlib.crc32(image_id.encode()) % 11) / 10.0


def make_teacher():
    return build_teacher("ground_truth", depth_fn=scene_depth, name="test_scenes")


def images(n: int, bad: set[int] = frozenset()):
    rng = np.random.default_rng(0)
    for i in range(n):
        image_id = f"img{i:03d}"
        h, w = image_shape(image_id)
        rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        if i in bad:
            rgb = rgb[:, :, 0]  # one channel: not an RGB image
        yield "ade20k", image_id, rgb


def label(engine, n=23, bad=frozenset()):
    rejects = []
    results = list(label_images_on(engine, make_teacher, images(n, bad), batch_size=4,
                                   on_reject=lambda *r: rejects.append(r)))
    return results, rejects


def test_depth_rows_on_ray_equal_the_inprocess_rows(cluster):
    local, local_rejects = label(INPROCESS)
    remote, remote_rejects = label(RAY)
    assert [r.image_id for r in remote] == [f"img{i:03d}" for i in range(23)]
    assert [(r.image_id, r.depth_png, r.raw_min, r.raw_max, r.width, r.height) for r in remote] == \
        [(r.image_id, r.depth_png, r.raw_min, r.raw_max, r.width, r.height) for r in local]
    assert remote_rejects == local_rejects == []


def test_marked_points_on_ray_equal_the_inprocess_rows(cluster):
    import cv2

    opts = MarkingOptions(seed=3, min_points=2, max_points=4, variants=("beside", "center"))
    results, _ = label(INPROCESS, n=9)
    items = []
    for (dataset, image_id, rgb), res in zip(images(9), results):
        ok, enc = cv2.imencode(".png", rgb)
        items.append((dataset, {"image_id": image_id, "split": "train", "image_bytes": enc.tobytes()}, res.depth_png))
    local = [row for batch in map_batches(partial(MarkingWorker, opts), items, batch_size=4, engine=INPROCESS) for row in batch]
    remote = [row for batch in map_batches(partial(MarkingWorker, opts), items, batch_size=4, engine=RAY) for row in batch]
    assert remote == local
    assert sum(isinstance(r, dict) for _, _, r in local) >= 5  # most images got markers


def test_a_bad_image_becomes_a_reject_not_a_failed_job(cluster):
    results, rejects = label(RAY, bad={5, 17})
    assert [r.image_id for r in results] == [f"img{i:03d}" for i in range(23) if i not in (5, 17)]
    assert [(d, i) for d, i, _ in rejects] == [("ade20k", "img005"), ("ade20k", "img017")]
    assert all(reason for _, _, reason in rejects)


class SquareOnceDying:
    """Squares numbers; the first process to see ``victim`` kills itself with SIGKILL."""

    def __init__(self, marker: str, victim: int):
        self.marker, self.victim = marker, victim

    def __call__(self, batch):
        if self.victim in batch and not os.path.exists(self.marker):
            with open(self.marker, "w") as fh:
                fh.write(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)  # a real worker death, mid-batch
        return [(x, x * x, os.getpid()) for x in batch]


def test_a_worker_killed_mid_run_is_restarted_and_nothing_is_lost(cluster, tmp_path):
    marker = str(tmp_path / "killed")
    out = [row for batch in map_batches(lambda: SquareOnceDying(marker, victim=37), range(100), batch_size=5, engine=RAY)
           for row in batch]
    assert [(x, y) for x, y, _ in out] == [(x, x * x) for x in range(100)]  # each once, in order
    killed_pid = int(open(marker).read())
    assert os.path.exists(marker)
    assert killed_pid not in {pid for x, _, pid in out if 35 <= x < 40}  # the batch was rerun elsewhere


def test_a_batch_that_keeps_failing_names_its_first_item(cluster):
    def make():
        def worker(batch):
            if 7 in batch:
                raise ValueError("teacher exploded")
            return batch
        return worker

    with pytest.raises(RuntimeError, match="starting with int.*teacher exploded"):
        list(map_batches(make, range(12), batch_size=3, engine=RAY))


def test_depth_codes_on_ray_equal_the_inprocess_codes(cluster, tmp_path):
    import torch

    from training.vqvae import DepthVQVAE, save_vqvae, tiny_config
    from training.vqvae.on_engine import code_batches

    yy, xx = np.mgrid[0:40, 0:50]
    maps = [((xx * (i + 1) * 3 + yy * (19 - i) * 2) % 256).astype(np.uint8) for i in range(19)]
    # A fresh codebook maps everything to one code; seed it with the encoder's own features
    # of these maps (as k-means init would) so the codes differ and the comparison means something.
    torch.manual_seed(0)
    model = DepthVQVAE(tiny_config()).eval()
    from training.vqvae.data import model_input

    with torch.no_grad():
        z = model.encode_latents(model_input(maps, model.config))
    features = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    with torch.no_grad():
        model.quantizer.embedding.copy_(features[torch.randperm(len(features))[:len(model.quantizer.embedding)]])
    save_vqvae(model, tmp_path / "vq")
    local = list(code_batches(INPROCESS, str(tmp_path / "vq"), maps, batch_size=4))
    remote = list(code_batches(RAY, str(tmp_path / "vq"), maps, batch_size=4))
    assert [a.shape for a in remote] == [a.shape for a in local] == [(4, 100)] * 4 + [(3, 100)]
    assert all(np.array_equal(a, b) for a, b in zip(remote, local))
    assert len({int(c) for a in local for c in a.ravel()}) > 20  # real codes, not one constant
