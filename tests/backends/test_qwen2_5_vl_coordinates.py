"""Boxes and points in Qwen2.5-VL's convention (absolute pixels on the resized image), in training and
evaluation; LLaVA keeps the 336-grid <PIXEL_k> tokens byte for byte."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import LogitsProcessor

from evaluation.generate import GenerationSettings, answer_frame, generate_predictions, perception_spans
from perception_tokens.images import encode_png
from perception_tokens.vocab import PIXEL_GRID, encode_depth
from training.backends.qwen2_5_vl.coordinates import (
    ResizedFrame,
    frame_for,
    resized_image_size,
    to_model_conversations,
)
from training.backends.qwen2_5_vl.data import QwenConversationDataset
from training.backends.qwen2_5_vl.model import QWEN_MAX_PIXELS, QWEN_MIN_PIXELS, build_tiny_processor, load_qwen2_5_vl
from training.backends.qwen2_5_vl.train import add_tokens
from training.llava.data import IGNORE_INDEX, ConversationDataset, RecordError, render, to_messages
from training.finetune.tokens import add_perception_tokens
from training.llava.model import load_llava
from training.finetune.config import FinetuneConfig

COT = "we know the image is 336 x 336"
BOX = "(<PIXEL_10>,<PIXEL_20>,<PIXEL_300>,<PIXEL_330>)"
COUNT_ANSWER = f"{BOX}\n(<PIXEL_0>,<PIXEL_0>,<PIXEL_335>,<PIXEL_335>)\nThere are 2 cups."
DEPTH = encode_depth([(7 * i) % 128 for i in range(100)])


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def tiny_processor():
    return build_tiny_processor()  # min 56*56, max 112*112 pixels


@pytest.fixture(scope="module")
def released_budget_processor():
    return build_tiny_processor(QWEN_MIN_PIXELS, QWEN_MAX_PIXELS)  # Qwen2.5-VL's preprocessor_config.json


def records():
    point_answer = f"Point A is located at (<PIXEL_3>,<PIXEL_335>). The depth map for the image is {DEPTH}. (A)"
    return [
        {"id": "count", "image": "wide.png", "conversations": [
            {"from": "human", "value": f"<image>\nHow many cups are in the image?\nTo answer, {COT}. Count the boxes."},
            {"from": "gpt", "value": COUNT_ANSWER}]},
        {"id": "points", "image": "wide.png", "conversations": [
            {"from": "human", "value": "<image>\nWhich point is the closest to the camera?"},
            {"from": "gpt", "value": point_answer}]},
    ]


@pytest.fixture()
def image_dir(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "wide.png")
    return tmp_path


# ---------------------------------------------------------------------------- the frame


def test_640x480_resizes_as_the_processor_does_and_the_box_is_in_its_pixels(tiny_processor):
    frame = ResizedFrame.of_image(tiny_processor, 480, 640)
    assert (frame.height, frame.width) == (84, 112)  # 640x480 is 4.95x over 112*112 pixels: 6 x 8 patches of 14
    enc = tiny_processor(images=[Image.new("RGB", (640, 480))], text=["<|vision_start|><|image_pad|><|vision_end|>"],
                         return_tensors="pt")
    assert (enc["image_grid_thw"][0, 1:] * 14).tolist() == [84, 112]
    # x = g * 112 / 335, y = g * 84 / 335: 10 -> 3.3, 20 -> 5.0, 300 -> 100.3, 330 -> 82.7
    assert frame.to_model_text(BOX) == "[3, 5, 100, 83]"
    assert frame.to_model_text("(<PIXEL_3>,<PIXEL_335>)") == "[1, 84]"  # a point; 335 is the bottom edge
    assert frame.to_model_text(f"so {COT}.") == "so we know the image is 112 x 84."


def test_released_budget_keeps_640x480_near_native(released_budget_processor):
    frame = ResizedFrame.of_image(released_budget_processor, 480, 640)
    assert (frame.height, frame.width) == (476, 644)  # rounded to multiples of 28, within max_pixels
    assert frame.to_model_text(BOX) == "[19, 28, 577, 469]"  # 10*644/335=19.2, 20*476/335=28.4, 300->576.7, 330->468.9


@pytest.mark.parametrize("hw", [(480, 640), (336, 336)])
def test_round_trip_is_exact_when_the_resized_image_is_at_least_the_grid(released_budget_processor, hw):
    frame = ResizedFrame.of_image(released_budget_processor, *hw)
    assert min(frame.height, frame.width) >= PIXEL_GRID - 1
    for g in range(PIXEL_GRID):
        assert frame.box_to_grid(frame.box_from_grid((g, g, g, g))) == [g, g, g, g]


def test_round_trip_on_a_small_image_is_within_the_pixel_size(tiny_processor):
    frame = ResizedFrame.of_image(tiny_processor, 480, 640)  # 84 x 112: one pixel is 3-4 grid steps
    errors = [abs(a - b) for g in range(PIXEL_GRID)
              for a, b in zip(frame.box_to_grid(frame.box_from_grid((g, g, g, g))), (g, g, g, g))]
    assert max(errors) == 2 and np.mean(errors) < 1.0
    text = frame.to_grid_text(frame.to_model_text(COUNT_ANSWER))
    assert text == "(<PIXEL_9>,<PIXEL_20>,<PIXEL_299>,<PIXEL_331>)\n(<PIXEL_0>,<PIXEL_0>,<PIXEL_335>,<PIXEL_335>)\nThere are 2 cups."


def test_edges_clamp_to_the_image(tiny_processor):
    frame = ResizedFrame.of_image(tiny_processor, 480, 640)
    assert frame.box_from_grid((0, 0, 335, 335)) == [0, 0, 112, 84]  # the whole image
    assert frame.box_from_grid((0, 0, 400, 999)) == [0, 0, 112, 84]  # past the grid: the far edge
    assert frame.box_to_grid((0, 0, 112, 84)) == [0, 0, 335, 335]
    assert frame.box_to_grid((-0, 5, 500, 90)) == [0, 20, 335, 335]  # a model's box past the image: the grid edge
    assert frame.to_grid_text("[200, 300]") == "(<PIXEL_335>,<PIXEL_335>)"


def test_an_image_already_at_the_resized_size_is_kept(tiny_processor, released_budget_processor):
    assert resized_image_size(tiny_processor, 112, 112) == (112, 112)
    assert resized_image_size(released_budget_processor, 476, 644) == (476, 644)
    frame = ResizedFrame.of_image(released_budget_processor, 336, 336)  # 336 = 12 x 28: grid and pixels agree
    assert frame.to_model_text(BOX) == "[10, 20, 301, 331]"  # g * 336 / 335
    assert frame.to_grid_text("[10, 20, 301, 331]") == BOX


def test_stray_pixel_token_is_refused_not_half_converted(tiny_processor):
    frame = ResizedFrame.of_image(tiny_processor, 480, 640)
    with pytest.raises(RecordError, match=r"pixel token <PIXEL_4> outside a box or point"):
        frame.to_model_text("x <PIXEL_4> y")
    with pytest.raises(RecordError, match="outside a box or point"):
        frame.to_model_text("(<PIXEL_1>,<PIXEL_2>,<PIXEL_3>)")
    with pytest.raises(ValueError, match="not positive"):
        ResizedFrame(0, 10)


def test_aurora_plain_grid_points_are_converted_too(tiny_processor):
    frame = ResizedFrame.of_image(tiny_processor, 336, 336)  # 112 x 112
    assert frame.to_model_text("Point A is located at (x = 12 y = 300).") == "Point A is located at [4, 100]."


# ---------------------------------------------------------------------------- training data


def test_qwen_dataset_trains_on_absolute_pixels_and_depth_tokens(tiny_processor, image_dir):
    model, processor = load_qwen2_5_vl("tiny")
    add_tokens(model, processor, FinetuneConfig())
    assert "<PIXEL_0>" not in processor.tokenizer.get_vocab() and "<DEPTH_START>" in processor.tokenizer.get_vocab()
    dataset = QwenConversationDataset(records(), image_dir, processor)
    tok = processor.tokenizer
    count, points = dataset[0], dataset[1]
    assert (count["image_grid_thw"][0, 1:] * 14).tolist() == [84, 112]
    prompt = tok.decode(count["input_ids"])
    assert "we know the image is 112 x 84." in prompt and "<PIXEL_" not in prompt
    target = tok.decode(count["labels"][count["labels"] != IGNORE_INDEX])
    assert target == "[3, 5, 100, 83]\n[0, 0, 112, 84]\nThere are 2 cups.<|im_end|>"
    target = tok.decode(points["labels"][points["labels"] != IGNORE_INDEX])
    assert target == f"Point A is located at [1, 84]. The depth map for the image is {DEPTH}. (A)<|im_end|>"
    assert records()[0]["conversations"][1]["value"] == COUNT_ANSWER  # the records themselves are not touched


def test_llava_data_is_byte_identical(image_dir):
    model, processor = load_llava("tiny")
    add_perception_tokens(model, processor.tokenizer)
    assert frame_for(processor, 480, 640) is None  # not Qwen: no frame
    dataset = ConversationDataset(records(), image_dir, processor)
    for rec, item in zip(records(), dataset):
        text = render(processor, to_messages(rec["conversations"]))
        assert rec["conversations"][1]["value"] in text  # the grid tokens as written
        expected = processor(images=[Image.open(image_dir / "wide.png").convert("RGB")], text=text, return_tensors="pt")
        assert torch.equal(item["input_ids"], expected["input_ids"][0])
    assert COT in render(processor, to_messages(records()[0]["conversations"]))
    target = processor.tokenizer.decode(dataset[0]["labels"][dataset[0]["labels"] != IGNORE_INDEX])
    assert target.strip() == COUNT_ANSWER + "</s>"


def test_conversations_are_copied_with_every_turn_converted(tiny_processor):
    frame = ResizedFrame.of_image(tiny_processor, 480, 640)
    turns = records()[0]["conversations"]
    out = to_model_conversations(turns, frame)
    assert [t["from"] for t in out] == ["human", "gpt"] and out[0]["value"].endswith("image is 112 x 84. Count the boxes.")
    assert turns[0]["value"].endswith("image is 336 x 336. Count the boxes.")


# ---------------------------------------------------------------------------- evaluation


class ForceText(LogitsProcessor):
    """Makes a model write ``ids`` and then end: stands in for a trained model's answer."""

    def __init__(self, ids, eos_id):
        self.ids, self.prompt_length = list(ids) + [eos_id], None

    def __call__(self, input_ids, scores):
        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1]
        step = min(input_ids.shape[1] - self.prompt_length, len(self.ids) - 1)
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.ids[step]] = 0.0
        return forced


