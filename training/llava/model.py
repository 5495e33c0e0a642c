"""LLaVA model loading and the perception-token vocabulary extension.

``load_llava`` gives ``(model, processor)`` for a real checkpoint (local dir or hub id)
or for the preset ``"tiny"``: a small LLaVA built from config with the same classes as
LLaVA-1.5 (CLIP vision tower + projector + Llama), and a tokenizer trained offline on a
built-in corpus, so the whole fine-tune can run and be tested on a laptop.

``add_perception_tokens`` adds Aurora's token strings to the tokenizer, resizes the
embeddings and initialises every new row explicitly (also rows that were already there
as padding of the embedding matrix), returning a :class:`TokenMap` (token -> id, taken
from the tokenizer, never from constants).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

from perception_tokens.vocab import all_tokens, vocabulary_hash

TINY = "tiny"
TOKEN_MAP_FILE = "token_map.json"
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


# ---------------------------------------------------------------------------- tokens


@dataclass
class TokenMap:
    """Perception token string -> id in one tokenizer, with the vocabulary's identity."""

    ids: dict[str, int] = field(repr=False)
    vocabulary_hash: str = field(default_factory=vocabulary_hash)

    def __repr__(self) -> str:
        lo, hi = (min(self.ids.values()), max(self.ids.values())) if self.ids else (None, None)
        return f"TokenMap({len(self.ids)} tokens, ids {lo}..{hi}, vocabulary {self.vocabulary_hash})"

    def __getitem__(self, token: str) -> int:
        return self.ids[token]

    def __len__(self) -> int:
        return len(self.ids)

    def tokens(self) -> list[str]:
        """The map's tokens in vocabulary order (``all_tokens()`` order; a per-skill map holds a subset)."""
        return [t for t in all_tokens() if t in self.ids]

    def id_list(self) -> list[int]:
        """Ids in vocabulary order (``all_tokens()`` order)."""
        return [self.ids[t] for t in self.tokens()]

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``token_map.json`` atomically into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / TOKEN_MAP_FILE
        payload = {"vocabulary_hash": self.vocabulary_hash, "tokens": self.ids}
        _write_json_atomic(path, payload)
        return path

    @classmethod
    def load(cls, directory_or_file: str | os.PathLike) -> "TokenMap":
        path = Path(directory_or_file)
        if path.is_dir():
            path = path / TOKEN_MAP_FILE
        try:
            payload = json.loads(path.read_text())
            ids = {str(k): int(v) for k, v in payload["tokens"].items()}
            vhash = str(payload["vocabulary_hash"])
        except FileNotFoundError:
            raise
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: not a valid token map ({exc})") from exc
        order = [t for t in all_tokens() if t in ids]
        if vhash != vocabulary_hash(order) or len(order) != len(ids):
            raise ValueError(
                f"{path}: token map was made for vocabulary {vhash}, this code has {vocabulary_hash()}"
            )
        return cls(ids=ids, vocabulary_hash=vhash)

    @classmethod
    def of(cls, ids: dict[str, int]) -> "TokenMap":
        return cls(ids=ids, vocabulary_hash=vocabulary_hash([t for t in all_tokens() if t in ids]))


def _write_json_atomic(path: Path, payload: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def add_perception_tokens(
    model: LlavaForConditionalGeneration,
    tokenizer,
    *,
    pad_to_multiple_of: int | None = None,
    seed: int = 0,
    noise_scale: float = 0.3,
    tokens: list[str] | None = None,
) -> TokenMap:
    """Add every perception token to ``tokenizer`` and give each a fresh embedding row.

    Tokens are added as ordinary (non-special) tokens so decoding keeps them. The
    embedding matrix is grown (never shrunk) to hold the tokenizer; then every new
    token's row in the input embeddings and in the LM head is set to the mean of the
    pre-existing vocabulary rows plus seeded Gaussian noise (``noise_scale`` x per-dim std;
    without enough noise the new tokens start out nearly identical and take long to tell apart).
    That includes ids that land on rows the matrix already had as padding beyond the
    old tokenizer (e.g. llava-1.5-hf has 32064 rows for 32002 tokens), whose old
    contents are arbitrary. Rows added only as padding (``pad_to_multiple_of``) get the mean.
    Idempotent for a tokenizer that already holds the tokens (ids are reused).
    """
    tokens = all_tokens() if tokens is None else list(tokens)  # a per-skill run passes vocab.skill_tokens(...)
    already = [t for t in tokens if t in tokenizer.get_vocab()]
    if already and len(already) != len(tokens):
        raise ValueError(
            f"tokenizer holds {len(already)} of {len(tokens)} perception tokens; refusing a partial vocabulary"
        )
    if not already:
        tokenizer.add_tokens(tokens, special_tokens=False)
    ids = {t: int(tokenizer.convert_tokens_to_ids(t)) for t in tokens}
    if len(set(ids.values())) != len(tokens) or any(i is None or i < 0 for i in ids.values()):
        raise ValueError("tokenizer gave duplicate or missing ids for perception tokens")
    embed = model.get_input_embeddings()
    old_rows = embed.weight.shape[0]
    # Rows of real tokens from before the perception tokens: their mean seeds the new rows.
    n_known = min(min(ids.values()), old_rows)
    new_rows = max(len(tokenizer), old_rows)
    if pad_to_multiple_of:
        new_rows = -(-new_rows // pad_to_multiple_of) * pad_to_multiple_of
    if new_rows != old_rows:
        model.resize_token_embeddings(new_rows, mean_resizing=False)

    new_ids = torch.tensor(sorted(ids.values()), dtype=torch.long)
    pad_only = torch.tensor(
        [i for i in range(max(old_rows, len(tokenizer)), new_rows)], dtype=torch.long
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in (model.get_input_embeddings(), model.get_output_embeddings()):
            weight = layer.weight
            known = weight[:n_known].float()
            mean, std = known.mean(0), known.std(0)
            noise = torch.randn(len(new_ids), weight.shape[1], generator=generator) * std.cpu() * noise_scale
            weight[new_ids.to(weight.device)] = (mean.cpu() + noise).to(weight.dtype).to(weight.device)
            if len(pad_only):
                weight[pad_only.to(weight.device)] = mean.to(weight.dtype)
    return TokenMap.of(ids)
