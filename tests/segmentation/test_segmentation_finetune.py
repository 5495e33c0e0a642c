"""The [SEG] -> SAM2 head in the LoRA fine-tune on the tiny LLaVA and the tiny Qwen2.5-VL: the segmentation
loss falls on a fixed example, the SAM2 image encoder stays as loaded while the mask decoder learns, and
the head saved beside the adapter reloads in a fresh process with the same mask logits."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from seg_records import square_records

from perception_tokens import token_kinds, vocab
from training.backends import get_backend, reload_segmentation_head
from training.finetune.config import FinetuneConfig
from training.finetune.lora import LoraSettings
from training.segmentation.sam2 import load_sam2
from training.segmentation.settings import SegmentationSettings

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module", autouse=True)
def builtin_vocabulary_after():
    yield
    token_kinds.disable("seg")  # a run enables [SEG] process-wide; later test modules expect the builtin vocabulary


def run(family: str, root: Path, steps: int = 20):
    records = square_records(root)
    config = FinetuneConfig(checkpoint="tiny", max_steps=steps, per_device_batch_size=4, lr=1e-2, projector_lr=1e-3,
                            warmup_ratio=0.0, logging_steps=1, save_steps=1000, lora=LoraSettings(r=8, alpha=16),
                            segmentation=SegmentationSettings(enabled=True, lr=3e-2))
    metrics = []
    result = get_backend(family).run_finetune(config, records, root / "images", root / "run", log=lambda _m: None,
                                              metrics_callback=metrics.append)
    return records, result, metrics


@pytest.fixture(scope="module")
def llava_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg_llava")
    records, result, metrics = run("llava", root)
    return {"root": root, "records": records, "result": result, "metrics": metrics}


def seg_losses(metrics):
    return [m["seg_total_loss"] for m in metrics if "seg_total_loss" in m]


def test_segmentation_loss_falls_on_a_fixed_example(llava_run):
    losses = seg_losses(llava_run["metrics"])
    assert len(losses) == 20
    assert sum(losses[-3:]) / 3 < 0.75 * sum(losses[:3]) / 3, losses
    assert all(m["seg_bce_loss"] > 0 and 0 < m["seg_dice_loss"] < 1 for m in llava_run["metrics"])


def test_encoder_is_frozen_and_the_mask_decoder_learns(llava_run):
    adapter = llava_run["result"].adapter_dir
    head = reload_segmentation_head(adapter)
    fresh = load_sam2("tiny", seed=0)  # what the run started from (seed 0)
    for name, p in fresh.vision_encoder.state_dict().items():
        assert torch.equal(head.sam2.vision_encoder.state_dict()[name], p), name
    # only the mask decoder and the projection are given to the optimizer
    trainable = {n.split(".")[0] if not n.startswith("sam2.") else ".".join(n.split(".")[:2])
                 for n, p in head.named_parameters() if p.requires_grad}
    assert trainable == {"sam2.mask_decoder", "projection"}
    changed = [n for n, p in fresh.mask_decoder.state_dict().items()
               if not torch.equal(head.sam2.mask_decoder.state_dict()[n], p)]
    assert len(changed) > 10
    saved = json.loads((adapter / "segmentation_head.json").read_text())
    assert saved["sam2_checkpoint"] == "tiny" and saved["llm_hidden_size"] == 64
    assert json.loads((adapter / "token_map.json").read_text())["tokens"]["[SEG]"] > 0


MASKS_SCRIPT = """
import json, sys, torch
torch.set_num_threads(1)
from training.backends import reload_adapter, reload_segmentation_head
from training.llava.data import ConversationDataset, LlavaCollator
from training.segmentation.training import SegmentationCollator, SegmentationDataset, teacher_forced_masks
adapter, image_dir, records = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
model, processor = reload_adapter(adapter)
head = reload_segmentation_head(adapter)
dataset = SegmentationDataset(ConversationDataset(records, image_dir, processor), head)
batch = SegmentationCollator(LlavaCollator(pad_token_id=processor.tokenizer.pad_token_id))([dataset[i] for i in range(len(dataset))])
masks = teacher_forced_masks(model, head, batch, processor.tokenizer.convert_tokens_to_ids("[SEG]"))
print(json.dumps([m.tolist() for m in masks]))
"""


def masks_in_a_fresh_process(adapter, image_dir, records):
    proc = subprocess.run([sys.executable, "-c", MASKS_SCRIPT, str(adapter), str(image_dir), json.dumps(records)],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [torch.tensor(m) for m in json.loads(proc.stdout.strip().splitlines()[-1])]


def test_head_reloads_in_a_fresh_process_with_the_same_mask_logits(llava_run):
    from training.backends import reload_adapter
    from training.llava.data import ConversationDataset, LlavaCollator
    from training.segmentation.training import SegmentationCollator, SegmentationDataset, teacher_forced_masks

    adapter, images, records = llava_run["result"].adapter_dir, llava_run["root"] / "images", llava_run["records"][:2]
    there = masks_in_a_fresh_process(adapter, images, records)
    model, processor = reload_adapter(adapter)
    head = reload_segmentation_head(adapter)
    dataset = SegmentationDataset(ConversationDataset(records, images, processor), head)
    batch = SegmentationCollator(LlavaCollator(pad_token_id=processor.tokenizer.pad_token_id))([dataset[0], dataset[1]])
    here = teacher_forced_masks(model, head, batch, processor.tokenizer.convert_tokens_to_ids("[SEG]"))
    assert [tuple(m.shape) for m in there] == [(112, 112), (112, 112)]  # at the ground truth's size
    for a, b in zip(here, there):
        assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(there[0], there[1])  # each image and [SEG] state gives its own mask
    # a head that was not reloaded (fresh mask decoder and projection) gives other logits
    fresh = type(head).build("tiny", head.llm_hidden_size)
    other = teacher_forced_masks(model, fresh, batch, processor.tokenizer.convert_tokens_to_ids("[SEG]"))
    assert not torch.allclose(other[0], there[0], atol=1e-3)


def test_qwen_family_trains_the_head_too(tmp_path):
    records, result, metrics = run("qwen2_5_vl", tmp_path, steps=8)
    losses = seg_losses(metrics)
    assert len(losses) == 8 and losses[-1] < losses[0]
    head = reload_segmentation_head(result.adapter_dir)
    assert head is not None and head.llm_hidden_size == 64
    assert json.loads((result.adapter_dir / "token_map.json").read_text())["tokens"]["[SEG]"] > 0
    assert vocab.all_tokens()[-1] == "[SEG]"


def test_checkpoints_carry_the_head_and_a_resume_reloads_it(tmp_path):
    from training.segmentation.head import SegmentationHead
    from training.segmentation.training import SegmentationTraining

    records = square_records(tmp_path)
    config = FinetuneConfig(checkpoint="tiny", max_steps=4, per_device_batch_size=4, lr=1e-2, warmup_ratio=0.0,
                            logging_steps=1, save_steps=2, lora=LoraSettings(r=8, alpha=16),
                            segmentation=SegmentationSettings(enabled=True, lr=3e-2))
    backend = get_backend("llava")
    backend.run_finetune(config, records, tmp_path / "images", tmp_path / "run", log=lambda _m: None)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert (checkpoints / "checkpoint-4" / "segmentation_head.safetensors").is_file()
    at_4 = reload_segmentation_head(tmp_path / "run" / "adapter")
    config.max_steps = 6
    said, metrics = [], []
    backend.run_finetune(config, records, tmp_path / "images", tmp_path / "run", log=said.append, metrics_callback=metrics.append)
    assert any("resuming from" in m and m.endswith("checkpoint-4") for m in said)
    assert [m["step"] for m in metrics] == [5, 6]
    # the resumed run went on from checkpoint 4's head (2 more steps), not from a fresh one
    at_6 = reload_segmentation_head(tmp_path / "run" / "adapter")
    fresh = SegmentationHead.build("tiny", 64)

    def distance(a, b):
        return sum(float((x - y).detach().norm()) for x, y in zip(a.trainable_parameters(), b.trainable_parameters()))

    assert 0 < distance(at_6, at_4) < distance(at_6, fresh)
    training = SegmentationTraining(SegmentationHead.build("tiny", 64), 0, config.segmentation)
    with pytest.raises(ValueError, match="has no segmentation_head.safetensors; cannot resume"):
        training.load_checkpoint(tmp_path)
    training.load_checkpoint(checkpoints / "checkpoint-4")
    assert torch.equal(training.head.projection[0].weight, at_4.projection[0].weight)
