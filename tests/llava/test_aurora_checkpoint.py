"""An Aurora-format LoRA folder (reference train.py:1041-1047 layout) loads, converts and evaluates."""

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from perception_tokens.vocab import DEPTH_START, depth_code_token
from training.llava.aurora_checkpoint import AuroraCheckpointError, convert_checkpoint, is_aurora_checkpoint, load_aurora_checkpoint
from training.llava.model import load_llava
from training.llava.reload import reload_adapter

R, ALPHA, MODULES = 4, 8, ("q_proj", "v_proj")


def _module(model, layer: int, name: str):
    lm = next(m for n, m in model.named_modules() if "language_model" in n and n.endswith(f"layers.{layer}.self_attn"))
    return getattr(lm, name)


@pytest.fixture(scope="module")
def aurora_dir(tmp_path_factory):
    """A tiny checkpoint in Aurora's layout: LoRA on q/v of every layer in the fork's naming,
    non_lora_trainables.bin with projector, embed_tokens and lm_head (base rows + 130 depth rows)."""
    out = tmp_path_factory.mktemp("aurora_ckpt")
    model, proc = load_llava("tiny")
    g = torch.Generator().manual_seed(0)
    n_layers = model.config.text_config.num_hidden_layers
    lora = {}
    for i in range(n_layers):
        for name in MODULES:
            lin = _module(model, i, name)
            lora[f"base_model.model.model.layers.{i}.self_attn.{name}.lora_A.weight"] = torch.randn(R, lin.in_features, generator=g)
            lora[f"base_model.model.model.layers.{i}.self_attn.{name}.lora_B.weight"] = torch.randn(lin.out_features, R, generator=g)
    save_file(lora, str(out / "adapter_model.safetensors"))
    base_vocab = len(proc.tokenizer) - 1  # the tiny tokenizer's <image> is an added token, as llava-hf's
    d = model.get_input_embeddings().weight.shape[1]
    proj = next(m for n, m in model.named_modules() if n.endswith("multi_modal_projector"))
    non_lora = {
        "base_model.model.model.embed_tokens.weight": torch.randn(base_vocab + 130, d, generator=g),
        "base_model.model.lm_head.weight": torch.randn(base_vocab + 130, d, generator=g),
        "base_model.model.model.mm_projector.0.weight": torch.randn_like(proj.linear_1.weight),
        "base_model.model.model.mm_projector.0.bias": torch.randn_like(proj.linear_1.bias),
        "base_model.model.model.mm_projector.2.weight": torch.randn_like(proj.linear_2.weight),
        "base_model.model.model.mm_projector.2.bias": torch.randn_like(proj.linear_2.bias),
    }
    torch.save(non_lora, out / "non_lora_trainables.bin")
    (out / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": R, "lora_alpha": ALPHA, "lora_dropout": 0.05,
                                                         "target_modules": list(MODULES), "base_model_name_or_path": "liuhaotian/llava-v1.5-13b"}))
    (out / "config.json").write_text(json.dumps({"model_type": "llava_llama", "mm_projector_type": "mlp2x_gelu"}))
    return out, lora, non_lora, base_vocab


def test_load_places_every_tensor(aurora_dir):
    path, lora, non_lora, base_vocab = aurora_dir
    assert is_aurora_checkpoint(path)
    model, proc, tm = load_aurora_checkpoint(path, "tiny")
    embed = model.get_input_embeddings().weight
    E = non_lora["base_model.model.model.embed_tokens.weight"]
    assert len(tm) == 130  # 130 extra rows: the depth skill only
    assert torch.equal(embed[tm[DEPTH_START]], E[base_vocab]) and torch.equal(embed[tm[depth_code_token(7)]], E[base_vocab + 2 + 7])
    assert torch.equal(embed[5], E[5])  # base rows keep their ids
    H = non_lora["base_model.model.lm_head.weight"]
    assert torch.equal(model.get_output_embeddings().weight[tm[depth_code_token(0)]], H[base_vocab + 2])
    proj = next(m for n, m in model.named_modules() if n.endswith("multi_modal_projector.modules_to_save.default"))
    assert torch.equal(proj.linear_1.weight, non_lora["base_model.model.model.mm_projector.0.weight"])
    # the LoRA: q_proj(x) = W x + (alpha / r) * B A x
    q = _module(model, 1, "q_proj")
    x = torch.randn(3, q.in_features)
    A = lora["base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"]
    B = lora["base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"]
    with torch.no_grad():
        expected = q.base_layer(x) + (ALPHA / R) * x @ A.T @ B.T
        assert torch.allclose(q(x), expected, atol=1e-5)


def test_convert_then_reload_gives_the_same_model(aurora_dir, tmp_path):
    path, *_ = aurora_dir
    model, proc, tm = load_aurora_checkpoint(path, "tiny")
    out = convert_checkpoint(path, tmp_path / "adapter", "tiny")
    again, proc2 = reload_adapter(out)
    assert proc2.tokenizer.convert_tokens_to_ids(DEPTH_START) == tm[DEPTH_START]
    assert "A chat between a curious user" in proc2.chat_template  # trained with --version v1
    ids = torch.tensor([[1, 5, 9, tm[DEPTH_START], tm[depth_code_token(3)]]])
    with torch.no_grad():
        la = model(input_ids=ids).logits
        lb = again(input_ids=ids).logits
    assert torch.allclose(la, lb, atol=1e-5)


def test_bad_checkpoints_are_named(aurora_dir, tmp_path):
    path, *_ = aurora_dir
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "adapter_config.json").write_text((path / "adapter_config.json").read_text())
    (bad / "adapter_model.safetensors").write_bytes((path / "adapter_model.safetensors").read_bytes())

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (bad / "non_lora_trainables.bin").write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(AuroraCheckpointError, match="non_lora_trainables.bin: cannot read tensors"):
        load_aurora_checkpoint(bad, "tiny")
    torch.save({"model.embed_tokens.weight": torch.zeros(3, 2)}, bad / "non_lora_trainables.bin")
    with pytest.raises(AuroraCheckpointError, match="no lm_head.weight"):
        load_aurora_checkpoint(bad, "tiny")
    with pytest.raises(AuroraCheckpointError, match="not an Aurora LoRA checkpoint"):
        load_aurora_checkpoint(tmp_path, "tiny")


def test_cli_convert_and_eval_loader(aurora_dir, tmp_path, monkeypatch):
    """``ptok convert-checkpoint SRC DEST --base tiny`` writes an adapter folder; ``ptok eval --model SRC``
    goes through load_eval_model, which converts an Aurora folder on load."""
    from evaluation.run import load_eval_model
    from pipelines.cli import main

    path, *_ = aurora_dir
    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    assert main(["convert-checkpoint", str(path), str(tmp_path / "converted"), "--base", "tiny"]) == 0
    assert (tmp_path / "converted" / "token_map.json").is_file() and (tmp_path / "converted" / "adapter_config.json").is_file()
    model, proc, kind = load_eval_model(str(path), "tiny")
    assert kind == "adapter" and proc.tokenizer.convert_tokens_to_ids(DEPTH_START) == len(proc.tokenizer) - 130
    assert not model.training
