"""The perception-token vocabulary extension, for any family's model and tokenizer.

``add_perception_tokens`` adds Aurora's token strings to the tokenizer, resizes the
embeddings and initialises every new row explicitly (also rows that were already there
as padding of the embedding matrix), returning a :class:`TokenMap` (token -> id, taken
from the tokenizer, never from constants), saved as ``token_map.json`` beside an adapter.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from perception_tokens.vocab import all_tokens, vocabulary_hash

TOKEN_MAP_FILE = "token_map.json"
# how new embedding rows start: "mean_noise" (the project's: mean of the old rows + seeded noise) or
# "model_init" (the reference's: the model's own N(0, initializer_range) init)
NEW_ROW_INITS = ("mean_noise", "model_init")


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
        """The map's tokens in vocabulary order (``all_tokens()`` order; a per-skill map holds a subset),
        then the tokens of kinds outside the registry (VPT's) in the order they were added."""
        return _vocabulary_order(self.ids)

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
        order = _vocabulary_order(ids)
        if vhash != vocabulary_hash(order):
            raise ValueError(
                f"{path}: token map was made for vocabulary {vhash}, this code has {vocabulary_hash()}"
            )
        return cls(ids=ids, vocabulary_hash=vhash)

    @classmethod
    def of(cls, ids: dict[str, int]) -> "TokenMap":
        return cls(ids=ids, vocabulary_hash=vocabulary_hash(_vocabulary_order(ids)))


def _vocabulary_order(ids: dict[str, int]) -> list[str]:
    """The registry's order for registered kinds; tokens of kinds outside the default registry (VPT's)
    follow in the order they were added (ascending id; token_map.json is written with sorted keys):
    without them an adapter holding only those would carry the empty vocabulary's hash, train no rows
    and fail to reload its own token map."""
    ordered = [t for t in all_tokens() if t in ids]
    known = set(ordered)
    return ordered + sorted((t for t in ids if t not in known), key=ids.__getitem__)


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
    model: torch.nn.Module,
    tokenizer,
    *,
    pad_to_multiple_of: int | None = None,
    seed: int = 0,
    noise_scale: float = 0.3,
    tokens: list[str] | None = None,
    init: str = "mean_noise",
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
    ``init="model_init"`` instead draws every new row (padding too) from N(0, initializer_range^2),
    seeded: what the reference's ``model.resize_token_embeddings(len(tokenizer))`` (Aurora
    ``LLaVA/llava/train/train.py:981``) gives on transformers 4.37.2, whose resize runs the model's
    ``_init_weights`` (normal, std ``config.initializer_range``) on the new matrix before copying the
    old rows back.
    Idempotent for a tokenizer that already holds the tokens (ids are reused).
    """
    if init not in NEW_ROW_INITS:
        raise ValueError(f"init must be one of {NEW_ROW_INITS}, got {init!r}")
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
    if init == "model_init":
        std = initializer_range(model)
        fresh = torch.cat([new_ids, pad_only])
        with torch.no_grad():
            for layer in _distinct_layers(model):
                draw = torch.randn(len(fresh), layer.weight.shape[1], generator=generator) * std
                layer.weight[fresh.to(layer.weight.device)] = draw.to(layer.weight.dtype).to(layer.weight.device)
        return TokenMap.of(ids)
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


def initializer_range(model: torch.nn.Module) -> float:
    """The std of the model's own ``_init_weights`` for embeddings (the text config's ``initializer_range``)."""
    config = model.config
    for cfg in (config.get_text_config() if hasattr(config, "get_text_config") else config, config):
        value = getattr(cfg, "initializer_range", None)
        if value is not None:
            return float(value)
    raise ValueError(f"{type(model).__name__}: its config has no initializer_range for new_row_init model_init")


def _distinct_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """Input embeddings and LM head, once each when they share one weight (a tied head)."""
    layers = [model.get_input_embeddings()]
    head = model.get_output_embeddings()
    if head is not None and head.weight.data_ptr() != layers[0].weight.data_ptr():
        layers.append(head)
    return layers


def add_tokens(model, processor, config, tokens: list[str] | None = None) -> TokenMap:
    """:func:`add_perception_tokens` as a run config (``FinetuneConfig``) asks: padding multiple, seed, noise, init."""
    return add_perception_tokens(model, processor.tokenizer, pad_to_multiple_of=config.pad_embeddings_to_multiple_of,
                                 seed=config.seed, noise_scale=config.new_token_noise, tokens=tokens,
                                 init=getattr(config, "new_row_init", "mean_noise"))