def count_row():
    rgb = np.random.default_rng(1).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    q = "How many cups are in the image?"
    return {"benchmark": "CV-Bench", "subset": "Count", "question_id": "1", "question": q, "prompt": q,
            "choices": None, "valid_letters": [], "gold": "2", "image_bytes": encode_png(rgb), "image_file": "1.png",
            "answer_type": "number"}


def test_eval_prompts_in_the_resized_frame_and_reads_boxes_back_on_the_grid():
    model, processor = load_qwen2_5_vl("tiny")
    add_tokens(model, processor, FinetuneConfig())
    model.eval()
    row = count_row()
    frame = answer_frame(processor, row, 336)  # every eval image is squashed to 336 x 336 first
    assert (frame.height, frame.width) == (112, 112)
    assert answer_frame(processor, row, 0) == ResizedFrame(56, 84)  # native 60 x 40, raised to min_pixels
    answer = "[3, 7, 100, 56]\n[0, 0, 112, 112]\nThere are 2 cups."
    ids = processor.tokenizer(answer, add_special_tokens=False)["input_ids"]
    settings = GenerationSettings(mode="cot", max_new_tokens=len(ids) + 1, batch_size=1)
    force = ForceText(ids, processor.tokenizer.eos_token_id)
    out = generate_predictions(model, processor, [row], settings, progress=False, extra_logits_processors=[force])[0]
    assert out["error"] is None
    assert "we know the image is 112 x 112." in out["prompt_text"]  # the CoT instruction in Qwen's frame
    assert out["raw_output"] == answer  # the model's own text is kept as written
    # boxes back in the benchmarks' 336 grid: x = p * 335 / 112
    assert out["boxes"] == [[9, 21, 299, 168], [0, 0, 335, 335]]
    assert out["pred"] == "2" and out["correct"]
    assert perception_spans(answer)["boxes"] == []  # read as written, LLaVA's parser would see no box
