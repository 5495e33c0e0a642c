"""The exported grammar (llguidance, token-id literals) agrees with the HF logits processor.

1,000 random token sequences over the tiny LLaVA tokenizer with the perception tokens:
for each, the processor and the grammar must reject at the same position (or both accept
all of it), and on the first 60 sequences they must allow the same set of next tokens at
every accepted position. The sequences are built from the token strings alone (spans of
99-101 codes, groups of 1-5 coordinates in or out of order, stray perception tokens), not
from either implementation's rules, so roughly half are accepted and half rejected at
many different places.
"""

import numpy as np
import pytest
import torch

pytest.importorskip("llguidance")

from evaluation.constrained import DepthSpanLogitsProcessor  # noqa: E402
from evaluation.constraint_grammar import lark_grammar, llguidance_matcher  # noqa: E402
from perception_tokens.vocab import DEPTH_END, DEPTH_START, all_tokens, depth_code_token, pixel_token  # noqa: E402
from training.llava.model import build_tiny_tokenizer  # noqa: E402

N_SEQUENCES = 1000
N_MASK_CHECKED = 60


# 1,000-row steps are many small tensor ops: extra threads only contend on a shared CI box.
pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def setup():
    tok = build_tiny_tokenizer()
    tok.add_tokens(all_tokens(), special_tokens=False)
    proc = DepthSpanLogitsProcessor(tok)
    matcher = llguidance_matcher(tok, lark_grammar(proc))
    return tok, proc, matcher


