"""Qwen2.5-VL loading: real checkpoints, and offline presets of the real architecture.

``load_qwen2_5_vl`` gives ``(model, processor)`` for a local dir / hub id, or a preset:

- ``"tiny"``: ``Qwen2_5_VLForConditionalGeneration`` built from config (2-block windowed ViT +
  patch merger + 2-layer Qwen2 decoder with M-RoPE, tied head like Qwen2.5-VL-3B) and a
  byte-level BPE tokenizer trained offline, with Qwen's pre-tokenizer regex, special tokens
  and chat template; ``"tiny-untied"`` is the same with an untied head (like the 7B);
- ``"random-3b"`` / ``"random-7b"``: the released shapes with random weights (GPU speed runs).

Qwen pads its vocabulary (Qwen2.5-VL-7B: 152064 rows for 151665 tokens), so the tiny config
pads too: the first perception tokens land on padded rows, as they do on the real model.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoProcessor,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLImageProcessorPil,
)

from perception_tokens.vocab import skill_tokens

from training.finetune.tokens import TokenMap
from training.finetune.tokens import add_tokens as add_config_tokens
from training.llava.model import _TINY_CORPUS, TINY_HEAD_STD

TINY, TINY_UNTIED = "tiny", "tiny-untied"
CHAT_TEMPLATE_FILE = "chat_template.jinja"
IM_START, IM_END, ENDOFTEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD = "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"
# Same order as Qwen2's added tokens (151643...): text specials, then the vision ones.
QWEN_SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END, "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
                       "<|box_end|>", "<|quad_start|>", "<|quad_end|>", VISION_START, VISION_END, "<|vision_pad|>",
                       IMAGE_PAD, VIDEO_PAD]
# Qwen2's pre-tokenizer split (tokenizer.json of Qwen2.5-VL): digits one by one, newlines apart.
QWEN_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Qwen2.5-VL-Instruct's chat template (image parts only; videos are not used here).
QWEN2_5_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# The perception tokens Qwen gets: depth maps only. Boxes and points are Qwen's own plain-text
# pixels (coordinates.py), so no <PIXEL_k> token is added.
QWEN_PERCEPTION_TOKENS = skill_tokens(["depth"])


def add_tokens(model, processor, config) -> TokenMap:
    """Qwen's perception tokens (the depth tokens: its boxes are plain numbers) with ids from the
    tokenizer; rows landing in Qwen's padded embedding rows are re-initialised."""
    segmentation = getattr(config, "segmentation", None)
    seg = skill_tokens(["seg"]) if segmentation is not None and segmentation.enabled else []  # Perceptio's [SEG]
    return add_config_tokens(model, processor, config, tokens=QWEN_PERCEPTION_TOKENS + seg)


def add_vpt_tokens(model, processor, config, grid: int) -> TokenMap:
    """VPT's tokens (a k x k region grid and the re-encoding control token, arXiv 2502.17425 Sec. 3) for a
    ``profile: vpt`` run, by the same rule as the perception tokens (mean init, Qwen's padded rows)."""
    from perception_tokens.token_kinds import vpt_tokens

    return add_config_tokens(model, processor, config, tokens=vpt_tokens(grid))


# Tiny image budget: 336x336 eval images become 112x112 (8x8 patches of 14 -> 16 image tokens).
TINY_MIN_PIXELS = 56 * 56
TINY_MAX_PIXELS = 112 * 112
# Qwen2.5-VL's released defaults (preprocessor_config.json).
QWEN_MIN_PIXELS = 56 * 56
QWEN_MAX_PIXELS = 28 * 28 * 1280


def build_tiny_tokenizer(vocab_size: int = 600) -> PreTrainedTokenizerFast:
    """Byte-level BPE with Qwen2's pre-tokenizer and special tokens, trained offline (deterministic).

    Like Qwen2: no bos, ``<|im_end|>`` ends an assistant turn (eos), ``<|endoftext|>`` pads.
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(_TINY_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=IM_END, pad_token=ENDOFTEXT, padding_side="right",
                                   model_max_length=4096)
    fast.add_special_tokens({"additional_special_tokens": QWEN_SPECIAL_TOKENS})
    fast.chat_template = QWEN2_5_VL_CHAT_TEMPLATE
    return fast


class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
    """Qwen2_5_VLProcessor without a video processor.

    transformers' video processors need torchvision; without it the stock class refuses to
    build even when no video is ever passed. Images and text go through the stock code.
    """

    def check_argument_for_proper_class(self, argument_name, argument):
        if argument is None and argument_name == "video_processor":
            return None
        return super().check_argument_for_proper_class(argument_name, argument)

    def save_pretrained(self, save_directory, **kwargs):
        """Tokenizer, image processor and chat template (the stock method needs every sub-processor)."""
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(directory))
        self.image_processor.save_pretrained(str(directory))
        (directory / CHAT_TEMPLATE_FILE).write_text(self.chat_template)
        return [str(directory)]


def make_processor(image_processor, tokenizer, chat_template: str = QWEN2_5_VL_CHAT_TEMPLATE) -> Qwen2_5_VLProcessor:
    """The stock processor when video support is importable, else the image-only one."""
    try:
        from transformers import Qwen2VLVideoProcessor

        video = Qwen2VLVideoProcessor()
        return Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=video,
                                   chat_template=chat_template)
    except (ImportError, AttributeError, ValueError):
        return ImageOnlyQwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                            chat_template=chat_template)


def load_processor(directory: str) -> Qwen2_5_VLProcessor:
    """A saved processor: AutoProcessor, or its tokenizer + image processor where video support is missing."""
    try:
        processor = AutoProcessor.from_pretrained(directory)
        if hasattr(processor, "image_processor") and hasattr(processor, "tokenizer"):
            return processor
    except (ImportError, AttributeError, ValueError):
        pass  # saved by the image-only processor (no processor_config.json), or no video support here
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(directory)
    template = Path(directory) / CHAT_TEMPLATE_FILE
    chat_template = template.read_text() if template.is_file() else QWEN2_5_VL_CHAT_TEMPLATE
    return make_processor(image_processor, PreTrainedTokenizerFast.from_pretrained(directory), chat_template)


def build_tiny_processor(min_pixels: int = TINY_MIN_PIXELS, max_pixels: int = TINY_MAX_PIXELS) -> Qwen2_5_VLProcessor:
    """Qwen's own processor: dynamic resolution within [min_pixels, max_pixels] (smart_resize)."""
    image_processor = Qwen2VLImageProcessorPil(size={"shortest_edge": min_pixels, "longest_edge": max_pixels},
                                               patch_size=14, temporal_patch_size=2, merge_size=2)
    return make_processor(image_processor, build_tiny_tokenizer())


