"""The Qwen2.5-VL fine-tune end to end on the tiny model: loss falls, depth spans become well-formed,
the adapter reloads in a fresh process, and a merged checkpoint keeps the perception tokens intact."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import Qwen2_5_VLForConditionalGeneration

from perception_tokens.vocab import DEPTH_START, decode_depth
from training.backends import adapter_family, get_backend
from training.backends.qwen2_5_vl.model import load_processor
from training.finetune.config import FinetuneConfig
from training.finetune.lora import LoraSettings
from training.finetune.probes import depth_span_wellformed_rate, generate_depth_answers
from training.llava.synthetic import fixed_depth_codes, make_synthetic_records

REPO = Path(__file__).resolve().parents[2]
BACKEND = get_backend("qwen2_5_vl")


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("qwen_ft")
    records = make_synthetic_records(8, root / "images", size=112)
    config = FinetuneConfig(checkpoint="tiny", max_steps=40, per_device_batch_size=4, lr=1e-2, projector_lr=1e-3,
                            warmup_ratio=0.0, logging_steps=10, save_steps=1000, lora=LoraSettings(r=16, alpha=32))
    model, processor = BACKEND.load("tiny", seed=config.seed)
    BACKEND.add_tokens(model, processor, config)
    before = depth_span_wellformed_rate(model.eval(), processor, records[:4], image_dir=root / "images")
    result = BACKEND.run_finetune(config, records, root / "images", root / "run", log=lambda _m: None)
    return {"root": root, "records": records, "result": result, "before": before}


def test_loss_falls_and_spans_become_wellformed(trained):
    result = trained["result"]
    losses = [loss for _, loss in result.loss_history]
    assert losses[-1] < 0.2 * losses[0]
    assert trained["before"] == 0.0
    model, processor = BACKEND.reload_adapter(result.adapter_dir)
    after = depth_span_wellformed_rate(model, processor, trained["records"][:4], image_dir=trained["root"] / "images")
    assert after >= 0.75
    meta = json.loads((result.adapter_dir / "finetune_config.json").read_text())
    assert meta["family"] == "qwen2_5_vl" and adapter_family(result.adapter_dir) == "qwen2_5_vl"


def test_adapter_reloads_in_a_fresh_process_with_the_same_answers(trained):
    adapter, image_dir = trained["result"].adapter_dir, trained["root"] / "images"
    model, processor = BACKEND.reload_adapter(adapter)
    here = generate_depth_answers(model, processor, trained["records"][:2], image_dir=image_dir)
    script = (
        "import json, sys, torch; torch.set_num_threads(1)\n"
        "from training.backends import reload_adapter\n"
        "from training.finetune.probes import generate_depth_answers\n"
        f"records = json.loads({json.dumps(json.dumps(trained['records'][:2]))})\n"
        f"model, processor = reload_adapter({str(adapter)!r})\n"
        f"print(json.dumps(generate_depth_answers(model, processor, records, image_dir={str(image_dir)!r})))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    there = json.loads(proc.stdout.strip().splitlines()[-1])
    assert there == here
    assert decode_depth(there[0]) == fixed_depth_codes(0)


def test_merged_model_generates_perception_tokens_intact(trained, tmp_path):
    """Serving path (vLLM, TGI, plain transformers): merge LoRA into the weights, save, load as a plain
    checkpoint, generate; decoding with skip_special_tokens=False keeps every perception token."""
    model, processor = BACKEND.reload_adapter(trained["result"].adapter_dir)
    merged = model.merge_and_unload()
    merged.save_pretrained(tmp_path / "merged")
    processor.save_pretrained(tmp_path / "merged")
    served = Qwen2_5_VLForConditionalGeneration.from_pretrained(tmp_path / "merged").eval()
    served_processor = load_processor(str(tmp_path / "merged"))
    assert served.get_input_embeddings().weight.shape[0] == len(served_processor.tokenizer)

    from PIL import Image

    from training.llava.data import generation_prompt

    record = trained["records"][0]
    image = Image.open(trained["root"] / "images" / record["image"]).convert("RGB")
    inputs = served_processor(images=[image], text=[generation_prompt(served_processor, "What is the depth map for the image?")],
                              return_tensors="pt")
    out = served.generate(**inputs, max_new_tokens=110, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1]:]
    raw = served_processor.tokenizer.decode(new, skip_special_tokens=False)
    assert raw.startswith(DEPTH_START) and raw.endswith("<|im_end|>")
    span = raw[: -len("<|im_end|>")]
    assert decode_depth(span) == fixed_depth_codes(0)
    # each perception token is one id, and decoding it alone gives back its string
    assert all(served_processor.tokenizer.convert_ids_to_tokens(int(i)).startswith("<DEPTH_") for i in new[:-1])
