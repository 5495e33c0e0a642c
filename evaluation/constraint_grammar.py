"""The perception-token constraint as a grammar over token ids, for grammar engines.

:class:`~evaluation.constrained.DepthSpanLogitsProcessor` is the constraint inside
``transformers.generate``. Serving stacks (vLLM, SGLang, llama.cpp) constrain with a
grammar engine instead; :func:`lark_grammar` writes the same rules in llguidance's Lark
dialect, where ``<[12,40-52]>`` matches one token whose id is in the set and
``<[^...]>`` one whose id is not. Every terminal is a token id, so the grammar says
nothing about text and matches exactly what the processor allows, token by token
(tests/evaluation/test_eval_constraint_grammar.py checks both on 1,000 random sequences).

Shape (ids read from the processor, i.e. from the tokenizer's vocabulary)::

    start : items (span items)?          # at most one depth map
            (with [SEG]: start: items SEG spans | spans, where spans is the line above:
             [SEG] at most once, before the depth map)
    span  : START CODE{100} END
    items : (PLAIN | OPENER group?)*      # pixels only right after a "("-ending token
    group : x1 "," y1 ("," x2 "," y2)? (CLOSER | CLOSER_OPENER group?)
            with x2 > x1 and y2 > y1

The corner order makes the grammar large: ``x1 .. y1 .. x2 .. y2`` are crossing
dependencies, so the rules hold one alternative per (x1, y1) pair (225k alternatives on
the 336 grid, 1.8 MB of text; llguidance compiles it in about 2 s on one CPU core). Each
literal is a named rule used by reference, which keeps the grammar under llguidance's
65k-symbol limit.
"""

from __future__ import annotations

from itertools import combinations
from typing import Iterable

from evaluation.constrained import BOX_COORDS, DepthSpanLogitsProcessor

assert BOX_COORDS == 4  # the group rule below spells out x1, y1, x2, y2


def _id_set(ids: Iterable[int], *, negate: bool = False) -> str:
    """``<[a,b-c]>`` (or ``<[^...]>``) for a set of token ids, runs folded into ranges."""
    ids = sorted(set(int(i) for i in ids))
    if not ids:
        raise ValueError("empty token-id set")
    parts, lo = [], ids[0]
    for prev, cur in zip(ids, ids[1:] + [None]):
        if cur != prev + 1:
            parts.append(str(lo) if lo == prev else f"{lo}-{prev}")
            lo = cur
    return "<[" + ("^" if negate else "") + ",".join(parts) + "]>"


def _span_rules(processor: DepthSpanLogitsProcessor) -> list[str]:
    """``start`` and one ``span`` rule per span kind: each kind at most once, in any order.

    With the one depth kind this is ``start: items (span items)?``. With several, ``rest_<set>``
    is what may follow once the kinds in ``<set>`` are still open to appear (2^k rules).
    """
    spans = processor.spans
    if len(spans) == 1:
        sp = spans[0]
        return ["start: items (span items)?",
                f"span: {_id_set([sp.start_id])} {_id_set(sp.code_ids)}{{{sp.length}}} {_id_set([sp.end_id])}"]
    lines = [f"span{n}: {_id_set([sp.start_id])} {_id_set(sp.code_ids)}{{{sp.length}}} {_id_set([sp.end_id])}"
             for n, sp in enumerate(spans)]

    def rest(left: tuple[int, ...]) -> str:
        return "rest_" + ("_".join(map(str, left)) or "none")

    everything = tuple(range(len(spans)))
    for size in range(len(spans) + 1):
        for left in combinations(everything, size):
            alts = [f"span{n} {rest(tuple(m for m in left if m != n))}" for n in left]
            lines.append(f"{rest(left)}: items" + (f" ({' | '.join(alts)})?" if alts else ""))
    lines.append(f"start: {rest(everything)}")
    return lines


def _control_rule(processor: DepthSpanLogitsProcessor, lines: list[str]) -> list[str]:
    """With a control token ([SEG]) in the tokenizer: it may come once, before any span
    (Perceptio's segmentation -> depth -> answer order); the span rules become ``spans``."""
    if processor.control_id < 0:
        return lines
    renamed = ["spans:" + line[len("start:"):] if line.startswith("start:") else line for line in lines]
    return renamed + [f"start: items {_id_set([processor.control_id])} spans | spans"]