def random_sequences(tok, n: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    vocab = tok.get_vocab()
    perception = set(all_tokens())
    text = [i for t, i in vocab.items() if t not in perception and i != tok.eos_token_id]
    with_open = [i for t, i in vocab.items() if "(" in t and t not in perception]
    with_close = [i for t, i in vocab.items() if ")" in t and t not in perception]
    commas = [i for t, i in vocab.items() if "," in t and t not in perception]
    start, end = vocab[DEPTH_START], vocab[DEPTH_END]
    codes = [vocab[depth_code_token(k)] for k in range(128)]
    pixels = [vocab[pixel_token(v)] for v in range(336)]
    stray = [start, end, codes[0], codes[77], pixels[5], pixels[335]]
    pick = lambda xs: int(xs[rng.integers(len(xs))])  # noqa: E731

    def group() -> list[int]:
        n_coords = int(rng.choice([1, 2, 2, 3, 4, 4, 4, 5]))
        values = list(rng.integers(0, 336, size=n_coords))
        if n_coords >= 4 and rng.random() < 0.6:  # mostly a proper box: x2 > x1, y2 > y1
            values[0], values[1] = int(rng.integers(0, 300)), int(rng.integers(0, 300))
            values[2], values[3] = values[0] + int(rng.integers(1, 36)), values[1] + int(rng.integers(1, 36))
        if rng.random() < 0.05:
            values[0] = 335  # a point on the last column cannot grow into a box
        out = [pick(with_open)]
        for j, v in enumerate(values):
            if j:
                out.append(vocab[","] if rng.random() < 0.95 else pick(commas + text))
            out.append(pixels[int(v)])
        if rng.random() < 0.9:
            out.append(pick(with_close))
        return out

    def span() -> list[int]:
        n_codes = int(rng.choice([99, 100, 100, 100, 100, 101]))
        body = [pick(codes) for _ in range(n_codes)]
        if rng.random() < 0.05:
            body[int(rng.integers(len(body)))] = pick(pixels + text)
        return [start] + body + ([end] if rng.random() < 0.9 else [])

    sequences = []
    for _ in range(n):
        seq: list[int] = []
        for _ in range(int(rng.integers(1, 7))):
            r = rng.random()
            if r < 0.45:
                seq += [pick(with_open + with_close + commas if rng.random() < 0.3 else text)
                        for _ in range(int(rng.integers(1, 6)))]
            elif r < 0.8:
                seq += group()
            elif r < 0.95:
                seq += span()
            else:
                seq.append(pick(stray))
        if rng.random() < 0.15:
            seq.append(tok.eos_token_id)
        sequences.append(seq)
    return sequences


def processor_prefixes(proc, tok, sequences) -> tuple[list[int], list[list[torch.Tensor]]]:
    """How many leading tokens of each sequence the processor allows, and its keep masks
    for the first sequences (all rows decoded together, as in a batched ``generate``:
    the incremental path)."""
    width = max(map(len, sequences))
    filler = tok.convert_tokens_to_ids("the") if "the" in tok.get_vocab() else 5
    ids = torch.tensor([[tok.bos_token_id] + s + [filler] * (width - len(s)) for s in sequences])
    lengths = torch.tensor([len(s) for s in sequences])
    proc.prompt_length = 1
    ok = lengths.clone()  # first rejected position, or the length when all are allowed
    rows = torch.arange(len(sequences))
    masks: list[list[torch.Tensor]] = [[] for _ in sequences]
    for t in range(width):
        keep = proc(ids[:, : 1 + t], torch.zeros(len(sequences), len(tok))) > torch.finfo(torch.float32).min
        live = (t < lengths) & (ok == lengths)  # not yet rejected, still inside the sequence
        for i in range(N_MASK_CHECKED):
            if live[i]:
                masks[i].append(keep[i].clone())
        rejected = live & ~keep[rows, ids[:, 1 + t]]
        ok[rejected] = t
    return ok.tolist(), masks


def test_processor_and_grammar_agree_on_1000_random_sequences(setup):
    tok, proc, pristine = setup
    sequences = random_sequences(tok, N_SEQUENCES)
    by_processor, masks = processor_prefixes(proc, tok, sequences)
    vocab = len(tok)
    disagreements = []
    for i, seq in enumerate(sequences):
        matcher = pristine.deep_copy()  # (reset() after compute_logit_bias is not reliable in llguidance 1.9)
        by_grammar = matcher.validate_tokens(seq)
        if by_grammar != by_processor[i]:
            disagreements.append((i, by_processor[i], by_grammar))
            continue
        if i < N_MASK_CHECKED:
            # Same allowed next-token set at every position the processor reached.
            for t, keep in enumerate(masks[i][: by_processor[i] + 1]):
                if t == len(seq):
                    break
                grammar_keep = torch.frombuffer(bytearray(matcher.compute_logit_bias()), dtype=torch.uint8)[:vocab] > 0
                assert torch.equal(grammar_keep, keep), (i, t, (grammar_keep ^ keep).nonzero().flatten().tolist()[:10])
                if t < by_processor[i]:
                    assert matcher.consume_token(seq[t])
    assert not disagreements, disagreements[:10]
    accepted = sum(p == len(s) for p, s in zip(by_processor, sequences))
    # The sample exercises both outcomes, and rejections at many different places.
    assert 300 <= accepted <= 700, accepted
    assert len({p for p, s in zip(by_processor, sequences) if p < len(s)}) >= 50


def test_grammar_rejects_what_the_rules_forbid(setup):
    tok, proc, matcher = setup
    v = tok.convert_tokens_to_ids
    px = lambda k: v(pixel_token(k))  # noqa: E731
    box = [v("Ġ("), px(10), v(","), px(20), v(","), px(30), v(","), px(40), v(")")]
    collapsed = [v("Ġ("), px(10), v(","), px(20), v(","), px(10), v(","), px(40), v(")")]
    span = [v(DEPTH_START)] + [v(depth_code_token(3))] * 100 + [v(DEPTH_END)]
    cases = {
        "box": (box, len(box)),
        "x2 == x1": (collapsed, 5),
        "pixel without an opener": ([v("A"), px(3)], 1),
        "101st code": ([v(DEPTH_START)] + [v(depth_code_token(3))] * 101, 101),
        "second depth map": (span + span, len(span)),
    }
    for name, (seq, expected) in cases.items():
        assert matcher.deep_copy().validate_tokens(seq) == expected, name
