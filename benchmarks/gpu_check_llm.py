"""gpu_check sections for the language models: a LoRA training step and constrained generation.

Models are the project's presets of the released architectures with random weights, built
straight on the device in bf16 (``training.llava.model.load_llava("random-7b" | "random-13b")``,
``training.backends.qwen2_5_vl.model.load_qwen2_5_vl("random-3b")``); nothing is downloaded.
The smoke run uses the ``tiny`` presets of the same classes on the CPU, with the same bf16
weights, autocast and gradient checkpointing, so the GPU run's code path is the one tested.

The LoRA step is the fine-tune's: perception tokens added (``add_perception_tokens``), LoRA
r 128 on the language model's linears with **every** row of ``embed_tokens`` / ``lm_head``
trainable (``new_token_mode="modules_to_save"``, the ``aurora`` profile), the projector
trained, bf16 autocast with fp32 trainable weights, gradient checkpointing (non-reentrant)
and AdamW over the family's parameter groups, as ``CurriculumTrainer`` runs it. The loss is
the LM cross-entropy on the answer tokens (the optional depth losses are not added).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from gpu_check_vision import SectionPlan, peak_mib, reset_memory, seconds_per_call, sig, sync

# Dense bf16 peak (no sparsity) by device name, for MFU: NVIDIA H100 datasheet (SXM 989.4,
# PCIe 756) and H200 (989.4 TFLOP/s, the same Hopper tensor cores).
PEAK_BF16_TFLOPS = (("H200", 989.4), ("H100 PCIe", 756.0), ("H100", 989.4), ("A100", 312.0))
# Tokenizer sizes of the released checkpoints: the preset's stand-in tokenizer is small, so the
# embedding matrices are grown to the rows the real run has after adding the perception tokens.
REAL_TOKENIZER_SIZE = {"llava": 32002, "qwen2_5_vl": 151665}
FLOP_FORMULA = (
    "model FLOPs per step = 6 (N_lm + N_lora) T + 12 L d S T  [language model, forward + backward; "
    "PaLM's attention term] + 6 N_proj T_img + 2 N_vis T_vis + 4 L_v d_v S_v T_vis  [projector trained, "
    "frozen vision tower forward only]; N_lm = language-model weights used in matmuls (lm_head included, "
    "embedding lookup excluded), T = batch x sequence tokens, S = sequence length. Gradient-checkpointing "
    "recompute is not counted. adapted FLOPs: the same with 4 N T for frozen weights (no weight gradient) "
    "and 6 N T only for the trainable head and LoRA."
)


def peak_tflops(device_name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return value
    return None


# ----------------------------------------------------------------------------- models


def load_family(preset: str, family: str, plan: SectionPlan):
    """(model, processor, tokens, lora module) of a preset, perception tokens added."""
    from training.finetune.tokens import add_perception_tokens

    dtype = torch.bfloat16  # as the fine-tune loads on a GPU (FinetuneConfig.bf16); the smoke run too
    if family == "llava":
        from perception_tokens.vocab import all_tokens
        from training.llava import lora as family_lora
        from training.llava.model import load_llava

        model, processor = load_llava(preset, dtype=dtype, device=plan.device, seed=0)
        tokens = all_tokens()
    else:
        from training.backends.qwen2_5_vl import lora as family_lora
        from training.backends.qwen2_5_vl.model import QWEN_PERCEPTION_TOKENS, load_qwen2_5_vl

        model, processor = load_qwen2_5_vl(preset, dtype=dtype, device=plan.device, seed=0)
        tokens = QWEN_PERCEPTION_TOKENS
    if not plan.smoke:
        rows = REAL_TOKENIZER_SIZE[family] + len(tokens)
        if rows > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(rows, mean_resizing=False)
    token_map = add_perception_tokens(model, processor.tokenizer, tokens=tokens)
    return model, processor, token_map, family_lora


def training_batch(processor, family: str, token_map, batch: int, answer_tokens: int, device: str, dtype):
    """``batch`` copies of one sample: a 336x336 image, a depth question, an answer of
    ``answer_tokens`` tokens (a 102-token depth span, then text); labels on the answer only."""
    from PIL import Image

    from perception_tokens.vocab import DEPTH_END, DEPTH_START, depth_tokens

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (336, 336, 3), dtype=np.uint8))
    question = "What is the depth map for the image?"
    if family == "llava":
        prompt = f"USER: <image>\n{question} ASSISTANT:"
    else:
        prompt = processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}], add_generation_prompt=True)
    enc = processor(images=[image], text=[prompt], return_tensors="pt")
    codes = depth_tokens()
    span = [token_map[DEPTH_START]] + [token_map[codes[k % len(codes)]] for k in range(100)] + [token_map[DEPTH_END]]
    words = processor.tokenizer(" Let me think step by step about the depth of each point.", add_special_tokens=False)
    filler = (words["input_ids"] * (answer_tokens // max(len(words["input_ids"]), 1) + 1))[: max(answer_tokens - len(span), 0)]
    answer = torch.tensor(span + filler, dtype=torch.long)
    ids = torch.cat([enc["input_ids"][0], answer])
    labels = torch.cat([torch.full_like(enc["input_ids"][0], -100), answer])
    out = {"input_ids": ids.repeat(batch, 1), "attention_mask": torch.ones(batch, len(ids), dtype=torch.long),
           "labels": labels.repeat(batch, 1), "pixel_values": torch.cat([enc["pixel_values"]] * batch).to(dtype)}
    if "image_grid_thw" in enc:
        out["image_grid_thw"] = enc["image_grid_thw"].repeat(batch, 1)
    vision_tokens = enc["pixel_values"].shape[0] if family != "llava" else (336 // 14) ** 2 + 1
    return {k: v.to(device) for k, v in out.items()}, vision_tokens * batch


def parameter_counts(model, family: str) -> dict[str, int]:
    """Weights by part of an unwrapped model (before peft adds adapters and trainable copies)."""
    vision_name, projector_name = ("vision_tower", "multi_modal_projector") if family == "llava" else ("visual.", "merger")
    counts = {"params_language": 0, "params_vision": 0, "params_projector": 0}
    for name, p in model.named_parameters():
        if "lora_" in name or "modules_to_save" in name or "original_module" in name:
            raise ValueError(f"count the parameters before wrapping with peft (found {name})")
        if projector_name in name:
            counts["params_projector"] += p.numel()
        elif vision_name in name:
            counts["params_vision"] += p.numel()
        elif "embed_tokens" not in name and "lm_head" not in name:
            counts["params_language"] += p.numel()
    counts["params_head"] = model.get_output_embeddings().weight.numel()  # once even when tied to embed_tokens
    counts["params_language"] += counts["params_head"]
    return counts


def flop_counts(config, counts: dict[str, int], n_lora: int, batch: int, seq: int, vision_tokens: int) -> dict:
    """Model and adapted FLOPs of one training step (see FLOP_FORMULA) from ``parameter_counts``."""
    text, vis = config.text_config, config.vision_config
    n_lm, n_head = counts["params_language"] - counts["params_head"], counts["params_head"]
    tokens = batch * seq
    v_layers = getattr(vis, "num_hidden_layers", None) or vis.depth
    per_image = vision_tokens // batch
    shared = (12 * text.num_hidden_layers * text.hidden_size * seq * tokens + 6 * counts["params_projector"] * vision_tokens
              + 2 * counts["params_vision"] * vision_tokens + 4 * v_layers * vis.hidden_size * per_image * vision_tokens)
    model_flops = 6 * (n_lm + n_head + n_lora) * tokens + shared
    adapted = 4 * n_lm * tokens + 6 * (n_head + n_lora) * tokens + shared
    return {**counts, "params_lora": n_lora, "model_flops_per_step": float(model_flops),
            "adapted_flops_per_step": float(adapted)}


def lora_step(plan: SectionPlan, preset: str, family: str, label: str, device_name: str) -> dict:
    """Tokens/s, step time, peak memory and MFU of the fine-tune's LoRA step."""
    from training.finetune.lora import LoraSettings

    t_load = time.perf_counter()
    model, processor, token_map, family_lora = load_family(preset, family, plan)
    on_gpu = plan.device != "cpu"
    model.config.use_cache = False
    # as training_arguments() + session.wrap_for_training() set it up on a GPU
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    settings = LoraSettings(new_token_mode="modules_to_save")
    counts = parameter_counts(model, family)
    torch.manual_seed(0)
    peft_model = family_lora.apply_lora(model, token_map, settings)
    peft_model.enable_input_require_grads()
    optimizer = torch.optim.AdamW(family_lora.param_groups(peft_model, settings), lr=settings.lr)
    load_s = time.perf_counter() - t_load
    batch, answer_tokens, steps = (2, 110, 2) if plan.smoke else (4, 200, 5)
    dtype = next(model.parameters()).dtype
    inputs, vision_tokens = training_batch(processor, family, token_map, batch, answer_tokens, plan.device, dtype)
    seq = inputs["input_ids"].shape[1]
    autocast = torch.autocast(torch.device(plan.device).type, dtype=torch.bfloat16)  # fp32 trainables, bf16 matmuls
    peft_model.train()

    losses: list[float] = []

    def step() -> None:
        with autocast:
            loss = peft_model(**inputs).loss
        losses.append(loss.detach())  # read after the timing: no host sync inside it
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    reset_memory(plan.device)
    s = seconds_per_call(step, plan.device, warmup=2 if on_gpu else 1, iters=steps)
    # the steps trained: a finite loss, and LoRA's B matrices (zero at init) moved
    lora_b = [p for n, p in peft_model.named_parameters() if "lora_B" in n]
    moved = sum(int(p.detach().abs().sum() > 0) for p in lora_b)
    n_lora = sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n)
    flops = flop_counts(model.config, counts, n_lora, batch, seq, vision_tokens)
    peak = peak_tflops(device_name) if on_gpu else None
    row = {"case": label, "batch": batch, "sequence": seq, "tokens_per_s": sig(batch * seq / s),
           "step_s": sig(s), "peak_memory_mib": peak_mib(plan.device), "build_s": round(load_s, 1),
           "trainable": family_lora.trainable_summary(peft_model), **flops,
           "loss_first": round(float(losses[0]), 4), "loss_last": round(float(losses[-1]), 4),
           "lora_b_moved": f"{moved}/{len(lora_b)}",
           "peak_bf16_tflops": peak,
           "mfu": sig(flops["model_flops_per_step"] / s / (peak * 1e12), 3) if peak else None,
           "mfu_adapted": sig(flops["adapted_flops_per_step"] / s / (peak * 1e12), 3) if peak else None}
    notes = [FLOP_FORMULA]
    if on_gpu and peak is None:
        notes.append(f"no bf16 peak known for {device_name!r}: MFU not computed")
    return {"model": f"{preset} ({family}), random weights, LoRA r {settings.r}, all embedding rows trainable",
            "rows": [row], "notes": notes}


