"""A toy benchmark and a toy token kind, each registered in one place, show up everywhere
they should: CLI choices, settings validation, the Dagster assets (and a materialization
that reads the toy set), the vocabulary, the logits processor and the llguidance grammar."""

import json
import re
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import torch

from assets.evaluation import build_benchmark_assets, build_evaluation_assets
from evaluation.benchmarks import registry, split_rows
from evaluation.benchmarks.records import gold_number, iter_jsonl, read_image_file, reject
from evaluation.constrained import DepthSpanLogitsProcessor
from evaluation.constraint_grammar import lark_grammar
from perception_tokens import token_kinds, vocab
from perception_tokens.images import encode_png
from pipeline_lib.settings import ConfigError, settings_from_dict
from pipelines.cli import build_parser

# ---------------------------------------------------------------------------- a toy benchmark


def read_toy(root: Path, subsets, images):
    """One jsonl of open-ended counting questions with their images beside it."""
    for item in iter_jsonl(root / "toy.jsonl", "ToyCount", "toy.jsonl"):
        if not isinstance(item, tuple):
            yield item
            continue
        _, obj = item
        qid, gold = str(obj.get("id")), gold_number(obj.get("answer"))
        if gold is None:
            yield reject("ToyCount", "toy.jsonl", qid, f"answer {obj.get('answer')!r} is not a whole number")
            continue
        image = read_image_file(root, obj.get("image"))
        if isinstance(image, str):
            yield reject("ToyCount", "toy.jsonl", qid, image)
            continue
        yield {"benchmark": "ToyCount", "subset": "count", "question_id": qid, "question": obj["q"], "prompt": obj["q"],
               "choices": None, "valid_letters": [], "gold": gold, "image_bytes": image,
               "image_file": obj["image"], "answer_type": "number"}


TOY_BENCHMARK = registry.BenchmarkSpec("toycount", "ToyCount", read_toy, ("count",), "number", "toy.jsonl + images")


