"""LLaVA model loading: real checkpoints and the presets built from config.

``load_llava`` gives ``(model, processor)`` for a real checkpoint (local dir or hub id)
or for the preset ``"tiny"``: a small LLaVA built from config with the same classes as
LLaVA-1.5 (CLIP vision tower + projector + Llama), and a tokenizer trained offline on a
built-in corpus, so the whole fine-tune can run and be tested on a laptop.

The perception tokens are added by :func:`training.finetune.tokens.add_perception_tokens`
(every family's).
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoProcessor,
    CLIPImageProcessorPil as CLIPImageProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

TINY = "tiny"
IMAGE_TOKEN = "<image>"
TINY_HEAD_STD = 0.3

# LLaVA-1.5's conversation format ("USER: <image>\n{question} ASSISTANT: {answer}</s>").
# Content may be a plain string or a list of {"type": "image"|"text"} parts (HF style).
LLAVA_15_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ 'USER: ' }}{% elif message['role'] == 'assistant' %}{{ ' ASSISTANT: ' }}"
    "{% else %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>\n' }}{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ ' ASSISTANT:' }}{% endif %}"
)

# Curriculum-like English used to train the tiny tokenizer: the prompts and answers the
# Aurora curriculum actually contains, so tokenization of them is short and realistic.
_TINY_CORPUS = [
    "USER: What is the depth map for the image? ASSISTANT: The depth map is shown.",
    "What is the depth map for the image?",
    "Which point is closer to the camera? Answer with the letter of the point.",
    "Which of the marked points is farther from the camera, A or B?",
    "The point marked A is closer to the camera than the point marked B.",
    "How many objects are in the image? Answer with a number.",
    "How many people are there in the picture? There are three people.",
    "Count the cars in the image. The answer is 2.",
    "Give the bounding boxes of all the chairs in the image.",
    "Find the bounding box of the dog. The box is given in pixels.",
    "First, I compute the depth map of the image, then I compare the depth at each point.",
    "Let me think step by step. The depth tokens show that point C is nearest.",
    "A B C D E. 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20.",
    "Options: (A) left (B) right (C) top (D) bottom. Answer: (A).",
    "Is the table closer than the lamp? Yes. No. The answer is yes.",
    "Describe the image. A red ball on a wooden floor next to a blue box and a green cup.",
    "the a an of in on at to is are was were be with and or for from by this that these those",
    "image picture photo scene object objects point points camera depth map box boxes number",
]


# ---------------------------------------------------------------------------- loading


def load_llava(
    checkpoint: str,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """Load ``(model, processor)`` from a local dir, a hub id, or a preset.

    Presets (no network, deterministic under ``seed``): ``"tiny"`` (2-layer CLIP + 2-layer
    Llama, 56 px images) and ``"random-7b"``/``"random-13b"`` (LLaVA-1.5 shapes, random
    weights, built directly on ``device``; pass ``device="meta"`` to inspect shapes only).
    """
    if checkpoint == TINY:
        processor = build_tiny_processor()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = LlavaForConditionalGeneration(tiny_llava_config(processor))
            # A trained LM's logits span tens of nats; a fresh head (std 0.02 on 64 dims) gives
            # logits within about +-1, so frozen base-vocabulary rows (eos, the space before a
            # perception span) could never win under LoRA. Give the stand-in a trained-like scale.
            with torch.no_grad():
                model.lm_head.weight.normal_(0.0, TINY_HEAD_STD)
        model = model.to(device=device, dtype=dtype)
    elif checkpoint in RANDOM_PRESETS:
        # LLaVA-1.5-shaped model with random weights (speed/memory runs): the tiny tokenizer
        # (its ids all fit in the 32064-row matrix) and a 336 px image processor.
        processor = build_tiny_processor(image_size=336, patch_size=14)
        config = RANDOM_PRESETS[checkpoint]()
        tokenizer = processor.tokenizer
        config.image_token_index = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        config.text_config.bos_token_id = tokenizer.bos_token_id
        config.text_config.eos_token_id = tokenizer.eos_token_id
        config.text_config.pad_token_id = config.pad_token_id = tokenizer.pad_token_id
        with torch.random.fork_rng(devices=[]), torch.device(device):
            torch.manual_seed(seed)
            model = LlavaForConditionalGeneration._from_config(config, dtype=dtype)
    else:
        processor = AutoProcessor.from_pretrained(checkpoint)
        model = LlavaForConditionalGeneration.from_pretrained(checkpoint, dtype=dtype)
        model = model.to(device)
    if getattr(processor.tokenizer, "pad_token", None) is None:
        # LLaVA-1.5 ships a <pad>; other Llama tokenizers may not: pad with unk (never a target).
        processor.tokenizer.pad_token = processor.tokenizer.unk_token or processor.tokenizer.eos_token
    return model, processor


def build_tiny_tokenizer(vocab_size: int = 600) -> PreTrainedTokenizerFast:
    """A small byte-level BPE tokenizer trained offline on a built-in corpus.

    Special tokens follow LLaVA-1.5: ``<unk>``, ``<s>`` (bos, prepended), ``</s>`` (eos),
    ``<pad>`` and the ``<image>`` placeholder. Training is deterministic.
    """
    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_TINY_CORPUS * 4, trainer=trainer)
    bos_id = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        padding_side="right",
        model_max_length=2048,
    )
    fast.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    fast.chat_template = LLAVA_15_CHAT_TEMPLATE
    return fast


def build_tiny_processor(image_size: int = 56, patch_size: int = 14) -> LlavaProcessor:
    """LlavaProcessor = CLIPImageProcessor at ``image_size`` + the tiny tokenizer."""
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=build_tiny_tokenizer(),
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token
        chat_template=LLAVA_15_CHAT_TEMPLATE,
    )


def tiny_llava_config(processor: LlavaProcessor, image_size: int = 56, patch_size: int = 14) -> LlavaConfig:
    """Tiny LLaVA-1.5-shaped config: 2-layer CLIP (hidden 32) + 2-layer Llama (hidden 64)."""
    tokenizer = processor.tokenizer
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=patch_size,
        projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    return _llava_config(vision, text, tokenizer.convert_tokens_to_ids(IMAGE_TOKEN), (image_size // patch_size) ** 2)


def _llava_config(vision: CLIPVisionConfig, text: LlamaConfig, image_token_id: int, image_seq_length: int) -> LlavaConfig:
    cfg = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_token_id,
        image_seq_length=image_seq_length,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        projector_hidden_act="gelu",
        tie_word_embeddings=False,
    )
    cfg.pad_token_id = text.pad_token_id
    return cfg


def _clip_large_336() -> CLIPVisionConfig:
    return CLIPVisionConfig(
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
        image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu",
    )


def _llava_1_5_shaped_config(hidden_size: int, intermediate_size: int, layers: int, heads: int) -> LlavaConfig:
    """A llava-1.5-hf architecture (Vicuna text model + CLIP-L/336) of the given text-model size."""
    text = LlamaConfig(
        vocab_size=32064, hidden_size=hidden_size, intermediate_size=intermediate_size, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=4096,
        rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=32001, tie_word_embeddings=False,
    )
    return _llava_config(_clip_large_336(), text, image_token_id=32000, image_seq_length=576)


def llava_7b_shaped_config() -> LlavaConfig:
    """llava-1.5-7b-hf's architecture (random weights when instantiated): for GPU speed runs."""
    return _llava_1_5_shaped_config(hidden_size=4096, intermediate_size=11008, layers=32, heads=32)


def llava_13b_shaped_config() -> LlavaConfig:
    """llava-1.5-13b-hf's architecture (random weights when instantiated)."""
    return _llava_1_5_shaped_config(hidden_size=5120, intermediate_size=13824, layers=40, heads=40)


RANDOM_PRESETS = {"random-7b": llava_7b_shaped_config, "random-13b": llava_13b_shaped_config}