# ----------------------------------------------------------------------------- generation


def generation(plan: SectionPlan) -> dict:
    """Greedy generation (``generate_predictions``) with the depth constraint on and off, batch 1 and 8:
    tokens/s and the overhead (constrained seconds per token / unconstrained)."""
    from bench_constrained_generation import _timed_generate, hardblink_rows

    from evaluation.generate import GenerationSettings
    from evaluation.perception_bias import PerceptionTokenBias

    preset = "tiny" if plan.smoke else "random-7b"
    model, processor, _token_map, _ = load_family(preset, "llava", plan)
    model.eval()
    max_new = 8 if plan.smoke else 128
    cases = ((1, 2), (2, 2)) if plan.smoke else ((1, 2), (8, 8))  # (batch size, rows)
    rows_all = hardblink_rows(max(n for _, n in cases), seed=0)
    # Both sides push every perception token up (as bench_constrained_generation --push): a random model
    # then writes depth spans, so the constraint's span state machine runs on every step.
    extra = [PerceptionTokenBias(processor.tokenizer)]
    rows, notes = [], ["both sides biased towards perception tokens (PerceptionTokenBias), as a fine-tuned model writes them"]
    for batch, n_rows in cases:
        prompts = rows_all[:n_rows]

        def settings(constrained: bool, tokens: int = max_new) -> GenerationSettings:
            return GenerationSettings(mode="cot", constrained=constrained, max_new_tokens=tokens, batch_size=batch)

        for constrained in (False, True):  # warm-up
            _timed_generate(model, processor, prompts[:batch], settings(constrained, 4), extra)
        reset_memory(plan.device)
        result = {}
        for constrained in (False, True):
            sync(plan.device)
            result[constrained] = _timed_generate(model, processor, prompts, settings(constrained), extra)
        c, u = result[True], result[False]
        overhead = (c["seconds"] / max(c["new_tokens"], 1)) / (u["seconds"] / max(u["new_tokens"], 1))
        rows.append({"case": f"batch {batch}", "batch": batch, "rows": n_rows, "max_new_tokens": max_new,
                     "constrained_tokens_per_s": sig(c["tokens_per_s"]),
                     "unconstrained_tokens_per_s": sig(u["tokens_per_s"]),
                     "constraint_overhead": round(overhead, 4),
                     "processor_share": round(c["processor_seconds"] / c["seconds"], 4),
                     "valid_depth_spans": c["valid_depth_spans"], "peak_memory_mib": peak_mib(plan.device)})
    return {"model": f"LLaVA {preset} + perception tokens, bf16" if not plan.smoke else "tiny LLaVA + perception tokens",
            "rows": rows, "notes": notes}