def padded_vocab_size(n_tokens: int, multiple: int = 128) -> int:
    return int(math.ceil(n_tokens / multiple) * multiple)


def _ids(tokenizer) -> dict:
    conv = tokenizer.convert_tokens_to_ids
    return dict(image_token_id=conv(IMAGE_PAD), video_token_id=conv(VIDEO_PAD),
                vision_start_token_id=conv(VISION_START), vision_end_token_id=conv(VISION_END))


def tiny_qwen2_text_config(tokenizer, *, tied: bool = True) -> dict:
    """The tiny Qwen2 decoder (hidden 64, 2 layers, GQA, M-RoPE) both tiny Qwen VL families share."""
    return dict(vocab_size=padded_vocab_size(len(tokenizer)), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
                bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                tie_word_embeddings=tied)


def tiny_qwen2_5_vl_config(processor: Qwen2_5_VLProcessor, *, tied: bool = True) -> Qwen2_5_VLConfig:
    """Tiny Qwen2.5-VL: ViT (hidden 32, 2 blocks, one full-attention) + Qwen2 decoder (hidden 64, 2 layers, GQA)."""
    tokenizer = processor.tokenizer
    vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=14, spatial_merge_size=2,
                  temporal_patch_size=2, window_size=56, fullatt_block_indexes=[1], out_hidden_size=64)
    cfg = Qwen2_5_VLConfig(vision_config=vision, text_config=tiny_qwen2_text_config(tokenizer, tied=tied),
                           tie_word_embeddings=tied, **_ids(tokenizer))
    cfg.pad_token_id = tokenizer.pad_token_id
    return cfg


def qwen2_5_vl_shaped_config(size: str, tokenizer) -> Qwen2_5_VLConfig:
    """Qwen2.5-VL-3B/7B-Instruct's architecture (config.json of the release), special ids from ``tokenizer``."""
    vision = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, patch_size=14, spatial_merge_size=2,
                  temporal_patch_size=2, window_size=112, fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2)
    rope = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]}
    if size == "3b":
        text = dict(vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                    num_attention_heads=16, num_key_value_heads=2, tie_word_embeddings=True)
    elif size == "7b":
        text = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                    num_attention_heads=28, num_key_value_heads=4, tie_word_embeddings=False)
    else:
        raise ValueError(f"unknown Qwen2.5-VL size {size!r}: expected 3b or 7b")
    vision["out_hidden_size"] = text["hidden_size"]
    text.update(max_position_embeddings=128000, rope_parameters=rope, rms_norm_eps=1e-6, bos_token_id=None,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return Qwen2_5_VLConfig(vision_config=vision, text_config=text, tie_word_embeddings=text["tie_word_embeddings"],
                            **_ids(tokenizer))


RANDOM_PRESETS = {"random-3b": "3b", "random-7b": "7b"}
PRESETS = (TINY, TINY_UNTIED, *RANDOM_PRESETS)


def load_qwen2_5_vl(checkpoint: str, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                    seed: int = 0) -> tuple[Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor]:
    """``(model, processor)`` from a preset (no network, deterministic under ``seed``) or a checkpoint."""
    if checkpoint in (TINY, TINY_UNTIED):
        processor = build_tiny_processor()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = Qwen2_5_VLForConditionalGeneration(tiny_qwen2_5_vl_config(processor, tied=checkpoint == TINY))
            # A fresh head gives logits of about +-1; a trained LM's span tens of nats (see the
            # LLaVA tiny preset): give the stand-in's output rows a trained-like scale.
            with torch.no_grad():
                model.lm_head.weight.normal_(0.0, TINY_HEAD_STD)
        model = model.to(device=device, dtype=dtype)
    elif checkpoint in RANDOM_PRESETS:
        processor = build_tiny_processor(QWEN_MIN_PIXELS, QWEN_MAX_PIXELS)
        config = qwen2_5_vl_shaped_config(RANDOM_PRESETS[checkpoint], processor.tokenizer)
        with torch.random.fork_rng(devices=[]), torch.device(device):
            torch.manual_seed(seed)
            model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    else:
        processor = load_processor(checkpoint)
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(checkpoint, dtype=dtype).to(device)
    if processor.tokenizer.pad_token is None:
        processor.tokenizer.pad_token = ENDOFTEXT
    return model, processor