@pytest.fixture
def toy_benchmark(tmp_path):
    root = tmp_path / "toy"
    root.mkdir()
    (root / "a.png").write_bytes(encode_png(np.full((8, 8, 3), 200, np.uint8)))
    lines = [{"id": 1, "q": "How many squares?", "answer": 2, "image": "a.png"},
             {"id": 2, "q": "How many circles?", "answer": "two", "image": "a.png"},
             {"id": 3, "q": "How many lines?", "answer": 0, "image": "../outside.png"}]
    (root / "toy.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    registry.register(TOY_BENCHMARK)
    yield root
    registry.unregister("toycount")


def test_toy_benchmark_reads_through_the_registry(toy_benchmark):
    rows, rejects = split_rows(registry.read_benchmark("toycount", toy_benchmark))
    assert [(r["question_id"], r["gold"], r["answer_type"]) for r in rows] == [("1", "2", "number")]
    assert [(r.dataset, r.stage, r.record_id) for r in rejects] == [("ToyCount", "benchmark", "2"), ("ToyCount", "benchmark", "3")]
    assert "unsafe image path" in rejects[1].reason
    scored, _ = split_rows(registry.read_subsets("toycount", toy_benchmark, "count"))
    assert [r["question_id"] for r in scored] == ["1"]
    with pytest.raises(ValueError, match=r"toycount has no subset 'Depth'; its subsets are \['count'\]"):
        registry.read_subsets("toycount", toy_benchmark, "Depth")


def test_toy_benchmark_is_a_cli_choice_and_a_settings_key(toy_benchmark):
    args = build_parser().parse_args(["score", "--benchmark", "toycount", "--root", str(toy_benchmark), "--answers", "a.jsonl"])
    assert args.benchmark == "toycount"
    s = settings_from_dict({"evaluation": {"roots": {"toycount": str(toy_benchmark), "hardblink": "/hb"}}})
    assert s.evaluation.roots == {"toycount": str(toy_benchmark), "hardblink": "/hb"}
    # released with its images: it takes no image folder
    with pytest.raises(ConfigError, match=r"evaluation.images: \['toycount'\] not among the benchmarks \['blink_counting', 'seed_counting', 'refcoco_res'\]"):
        settings_from_dict({"evaluation": {"images": {"toycount": "/imgs"}}})
    registry.unregister("toycount")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", "--benchmark", "toycount", "--root", "x"])
    with pytest.raises(ConfigError, match=r"evaluation.roots: \['toycount'\] not among the benchmarks"):
        settings_from_dict({"evaluation": {"roots": {"toycount": "/x"}}})


def test_toy_benchmark_gets_an_asset_feeding_the_evaluation(toy_benchmark, tmp_path, monkeypatch):
    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    settings = settings_from_dict({"evaluation": {"roots": {"toycount": str(toy_benchmark)}}})
    assets = build_benchmark_assets(settings)
    keys = [k.to_user_string() for a in assets for k in a.keys]
    assert sorted(keys) == sorted(f"benchmark_{n}{suffix}" for n in registry.names() for suffix in ("", "_rejects"))
    assert "benchmark_toycount" in keys and len(keys) == 16  # 7 built-in benchmarks and the toy, each with its rejects
    (eval_predictions, _), _ = build_evaluation_assets(settings)
    deps = {k.to_user_string() for k in eval_predictions.dependency_keys}
    assert {f"benchmark_{n}" for n in registry.names()} <= deps and "benchmark_toycount" in deps

    from pipelines.definitions import build_resources

    toy_asset = next(a for a in assets if dg.AssetKey("benchmark_toycount") in a.keys)
    resources = build_resources(settings)
    result = dg.materialize([toy_asset], resources={k: resources[k] for k in ("io_manager", "storage", "benchmarks")},
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    import pyarrow.parquet as pq

    table = pq.read_table(Path(settings.storage_root) / "benchmark_toycount.parquet").to_pylist()
    assert [(r["benchmark"], r["question_id"], r["gold"]) for r in table] == [("ToyCount", "1", "2")]
    rejected = pq.read_table(Path(settings.storage_root) / "benchmark_toycount_rejects.parquet").to_pylist()
    assert sorted(r["record_id"] for r in rejected) == ["2", "3"]


def test_a_reader_that_breaks_its_spec_fails_loudly(toy_benchmark):
    liar = registry.BenchmarkSpec("toyletters", "ToyCount", read_toy, ("count",), "letter", "toy.jsonl")
    registry.register(liar)
    try:
        with pytest.raises(ValueError, match="toyletters reader yielded a row of benchmark 'ToyCount' with answer_type 'number'"):
            split_rows(registry.read_benchmark("toyletters", toy_benchmark))
    finally:
        registry.unregister("toyletters")


def test_registry_refuses_duplicates_and_bad_names():
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.get("hardblink"))
    with pytest.raises(ValueError, match="lower-case identifier"):
        registry.BenchmarkSpec("Toy-Count", "T", read_toy, ("count",), "number", "x")
    with pytest.raises(ValueError, match=r"unknown benchmark 'mmbench'; expected one of \['hardblink'"):
        registry.get("mmbench")


# ---------------------------------------------------------------------------- a toy token kind

SEG_CODES = 6
SEG_LENGTH = 4


def encode_seg(codes) -> str:
    return "<SEG_START>" + "".join(f"<SEG_{int(c)}>" for c in codes) + "<SEG_END>"


def decode_seg(text: str) -> list[int]:
    m = re.fullmatch(r"<SEG_START>((?:<SEG_\d+>){%d})<SEG_END>" % SEG_LENGTH, text.strip())
    if not m:
        raise vocab.TokenParseError("not a segmentation span", text)
    return [int(v) for v in re.findall(r"<SEG_(\d+)>", m.group(1))]


SEG = token_kinds.TokenKind(
    "seg", "<SEG_",
    token_kinds.SpanShape("<SEG_START>", "<SEG_END>", tuple(f"<SEG_{k}>" for k in range(SEG_CODES)), SEG_LENGTH),
    encode=encode_seg, decode=decode_seg, find=lambda text: re.findall(r"<SEG_START>.*?<SEG_END>", text),
    templates={"atomic_question": "What is the segmentation mask of the image?"},
)


@pytest.fixture
def seg_kind():
    token_kinds.register(SEG)
    yield SEG
    token_kinds.unregister("seg")


def test_toy_kind_joins_the_vocabulary(seg_kind):
    tokens = vocab.all_tokens()
    assert len(tokens) == 130 + 336 + 2 + SEG_CODES
    assert tokens[-(SEG_CODES + 2):] == ["<SEG_START>", "<SEG_END>"] + [f"<SEG_{k}>" for k in range(SEG_CODES)]
    assert vocab.skill_tokens(["seg"]) == tokens[-(SEG_CODES + 2):]
    assert vocab.skills_in_text(["<SEG_START><SEG_1>", "a <DEPTH_START>"]) == ["depth", "seg"]
    assert seg_kind.decode(seg_kind.encode([0, 5, 2, 1])) == [0, 5, 2, 1]
    with pytest.raises(ValueError, match="overlaps"):
        token_kinds.register(token_kinds.TokenKind("seg2", "<SEG_X", token_kinds.GroupShape(("<SEG_X1>",)),
                                                   encode=str, decode=str, find=list))


def test_toy_kind_vocabulary_hash_is_back_to_the_builtin_one_after_unregistering():
    before = vocab.vocabulary_hash()
    token_kinds.register(SEG)
    try:
        assert vocab.vocabulary_hash() != before
    finally:
        token_kinds.unregister("seg")
    assert vocab.vocabulary_hash() == before == "002afe285b2998f6"


class Tokenizer:
    """A vocabulary of a few text tokens and every registered perception token."""

    unk_token_id = 0

    def __init__(self):
        self.vocab = {t: i for i, t in enumerate(["<unk>", "<s>", "Ġthe", "Ġ(", ",", ")"] + vocab.all_tokens())}

    def get_vocab(self):
        return dict(self.vocab)

    def convert_tokens_to_ids(self, token):
        return self.vocab.get(token, 0)


def allowed(proc, tok, generated: list[str]) -> set[str]:
    ids = torch.tensor([[tok.vocab["<s>"]] + [tok.vocab[t] for t in generated]])
    out = proc(ids, torch.zeros(1, len(tok.vocab)))
    names = {i: t for t, i in tok.vocab.items()}
    return {names[i] for i in range(len(tok.vocab)) if out[0, i] > -1e30}


def test_toy_kind_is_constrained_like_a_depth_span(seg_kind):
    tok = Tokenizer()
    proc = DepthSpanLogitsProcessor(tok, prompt_length=1)
    assert [sp.name for sp in proc.spans] == ["depth", "seg"]
    seg_codes = {f"<SEG_{k}>" for k in range(SEG_CODES)}
    outside = allowed(proc, tok, [])
    assert "<SEG_START>" in outside and "<DEPTH_START>" in outside
    assert not outside & (seg_codes | {"<SEG_END>", "<DEPTH_END>"})
    assert allowed(proc, tok, ["<SEG_START>", "<SEG_1>"]) == seg_codes
    assert allowed(proc, tok, ["<SEG_START>"] + ["<SEG_3>"] * SEG_LENGTH) == {"<SEG_END>"}
    after = allowed(proc, tok, ["<SEG_START>"] + ["<SEG_3>"] * SEG_LENGTH + ["<SEG_END>"])
    assert "<SEG_START>" not in after and "<DEPTH_START>" in after  # one span per kind
    depth_then = allowed(proc, tok, ["<DEPTH_START>"] + ["<DEPTH_7>"] * 100 + ["<DEPTH_END>"])
    assert "<DEPTH_START>" not in depth_then and "<SEG_START>" in depth_then


def test_toy_kind_is_in_the_grammar_and_llguidance_agrees(seg_kind):
    pytest.importorskip("llguidance")
    from training.llava.model import build_tiny_tokenizer

    from evaluation.constraint_grammar import llguidance_matcher

    tok = build_tiny_tokenizer()
    tok.add_tokens(vocab.all_tokens(), special_tokens=False)
    proc = DepthSpanLogitsProcessor(tok)
    grammar = lark_grammar(proc)
    v = tok.convert_tokens_to_ids
    start, end = v("<SEG_START>"), v("<SEG_END>")
    assert f"span1: <[{start}]> <[{v('<SEG_0>')}-{v(f'<SEG_{SEG_CODES - 1}>')}]>{{{SEG_LENGTH}}} <[{end}]>" in grammar
    assert "start: rest_0_1" in grammar
    matcher = llguidance_matcher(tok, grammar)
    seg = [start] + [v("<SEG_2>")] * SEG_LENGTH + [end]
    depth = [v("<DEPTH_START>")] + [v("<DEPTH_3>")] * 100 + [v("<DEPTH_END>")]
    word = [v("the")] if "the" in tok.get_vocab() else []
    cases = {
        "seg then depth": (seg + word + depth, len(seg + word + depth)),
        "depth then seg": (depth + seg, len(depth + seg)),
        "second seg span": (seg + seg, len(seg)),
        "5th seg code": ([start] + [v("<SEG_2>")] * (SEG_LENGTH + 1), SEG_LENGTH + 1),
        "depth code inside a seg span": ([start, v("<DEPTH_3>")], 1),
    }
    for name, (seq, expected) in cases.items():
        assert matcher.deep_copy().validate_tokens(seq) == expected, name
        proc.prompt_length = 1
        ids = torch.tensor([[tok.bos_token_id] + seq])
        ok = len(seq)
        for t in range(len(seq)):
            keep = proc(ids[:, : 1 + t], torch.zeros(1, len(tok)))[0, seq[t]] > -1e30
            if not keep:
                ok = t
                break
        assert ok == expected, name


def test_builtin_kinds_decode_text_to_their_outputs():
    from training.vqvae.model import DepthVQVAE, tiny_config

    depth, pixel = token_kinds.get("depth"), token_kinds.get("pixel")
    codes = [(7 * i) % 128 for i in range(100)]
    text = f"The depth map for the image is {depth.encode(codes)}. Box {pixel.encode((3, 4, 30, 40))}"
    assert [depth.decode(span) for span in depth.find(text)] == [codes]
    assert pixel.find(text)[0].as_tuple() == (3, 4, 30, 40)
    render = token_kinds.resolve_renderer(depth)
    assert render is DepthVQVAE.decode_codes
    model = DepthVQVAE(tiny_config()).eval()
    with torch.inference_mode():
        depth_map = render(model, torch.tensor([codes]))
    size = model.config.image_size
    assert tuple(depth_map.shape) == (1, 1, size, size) and torch.isfinite(depth_map).all()
    assert token_kinds.resolve_renderer(pixel)(pixel.find(text)[0]) == (3, 4, 30, 40)
    assert depth.templates["answer"].format(depth="X") == "The depth map for the image is X."
