"""VPT's fine-tune on the tiny Qwen2-VL (arXiv 2502.17425 Sec. 3.2, 4.1): Qwen2-VL as a family, the
VPT tokens' rows train and their token map reloads, labels (region tokens yes, control token no), the
two stages' trainable sets, a whole two-stage run, and the re-encoder saved beside the adapter."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from perception_tokens import regions
from perception_tokens.token_kinds import vpt_tokens
from training.backends import families, get_backend, resolve_family
from training.backends.qwen2_5_vl.lora import apply_lora
from training.backends.qwen2_vl.model import add_tokens, load_qwen2_vl
from training.finetune.config import FinetuneConfig
from training.finetune.tokens import TokenMap
from training.vpt.projector import ReEncoder, tiny_dinov2
from training.vpt.saving import PROJECTOR_FILE, RECORD_FILE, load_reencoder, save_reencoder
from training.vpt.sequence import Inserter
from training.vpt.settings import VptSettings
from training.vpt.train import STAGES, VptBatches, set_trainable

pytestmark = pytest.mark.usefixtures("single_torch_thread")
GRID = 4
REGION = regions.encode_region(regions.RegionCells(1, 0, 2, 3, grid=GRID))


def config(**vpt):
    return FinetuneConfig(checkpoint="tiny", family="qwen2_vl", per_device_batch_size=2, epochs=3, lr=3e-3,
                          logging_steps=1, warmup_ratio=0.0, lr_scheduler="constant", lora={"r": 8, "alpha": 16},
                          vpt={"enabled": True, "grid": GRID, "align_epochs": 4, **vpt})


def records(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(folder / f"{i}.png")

    def record(i, stage, question, answer):
        return {"id": f"s{i}", "image": f"{i % 2}.png", "vpt_stage": stage,
                "conversations": [{"from": "human", "value": "<image>\n" + question}, {"from": "gpt", "value": answer}]}

    return folder, [record(0, 1, "What is the sign?", REGION + " a sign"),
                    record(1, 1, "What is the bird?", regions.REENCODE_CONTROL + " a robin"),
                    record(2, 2, "What is the sign?", REGION + " a sign"),
                    record(3, 2, "What is the bird?", regions.REENCODE_CONTROL + " a robin"),
                    record(4, 2, "Is it red?", "yes")]


def test_qwen2_vl_is_a_family_beside_qwen2_5_vl(tmp_path):
    assert {"qwen2_vl", "qwen2_5_vl"} <= set(families())
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    assert resolve_family(None, str(tmp_path)) == "qwen2_vl"  # a Qwen/Qwen2-VL-*-Instruct folder
    model, _ = get_backend("qwen2_vl").load("tiny")
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration"


def test_vpt_token_rows_train_and_their_token_map_reloads(tmp_path):
    # Failed before: TokenMap.id_list() kept only registry tokens, so LoRA got no VPT row to train
    # (peft then crashed on an empty index), and TokenMap.load refused the saved VPT map.
    model, processor = load_qwen2_vl("tiny")
    token_map = add_tokens(model, processor, config())
    assert token_map.tokens() == vpt_tokens(GRID)
    assert token_map.id_list() == processor.tokenizer.convert_tokens_to_ids(vpt_tokens(GRID))
    token_map.save(tmp_path)
    assert TokenMap.load(tmp_path).ids == token_map.ids
    apply_lora(model, token_map, config().lora)
    rows = [m for n, m in model.named_modules() if n.endswith("embed_tokens.token_adapter")]
    assert rows and rows[0].token_indices["default"] == token_map.id_list()


@pytest.fixture(scope="module")
def wrapped():
    model, processor = load_qwen2_vl("tiny")
    cfg = config()
    token_map = add_tokens(model, processor, cfg)
    apply_lora(model, token_map, cfg.lora)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    dino, dino_processor = tiny_dinov2()
    reencoder = ReEncoder(dino, dino_processor, model.config.text_config.hidden_size)
    return model, processor, reencoder, trained


def test_stage_one_trains_only_the_projector_and_the_new_rows_stage_two_adds_lora(wrapped):
    model, _, reencoder, trained = wrapped
    set_trainable(model, reencoder, trained, STAGES[0])
    align = {n for n, p in model.named_parameters() if p.requires_grad}
    assert align and all("trainable_tokens" in n for n in align)
    assert all(p.requires_grad for p in reencoder.projector.parameters())
    assert not any(p.requires_grad for p in reencoder.dino.parameters())
    set_trainable(model, reencoder, trained, STAGES[1])
    tune = {n for n, p in model.named_parameters() if p.requires_grad}
    assert tune == trained and any("lora_" in n for n in tune) and any(".merger." in n for n in tune)
    assert not any(p.requires_grad for p in reencoder.dino.parameters())


def test_region_tokens_get_lm_loss_and_the_control_token_does_not(wrapped, tmp_path):
    model, processor, reencoder, _ = wrapped
    folder, recs = records(tmp_path)
    batches = VptBatches(Inserter(model, processor, reencoder), folder, config(mask_modeling=1.0))
    with torch.no_grad():
        batch, masked = batches.batch([recs[0], recs[1]])
    conv = processor.tokenizer.convert_tokens_to_ids
    region_ids = processor.tokenizer(REGION, add_special_tokens=False)["input_ids"]
    assert len(region_ids) == 6 and region_ids[0] == conv(regions.REGION_START)
    first = [t for t in batch["labels"][0].tolist() if t != -100]
    assert first[:6] == region_ids  # the region is a target, then the answer text
    second = batch["labels"][1].tolist()
    assert conv(regions.REENCODE_CONTROL) not in second  # no LM loss on the control token (its label is -100)
    assert masked == 1 and batch["attention_mask"].dim() == 4  # the re-encoding sample, masked at fraction 1


def test_a_two_stage_run_records_both_losses_and_saves_the_reencoder_beside_the_adapter(tmp_path):
    folder, recs = records(tmp_path)
    result = get_backend("qwen2_vl").run_finetune(config(), recs, folder, tmp_path / "run", log=lambda _m: None)
    align, tune = result.stages["align"], result.stages["finetune"]
    assert [s for s, _ in align] == [1, 2, 3, 4] and [s for s, _ in tune][0] == 5  # 2 records x 4 epochs / 2
    assert align[-1][1] < align[0][1] and tune[-1][1] < tune[0][1]
    assert result.to_dict()["stages"]["align"][0] == [1, align[0][1]]
    adapter = result.adapter_dir
    assert (adapter / PROJECTOR_FILE).is_file() and json.loads((adapter / RECORD_FILE).read_text())["grid"] == GRID
    reloaded = load_reencoder(adapter)
    torch.manual_seed(0)
    dino, dino_processor = tiny_dinov2()
    fresh = ReEncoder(dino, dino_processor, reloaded.projector.query.out_features)
    trained_query = reloaded.projector.query.weight
    assert not torch.equal(trained_query, fresh.projector.query.weight)
    model, processor = get_backend("qwen2_vl").reload_adapter(adapter)
    assert processor.tokenizer.convert_tokens_to_ids(regions.REENCODE_CONTROL) == result.token_map[regions.REENCODE_CONTROL]


def test_the_reencoder_reloads_with_the_same_outputs(tmp_path):
    torch.manual_seed(1)
    dino, dino_processor = tiny_dinov2()
    reencoder = ReEncoder(dino, dino_processor, 64).eval()
    with torch.no_grad():
        for p in reencoder.projector.parameters():
            p.add_(0.1)  # not the init: the saved weights are what comes back
    save_reencoder(reencoder, tmp_path, VptSettings(enabled=True, grid=GRID))
    reloaded = load_reencoder(tmp_path)
    image = Image.fromarray(np.random.default_rng(2).integers(0, 255, (40, 60, 3), dtype=np.uint8))
    control = torch.randn(1, 64)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(image, control), reencoder(image, control), rtol=0, atol=0)
    assert load_reencoder(tmp_path / "elsewhere") is None  # an adapter of a run without VPT
    (tmp_path / PROJECTOR_FILE).write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match=PROJECTOR_FILE):
        load_reencoder(tmp_path)
