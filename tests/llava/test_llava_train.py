"""The fine-tune end to end on the tiny LLaVA: loss falls, spans become well-formed, resume, reload, DDP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from perception_tokens.vocab import vocabulary_hash
from training.finetune.config import FinetuneConfig
from training.finetune.launch import main as launch_main
from training.finetune.lora import LoraSettings
from training.finetune.probes import depth_span_wellformed_rate, generate_depth_answers
from training.finetune.trainer import CurriculumTrainer, training_arguments
from training.llava.data import ConversationDataset, LlavaCollator
from training.llava.lora import apply_lora, param_groups
from training.finetune.tokens import add_perception_tokens
from training.llava.model import load_llava
from training.llava.reload import reload_adapter
from training.llava.synthetic import make_synthetic_records
from training.llava.train import run_finetune

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def tiny_config(**overrides) -> FinetuneConfig:
    base = dict(
        max_steps=30,
        per_device_batch_size=4,
        lr=1e-2,
        projector_lr=1e-3,
        warmup_ratio=0.0,
        save_steps=1000,
        logging_steps=5,
        lora=LoraSettings(r=16, alpha=32, dropout=0.0),
    )
    base.update(overrides)
    return FinetuneConfig(**base)


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("llava_data")
    return make_synthetic_records(16, root / "images"), root / "images"


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    records, image_dir = data
    model, processor = load_llava("tiny")
    add_perception_tokens(model, processor.tokenizer)
    rate_before = depth_span_wellformed_rate(model, processor, records[:8], image_dir=image_dir)
    out = tmp_path_factory.mktemp("llava_run")
    events = []
    result = run_finetune(tiny_config(), records, image_dir, out, log=lambda _m: None, metrics_callback=events.append)
    return result, events, rate_before, out


def test_loss_falls_and_spans_become_wellformed(trained, data):
    result, events, rate_before, _ = trained
    records, image_dir = data
    first, last = result.loss_history[0][1], result.final_loss
    model, processor = reload_adapter(result.adapter_dir)
    rate_after = depth_span_wellformed_rate(model, processor, records[:8], image_dir=image_dir)
    print(
        f"\ntiny run: loss {first:.3f} -> {last:.3f} in {result.steps} steps, "
        f"well-formed {rate_before:.2f} -> {rate_after:.2f}, {result.step_time_s * 1000:.0f} ms/step, "
        f"{result.tokens_per_s:.0f} tok/s"
    )
    assert result.steps == 30
    assert last < first / 5 and last < 1.0
    assert rate_before == 0.0
    assert rate_after >= 0.75
    assert [e["step"] for e in events] == [1, 5, 10, 15, 20, 25, 30]
    assert all(e["tokens_per_s"] > 0 and e["learning_rate"] >= 0 for e in events)


def test_adapter_folder_is_complete(trained):
    result, _, _, out = trained
    adapter = result.adapter_dir
    for name in ("adapter_model.safetensors", "adapter_config.json", "token_map.json", "tokenizer.json",
                 "processor_config.json", "finetune_config.json"):
        assert (adapter / name).is_file(), name
    token_map = json.loads((adapter / "token_map.json").read_text())
    assert token_map["vocabulary_hash"] == vocabulary_hash() and len(token_map["tokens"]) == 466
    meta = json.loads((adapter / "finetune_config.json").read_text())
    assert meta["base_checkpoint"] == "tiny" and meta["embedding_rows"] == 557 + 466
    assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    weights = load_file(adapter / "adapter_model.safetensors")
    assert not any("vision_tower" in k for k in weights)
    assert any("trainable_tokens_delta" in k for k in weights)


RELOAD_SCRIPT = """
import json, sys, torch
from training.llava.reload import reload_adapter
from training.finetune.probes import generate_depth_answers
from training.finetune.tokens import TokenMap
adapter, image_dir, records = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
model, processor = reload_adapter(adapter)
ids = torch.tensor(TokenMap.load(adapter).id_list())
print(json.dumps({
    "embed": model.get_input_embeddings()(ids).tolist(),
    "head": (model.get_output_embeddings().weight[ids] if hasattr(model.get_output_embeddings(), "weight") else
             model.get_output_embeddings()(torch.eye(64))[:, ids].T).tolist(),
    "answers": generate_depth_answers(model, processor, records, image_dir=image_dir, max_new_tokens=110),
}))
"""


def test_reload_in_fresh_process_matches_trained_rows(trained, data):
    result, _, _, _ = trained
    records, image_dir = data
    weights = load_file(result.adapter_dir / "adapter_model.safetensors")
    trained_embed = next(v for k, v in weights.items() if "embed_tokens" in k and "trainable_tokens_delta" in k)
    trained_head = next(v for k, v in weights.items() if "lm_head" in k and "trainable_tokens_delta" in k)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", RELOAD_SCRIPT, str(result.adapter_dir), str(image_dir), json.dumps(records[:2])],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert torch.allclose(torch.tensor(out["embed"]), trained_embed, atol=1e-6)
    assert torch.allclose(torch.tensor(out["head"]), trained_head, atol=1e-5)
    # Generation runs in the fresh process and agrees with this process's reload.
    model, processor = reload_adapter(result.adapter_dir)
    assert out["answers"] == generate_depth_answers(model, processor, records[:2], image_dir=image_dir)
    assert all(a.strip().startswith("<DEPTH_START>") for a in out["answers"])


def test_resume_after_interruption_continues_at_same_step(data, tmp_path):
    records, image_dir = data
    config = tiny_config(max_steps=12, save_steps=6, logging_steps=1, per_device_batch_size=2)

    reference = run_finetune(config, records, image_dir, tmp_path / "straight", log=lambda _m: None)

    def interrupt(event):
        if event["step"] == 8:  # after checkpoint-6 was written, before checkpoint-12
            raise Interrupted()

    with pytest.raises(Interrupted):
        run_finetune(config, records, image_dir, tmp_path / "broken", log=lambda _m: None, metrics_callback=interrupt)
    assert (tmp_path / "broken" / "checkpoints" / "checkpoint-6").is_dir()
    assert not (tmp_path / "broken" / "adapter").exists()
    messages = []
    resumed_events = []
    resumed = run_finetune(
        config, records, image_dir, tmp_path / "broken", log=messages.append, metrics_callback=resumed_events.append
    )
    assert any("resuming from" in m and "checkpoint-6" in m for m in messages)
    assert resumed.steps == reference.steps == 12
    assert [e["step"] for e in resumed_events] == [7, 8, 9, 10, 11, 12]
    # Same samples in the same order with the same optimizer state: the same losses.
    ref = dict(reference.loss_history)
    for step, loss in resumed.loss_history:
        assert loss == pytest.approx(ref[step], rel=1e-4, abs=1e-5), step


def test_trainer_feeds_records_in_curriculum_order(data, tmp_path):
    records, image_dir = data
    model, processor = load_llava("tiny")
    token_map = add_perception_tokens(model, processor.tokenizer)
    settings = LoraSettings(r=2, alpha=4)
    peft_model = apply_lora(model, token_map, settings)
    dataset = ConversationDataset(records, image_dir, processor)
    config = tiny_config(per_device_batch_size=3)
    trainer = CurriculumTrainer(
        model=peft_model,
        args=training_arguments(config, tmp_path, on_gpu=False),
        train_dataset=dataset,
        data_collator=LlavaCollator(processor.tokenizer.pad_token_id),
        lora_settings=settings,
        param_groups=param_groups,
    )
    seen = []
    for batch in trainer.get_train_dataloader():
        seen += [pv for pv in batch["pixel_values"]]
    assert len(seen) == len(records)
    for i, pv in enumerate(seen):
        assert torch.equal(pv, dataset[i]["pixel_values"]), i


def test_launch_cli_writes_result_and_metrics(data, tmp_path):
    records, image_dir = data
    (tmp_path / "records.json").write_text(json.dumps(records[:4]))
    (tmp_path / "config.json").write_text(json.dumps({
        "max_steps": 2, "per_device_batch_size": 2, "logging_steps": 1, "save_steps": 100, "lora": {"r": 2, "alpha": 4},
    }))
    forwarded = []
    summary = launch_main(
        ["--config", str(tmp_path / "config.json"), "--records", str(tmp_path / "records.json"),
         "--image-dir", str(image_dir), "--out", str(tmp_path / "out"), "--metrics-jsonl", str(tmp_path / "m.jsonl")],
        metrics_callback=forwarded.append, log=lambda _m: None,
    )
    assert summary["steps"] == 2 and [e["step"] for e in forwarded] == [1, 2]
    lines = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [e["step"] for e in lines] == [1, 2]
    saved = json.loads((tmp_path / "out" / "finetune_result.json").read_text())
    assert saved == json.loads(json.dumps(summary)) and Path(saved["adapter_dir"]).is_dir()
    assert saved["family"] == "llava" and saved["span_samples"] == 0 and saved["world_size"] == 1


def test_config_json_round_trip():
    config = tiny_config(depth_losses={"token": 0.5})
    again = FinetuneConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.depth_losses.token == 0.5
    with pytest.raises(ValueError, match="unknown"):
        FinetuneConfig.from_dict({"learning_rate_typo": 1})


def test_depth_losses_train_without_error(data, tmp_path):
    records, image_dir = data
    config = tiny_config(max_steps=2, logging_steps=1, per_device_batch_size=2, depth_losses={"marker": 1.0, "token": 1.0, "count": 1.0})
    events = []
    run_finetune(config, records[:4], image_dir, tmp_path, log=lambda _m: None, metrics_callback=events.append)
    assert {"depth_marker_loss", "depth_token_loss", "depth_count_loss", "depth_total_loss"} <= set(events[0])
    assert events[0]["depth_token_loss"] > 0


@pytest.mark.slow
def test_torchrun_two_processes_gloo(data, tmp_path):
    records, image_dir = data
    (tmp_path / "records.json").write_text(json.dumps(records[:8]))
    (tmp_path / "config.json").write_text(json.dumps({
        "max_steps": 3, "per_device_batch_size": 2, "logging_steps": 1, "save_steps": 2, "lora": {"r": 4, "alpha": 8},
    }))
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2",  # standalone: a free port, none fixed
         "-m", "training.finetune.launch",
         "--config", str(tmp_path / "config.json"), "--records", str(tmp_path / "records.json"),
         "--image-dir", str(image_dir), "--out", str(tmp_path / "out"), "--metrics-jsonl", str(tmp_path / "m.jsonl")],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    # Only rank 0 logs: one metrics line per step, one "done" line.
    lines = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [e["step"] for e in lines] == [1, 2, 3]
    assert lines[1]["epoch"] == 1.0  # 8 records / (2 ranks x 2 per device) = 2 steps per epoch
    assert proc.stdout.count("done: 3 steps") == 1
    assert (tmp_path / "out" / "checkpoints" / "checkpoint-2").is_dir()
    assert (tmp_path / "out" / "adapter" / "adapter_model.safetensors").is_file()