def lark_grammar(processor: DepthSpanLogitsProcessor) -> str:
    """The processor's rules as an llguidance Lark grammar with token-id literals.

    Prefix semantics match the processor's: a sequence is allowed token by token; the
    grammar accepts (may stop) wherever the processor would allow end-of-sequence, i.e.
    outside a depth span and outside a point/box group.
    """
    if not processor.constrain_depth:
        raise ValueError("grammar export covers the default constraint (constrain_depth=True)")
    spans = processor.spans
    perception = {*processor.pixel_ids, *({processor.control_id} - {-1}), *(i for sp in spans for i in (sp.start_id, sp.end_id, *sp.code_ids))}
    lines = _control_rule(processor, _span_rules(processor))
    if not processor.constrain_boxes:
        lines.append(f"items: {_id_set(perception, negate=True)}*")
        return "\n".join(lines) + "\n"

    openers = set(processor.opener_ids)
    closers = set(processor.closer_ids)
    plain_closers, opening_closers = closers - openers, closers & openers
    lines.append(f"items: ({_id_set(perception | openers, negate=True)} | {_id_set(openers)} group?)*")
    close = []
    if plain_closers:
        close.append(_id_set(plain_closers))
    if opening_closers:
        close.append(f"{_id_set(opening_closers)} group?")  # e.g. ")(" closes one group and opens the next
    lines.append(f"group: body ({' | '.join(close)})")

    # Each distinct literal is named once (llguidance gives every literal occurrence its
    # own symbol, and a grammar may hold fewer than 65k symbols).
    pix = processor.pixel_ids
    grid = processor.pixel_grid
    last = grid - 1
    lines.append(f"comma: {_id_set(processor.comma_ids)}")
    lines.append(f"pixel: {_id_set(pix)}")
    lines += [f"p{v}: {_id_set([pix[v]])}" for v in range(grid)]
    lines += [f"a{v}: {_id_set(pix[v + 1:])}" for v in range(last)]  # pixels above v
    lines.append("body: " + " | ".join(f"p{k} comma y{k}" for k in range(grid)))
    for k in range(grid):
        # y1 = m; a point may close after it; a box goes on with x2 > k and y2 > m. The
        # alternatives start with disjoint token sets: llguidance's lexer commits to one
        # lexeme per token, so overlapping literals in one place would drop a branch.
        if k == last:
            lines.append(f"y{k}: pixel")
        else:
            # (Spelled "p | p x a", not "p (x a)?": each inline group would be one more symbol.)
            alts = [alt for m in range(last) for alt in (f"p{m}", f"p{m} x{k} a{m}")]
            lines.append(f"y{k}: " + " | ".join(alts + [f"p{last}"]))
    lines += [f"x{k}: comma a{k} comma" for k in range(last)]  # ", x2 ," with x2 > x1
    return "\n".join(lines) + "\n"


def llguidance_matcher(tokenizer, grammar: str):
    """An ``llguidance.LLMatcher`` for ``grammar`` over a Hugging Face fast tokenizer.

    Raises ``ValueError`` with llguidance's message when the grammar does not compile."""
    try:
        import llguidance
        import llguidance.hf
    except ImportError as exc:  # an optional extra: pip install '.[serve]'
        raise ImportError("llguidance is not installed; pip install 'perception-tokens[serve]'") from exc
    lltok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=len(tokenizer))
    matcher = llguidance.LLMatcher(lltok, grammar, log_level=0)
    if matcher.is_error():
        raise ValueError(f"grammar does not compile: {matcher.get_error()}")
    return matcher


def region_lark_grammar(processor) -> str:
    """A :class:`~evaluation.region_constraint.RegionLogitsProcessor`'s rules as an llguidance grammar.

    ``x_min <= x_max`` and ``y_min <= y_max`` cross (x0 y0 x1 y1), so the region rule holds one
    alternative per (x_min, y_min) pair: k^2 of them (256 at k = 16). Accepts (may stop) only
    outside a region.
    """
    k = processor.grid
    region_ids = [processor.start_id, processor.end_id, *processor.x_ids, *processor.y_ids]
    lines = ["start: (plain | region)*",
             f"plain: {_id_set(region_ids, negate=True)}",
             f"rstart: {_id_set([processor.start_id])}",
             f"rend: {_id_set([processor.end_id])}"]
    lines += [f"x{c}: {_id_set([processor.x_ids[c]])}" for c in range(k)]
    lines += [f"y{c}: {_id_set([processor.y_ids[c]])}" for c in range(k)]
    lines += [f"xge{c}: {_id_set(processor.x_ids[c:])}" for c in range(k)]  # x_max >= c
    lines += [f"yge{c}: {_id_set(processor.y_ids[c:])}" for c in range(k)]  # y_max >= c
    lines.append("region: rstart (" + " | ".join(f"corner{a}" for a in range(k)) + ")")
    lines += [f"corner{a}: x{a} (" + " | ".join(f"y{b} xge{a} yge{b} rend" for b in range(k)) + ")" for a in range(k)]
    return "\n".join(lines) + "\n"
