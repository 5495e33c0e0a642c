"""Aurora-format checkpoints (the reference LLaVA fork's LoRA folders) as this project's adapters.

A checkpoint written by the reference ``llava/train/train.py`` (lines 1041-1047) is a folder with

* ``adapter_config.json`` + ``adapter_model.safetensors`` / ``adapter_model.bin``: the LoRA
  weights on the original ``LlavaLlamaForCausalLM`` naming (``base_model.model.model.layers.N...``);
* ``non_lora_trainables.bin``: the other trained tensors - the projector
  (``model.mm_projector.{0,2}``), and, because Aurora trains them whole (train.py:980-991),
  ``model.embed_tokens.weight`` and ``lm_head.weight`` with the skill's tokens appended after
  the 32000-token base vocabulary (depth: ``<DEPTH_START>`` = 32000, ``<DEPTH_END>`` = 32001,
  ``<DEPTH_k>`` = 32002 + k);
* ``config.json`` (the fork's LlavaConfig).

The reference loads it in ``llava/model/builder.py:50-88``: base model, tokens added, the
non-LoRA tensors loaded (``base_model.`` / ``model.`` prefixes stripped), then the LoRA.
:func:`load_aurora_checkpoint` does the same onto transformers' ``LlavaForConditionalGeneration``
(the llava-hf naming): embedding rows are copied by token (llava-hf's tokenizer holds two
extra tokens, so the perception tokens sit at other ids there), the projector is renamed,
and the LoRA weights are put into a peft model whose ``modules_to_save`` hold projector,
``embed_tokens`` and ``lm_head``. :func:`convert_checkpoint` saves that as an adapter folder
that :func:`training.llava.reload.reload_adapter` (and so ``ptok eval``) reads.

``non_lora_trainables.bin`` and ``adapter_model.bin`` are torch pickles: they are read with
``torch.load(weights_only=True)`` only, so nothing but tensors can come out of them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model

from perception_tokens.vocab import skill_tokens
from training.finetune.lora import LANGUAGE_LINEAR_LAYERS, LoraSettings, quiet_peft
from training.llava.lora import PROJECTOR
from training.finetune.tokens import TokenMap, add_perception_tokens
from training.llava.model import load_llava

NON_LORA_FILE = "non_lora_trainables.bin"
SKILL_ROWS = {130: ["depth"], 336: ["pixel"], 466: ["depth", "pixel"]}  # train.py:933-939


class AuroraCheckpointError(ValueError):
    """A folder that is not a usable Aurora-format checkpoint; the message names the file."""


def is_aurora_checkpoint(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and (p / NON_LORA_FILE).is_file() and (p / "adapter_config.json").is_file()


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data = load_file(str(path))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused, truncated file, ...
        raise AuroraCheckpointError(f"{path}: cannot read tensors ({exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise AuroraCheckpointError(f"{path}: expected a dict of tensors")
    return data


def _strip(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """builder.py:75-77: drop 'base_model.' from every key; then, if any key starts with
    'model.model.', drop one 'model.' from every key that starts with 'model.'."""
    out = {(k[len("base_model."):] if k.startswith("base_model.") else k): v for k, v in tensors.items()}
    if any(k.startswith("model.model.") for k in out):
        out = {(k[len("model."):] if k.startswith("model.") else k): v for k, v in out.items()}
    return out


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(adapter_config, LoRA tensors, non-LoRA tensors with builder.py's prefixes stripped)."""
    p = Path(path)
    if not is_aurora_checkpoint(p):
        raise AuroraCheckpointError(f"{p}: not an Aurora LoRA checkpoint (needs adapter_config.json and {NON_LORA_FILE})")
    try:
        cfg = json.loads((p / "adapter_config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AuroraCheckpointError(f"{p / 'adapter_config.json'}: not readable JSON ({exc})") from exc
    weights = next((p / n for n in ("adapter_model.safetensors", "adapter_model.bin") if (p / n).is_file()), None)
    if weights is None:
        raise AuroraCheckpointError(f"{p}: no adapter_model.safetensors or adapter_model.bin")
    non_lora = _strip(_load_tensors(p / NON_LORA_FILE))
    for key in ("model.embed_tokens.weight", "lm_head.weight"):
        if key not in non_lora:
            raise AuroraCheckpointError(f"{p / NON_LORA_FILE}: no {key} (Aurora trains embed_tokens and lm_head whole)")
    return cfg, _load_tensors(weights), non_lora


def _language_prefix(model: torch.nn.Module) -> str:
    """Module path of the language model's decoder layers in this transformers version."""
    for name, _ in model.named_modules():
        m = re.match(r"(.*language_model\.(?:model\.)?)layers\.0$", name)
        if m:
            return m.group(1)
    raise AuroraCheckpointError("cannot find the language model's layers in the base model")


def load_aurora_checkpoint(path: str | os.PathLike, base_checkpoint: str, *, skills: list[str] | None = None,
                           dtype: torch.dtype = torch.float32, device: str = "cpu"):
    """``(peft_model, processor, token_map)``: the base model with the checkpoint's tensors and LoRA.

    ``skills`` defaults to what the embedding rows say (130 new rows: depth, 336: pixel).
    """
    cfg, lora, non_lora = read_checkpoint(path)
    model, processor = load_llava(base_checkpoint, dtype=dtype, device="cpu")
    tokenizer = processor.tokenizer
    embed, head = non_lora["model.embed_tokens.weight"], non_lora["lm_head.weight"]
    if skills is None:
        # llava-hf appends <image> and <pad> after LLaVA-1.5's 32000 tokens; Aurora's tokenizer has neither
        n = len(tokenizer)
        base_vocab = n - sum(1 for t in ("<image>", "<pad>") if tokenizer.get_vocab().get(t, -1) >= n - 2)
        skills = SKILL_ROWS.get(embed.shape[0] - base_vocab)
        if skills is None:
            raise AuroraCheckpointError(f"{Path(path) / NON_LORA_FILE}: {embed.shape[0]} embedding rows do not match "
                                        f"{base_vocab} base tokens + one of {sorted(SKILL_ROWS)} perception tokens")
    tokens = skill_tokens(skills)
    first = embed.shape[0] - len(tokens)  # Aurora's id of the first perception token (32000 on LLaVA-1.5)
    token_map = add_perception_tokens(model, tokenizer, tokens=tokens)
    target_embed, target_head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    if embed.shape[1] != target_embed.shape[1] or head.shape != embed.shape:
        raise AuroraCheckpointError(f"{Path(path) / NON_LORA_FILE}: embedding width {embed.shape[1]} does not fit "
                                    f"the base model's {target_embed.shape[1]}")
    with torch.no_grad():
        # base vocabulary rows keep their ids; perception tokens move to wherever this tokenizer put them
        target_embed[:first] = embed[:first].to(target_embed.dtype)
        target_head[:first] = head[:first].to(target_head.dtype)
        for i, t in enumerate(tokens):
            target_embed[token_map[t]] = embed[first + i].to(target_embed.dtype)
            target_head[token_map[t]] = head[first + i].to(target_head.dtype)
        projector = dict(model.named_modules())[next(n for n, _ in model.named_modules() if n.endswith(PROJECTOR))]
        for src, dst in (("model.mm_projector.0", "linear_1"), ("model.mm_projector.2", "linear_2")):
            for part in ("weight", "bias"):
                if f"{src}.{part}" in non_lora:
                    getattr(getattr(projector, dst), part).copy_(non_lora[f"{src}.{part}"])

    modules = tuple(cfg.get("target_modules") or LANGUAGE_LINEAR_LAYERS)
    settings = LoraSettings(r=int(cfg.get("r", 128)), alpha=int(cfg.get("lora_alpha", 256)),
                            dropout=float(cfg.get("lora_dropout", 0.05)), target_modules=modules, new_token_mode="modules_to_save")
    prefix = _language_prefix(model)
    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout, bias="none",
                        target_modules=rf".*language_model\..*\.({'|'.join(sorted(set(modules)))})",
                        modules_to_save=[PROJECTOR, "embed_tokens", "lm_head"], task_type="CAUSAL_LM")
    with quiet_peft():
        peft_model = get_peft_model(model, config)
    # LoRA tensors by name: the fork's "model.layers.N.<module>.lora_A.weight" -> this model's layers, adapter "default"
    params = dict(peft_model.named_parameters())
    with torch.no_grad():
        for key, value in lora.items():
            name = re.sub(r"^base_model\.model\.model\.layers\.", f"base_model.model.{prefix}layers.", key)
            name = re.sub(r"\.(lora_[AB])\.weight$", r".\1.default.weight", name)
            if name not in params:
                raise AuroraCheckpointError(f"{path}: LoRA weight {key} does not fit the base model (no {name})")
            if params[name].shape != value.shape:
                raise AuroraCheckpointError(f"{path}: LoRA weight {key} has shape {tuple(value.shape)}, the model {tuple(params[name].shape)}")
            params[name].copy_(value)
    peft_model.to(device)
    peft_model.eval()
    peft_model.aurora_settings = settings  # for convert_checkpoint's record
    return peft_model, processor, token_map


def convert_checkpoint(path: str | os.PathLike, out_dir: str | os.PathLike, base_checkpoint: str, *,
                       skills: list[str] | None = None, conversation: str = "vicuna_v1") -> Path:
    """Write the checkpoint as this project's adapter folder (adapter, processor, token map, record)."""
    from perception_tokens.llava_conversation import chat_template
    from training.finetune.adapter_folder import save_adapter
    from training.finetune.config import FinetuneConfig

    peft_model, processor, token_map = load_aurora_checkpoint(path, base_checkpoint, skills=skills)
    processor.chat_template = chat_template(conversation, processor.image_token)
    config = FinetuneConfig(checkpoint=base_checkpoint, lora=peft_model.aurora_settings, conversation=conversation,
                            vocabulary="per_skill", image_size=336)
    rows = int(peft_model.get_input_embeddings().weight.shape[0])
    out = Path(out_dir)
    save_adapter(peft_model, processor, TokenMap.of(token_map.ids), config, out, embedding_rows=rows)
    return out
