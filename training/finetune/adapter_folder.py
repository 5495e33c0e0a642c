"""The run folder and the adapter folder: checkpoints to resume from, the atomic adapter save, its record.

A run folder holds ``checkpoints/`` (the Trainer's, for resume), ``adapter/`` and the loss
curve. The adapter folder holds the peft adapter, the processor (with the perception
tokens), ``token_map.json`` and ``finetune_config.json``: the base checkpoint, the model
family, the vocabulary hash, the embedding size and the run config, all a reload needs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from perception_tokens.vocab import vocabulary_hash
from training.finetune.config import FinetuneConfig

ADAPTER_DIRNAME = "adapter"
CHECKPOINT_DIRNAME = "checkpoints"
FINETUNE_CONFIG_FILE = "finetune_config.json"
LOSS_CURVE_FILE = "loss_curve.png"


def last_complete_checkpoint(checkpoint_dir: Path) -> str | None:
    """The newest checkpoint the Trainer finished writing.

    ``trainer_state.json`` is written last, so a checkpoint folder without it was cut off
    mid-save (a kill, a full disk): skip it and resume from the one before.
    """
    complete = [p for p in Path(checkpoint_dir).glob("checkpoint-*")
                if (p / "trainer_state.json").is_file() and p.name.split("-")[-1].isdigit()]
    if not complete:
        return None
    return str(max(complete, key=lambda p: int(p.name.split("-")[-1])))


def save_adapter(peft_model, processor, token_map, config: FinetuneConfig, adapter_dir: Path, *,
                 embedding_rows: int | None, family: str | None = None, segmentation_head=None,
                 beside: Sequence[Callable[[Path], None]] = (), vocabulary: str | None = None) -> None:
    """Write adapter + processor + token map + run record into a temp dir, then swap it in.

    ``family`` is recorded so loaders can dispatch (no key: LLaVA, the first family).
    ``segmentation_head`` (Perceptio's [SEG] head) is saved into the same folder, so it swaps in with it;
    so is whatever each of ``beside`` writes into the folder it is given (VPT's re-encoder).
    ``vocabulary``: the hash recorded when the run's tokens are not the registry's (VPT's: its token map's).
    """
    adapter_dir = Path(adapter_dir)
    adapter_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=adapter_dir.parent, prefix=f".{adapter_dir.name}."))
    try:
        # The new rows are rebuilt deterministically on reload and stored by the adapter
        # (trainable tokens or modules_to_save), so the full embedding matrices are not needed.
        peft_model.save_pretrained(str(tmp), save_embedding_layers=False)
        processor.save_pretrained(str(tmp))
        token_map.save(tmp)
        if segmentation_head is not None:
            segmentation_head.save_pretrained(tmp, config.segmentation)
        for write in beside:
            write(tmp)
        meta: dict[str, Any] = {
            "base_checkpoint": config.checkpoint,
            "vocabulary_hash": vocabulary or vocabulary_hash(),
            "embedding_rows": embedding_rows,
            "config": config.to_dict(),
        }
        if family:
            meta["family"] = family
        (tmp / FINETUNE_CONFIG_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
        old = adapter_dir.with_name(f".{adapter_dir.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if adapter_dir.exists():
            os.replace(adapter_dir, old)
        os.replace(tmp, adapter_dir)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_record(adapter_dir: str | os.PathLike) -> tuple[dict[str, Any], FinetuneConfig]:
    """``finetune_config.json`` of an adapter folder and the run config in it; a clear error naming the file."""
    path = Path(adapter_dir) / FINETUNE_CONFIG_FILE
    try:
        meta = json.loads(path.read_text())
        config = FinetuneConfig.from_dict(meta["config"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the fine-tune record ({exc})") from exc
    if config.segmentation.enabled:
        from perception_tokens import token_kinds

        token_kinds.enable("seg")  # the adapter's vocabulary has [SEG]: its token map must find it
    return meta, config


def attach_adapter(model, adapter_dir: str | os.PathLike, meta: dict[str, Any], *, saved_ids: dict[str, int],
                   new_ids: dict[str, int], device="cpu"):
    """The base ``model`` (perception tokens re-added, giving ``new_ids``) with the saved adapter, in eval mode.

    The ids the tokenizer gave must equal the saved ``token_map.json``'s, and the embedding
    matrix is brought to the saved size before the adapter's rows are loaded onto it.
    """
    from peft import PeftModel

    from training.finetune.lora import quiet_peft

    if new_ids != saved_ids:
        raise ValueError(f"{adapter_dir}: tokenizer ids differ from token_map.json; adapter and tokenizer do not match")
    rows = meta.get("embedding_rows")
    if rows and model.get_input_embeddings().weight.shape[0] != rows:
        model.resize_token_embeddings(rows, mean_resizing=False)
    with quiet_peft():
        peft_model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    peft_model.to(device)
    peft_model.eval()
    return peft_model
