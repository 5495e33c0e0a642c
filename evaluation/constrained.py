"""Constrained decoding of perception tokens: a transformers ``LogitsProcessor``.

Rules, per row, derived only from the ids generated so far (never from hidden state):

Depth maps (and every span-shaped kind of :mod:`perception_tokens.token_kinds`, each on its own)
  - after ``<DEPTH_START>``: only depth codes, until exactly ``DEPTH_SPAN`` (100) codes;
    then only ``<DEPTH_END>``;
  - outside a span: no depth codes and no ``<DEPTH_END>``;
  - at most one depth map per answer: once a span has closed, ``<DEPTH_START>`` is banned.

The control token ``[SEG]`` (Perceptio's, when its kind is registered and the tokenizer has it)
  - at most once per answer, and only before any span has opened: segmentation, then the
    depth map, then the answer (a ``[SEG]`` after a depth map is refused).

Boxes ``(<PIXEL_x1>,<PIXEL_y1>,<PIXEL_x2>,<PIXEL_y2>)`` and points ``(<PIXEL_x>,<PIXEL_y>)``
(the curriculum's depth CoT writes the marked points as 2-coordinate groups)
  - a pixel token may only open a group right after a token whose text ends with ``(``;
  - inside a group, after a pixel token: the comma token after the 1st and 3rd pixel,
    the comma or a closer after the 2nd (a point ends there), only a closer after the
    4th; the 3rd and 4th values must exceed the 1st and 2nd (x2 > x1, y2 > y1); a closer is a token whose text starts with ``)`` (the tokenizer may merge
    ``)`` with what follows, e.g. ``).``); after a comma: only pixel tokens;
  - no pixel token anywhere else, and no depth tokens inside a box (nor pixels in a span).

Which ids are commas, openers and closers is read from the tokenizer's vocabulary
(token strings, with the SentencePiece ``▁`` / byte-level ``Ġ`` space markers
stripped), so the rules follow the tokenizer rather than assume ids.

Cost: O(1) per row per step. Each row's :class:`RowState` is kept between calls and
advanced by the one new token (a rescan of the row happens only when the batch is not the
continuation of the previous call: a new ``generate`` call, a new ``prompt_length``, or
rows reordered as beam search does). Every state maps to one of a few hundred "keep"
masks over the vocabulary, built once per (vocabulary size, device); a step is one
gather of those masks and one ``masked_fill`` for the whole batch.

The same rules as a grammar over token ids (llguidance / vLLM): see
:mod:`evaluation.constraint_grammar`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from transformers import LogitsProcessor

from perception_tokens import token_kinds

POINT_COORDS = 2  # points "(<PIXEL_x>,<PIXEL_y>)" in the depth CoT answers
BOX_COORDS = 4  # boxes "(<PIXEL_x1>,<PIXEL_y1>,<PIXEL_x2>,<PIXEL_y2>)"
_SPACE_MARKERS = ("\u2581", "\u0120", " ")  # SentencePiece ▁, byte-level Ġ, plain space


@dataclass(frozen=True)
class SpanIds:
    """One span-shaped token kind (:class:`~perception_tokens.token_kinds.SpanShape`) as token ids."""

    name: str
    start_id: int
    end_id: int
    code_ids: list[int]
    length: int


@dataclass
class RowState:
    """Where one row stands; advanced one token at a time (:meth:`DepthSpanLogitsProcessor.advance`)."""

    in_span: bool = False
    span_kind: int = 0  # index in ``processor.spans`` of the open span
    codes_in_span: int = 0
    spans_closed: int = 0  # bit k set: a span of kind k has closed (one per kind per answer)
    in_box: bool = False
    pixels_in_box: int = 0
    coords: tuple[int, ...] = ()  # pixel values of the open group so far (at most 4)
    last_was_comma: bool = False  # inside a box
    last_opens_box: bool = False  # last token's text ends with "("
    control_seen: bool = False  # the control token ([SEG]) has been written


def _token_ids(tokenizer, tokens: Sequence[str]) -> list[int] | None:
    """Ids of ``tokens`` if the tokenizer knows every one of them, else ``None``."""
    unk = getattr(tokenizer, "unk_token_id", None)
    ids = []
    for t in tokens:
        i = tokenizer.convert_tokens_to_ids(t)
        if i is None or (unk is not None and i == unk):
            return None
        ids.append(int(i))
    return ids


def _vocab_strings(tokenizer) -> dict[int, str]:
    """id -> token text with leading space markers removed."""
    out = {}
    for token, idx in tokenizer.get_vocab().items():
        text = token
        while text[:1] in _SPACE_MARKERS and text:
            text = text[1:]
        out[int(idx)] = text
    return out


class DepthSpanLogitsProcessor(LogitsProcessor):
    """Keep generated perception tokens well-formed (see module docstring).

    ``prompt_length``: index in ``input_ids`` where the answer starts: an int for all
    rows (with left padding every row's prompt ends at the same column), or one int per
    row (e.g. when an answer prefix of different lengths was appended to each prompt;
    the prefix counts as answer so its depth span is seen). ``None`` takes the length of
    ``input_ids`` at the first call, i.e. everything before generation is prompt; use a
    fresh processor for each ``generate`` call in that case. Setting ``prompt_length``
    drops the kept row states (the next call rescans).
    """

    def __init__(
        self,
        tokenizer,
        prompt_length: int | Sequence[int] | None = None,
        *,
        constrain_depth: bool = True,
        constrain_boxes: bool = True,
    ):
        # Span kinds (depth maps, and any other registered SpanShape kind) the tokenizer knows.
        self.spans: list[SpanIds] = []
        for kind in token_kinds.span_kinds():
            shape = kind.shape
            ids = _token_ids(tokenizer, [shape.start, shape.end, *shape.codes])
            if ids is not None:
                self.spans.append(SpanIds(kind.name, ids[0], ids[1], ids[2:], shape.length))
        if constrain_depth and not self.spans:
            names = "/".join(k.name for k in token_kinds.span_kinds())
            raise ValueError(f"tokenizer lacks the {names} perception tokens; add them before constraining depth")
        self.constrain_depth = constrain_depth  # (every span kind, depth among them)
        depth = next((sp for sp in self.spans if sp.name == "depth"), None)
        self.depth_start_id, self.depth_end_id = (depth.start_id, depth.end_id) if depth else (-1, -1)
        self.depth_code_ids = depth.code_ids if depth else []

        control = token_kinds.control_kind()
        control_ids = _token_ids(tokenizer, control.tokens) if control else None
        self.control_id = control_ids[0] if control_ids else -1  # -1: no [SEG] in this tokenizer

        group = token_kinds.group_kind()
        self.pixel_grid = len(group.shape.values) if group else 0
        pixels = _token_ids(tokenizer, list(group.shape.values)) if group else None
        # A depth-only tokenizer has no pixel tokens: then there is nothing to constrain.
        self.constrain_boxes = constrain_boxes and pixels is not None
        self.pixel_ids = pixels or []

        strings = _vocab_strings(tokenizer) if self.constrain_boxes else {}
        perception = set(self.pixel_ids) | ({self.control_id} - {-1}) | {i for sp in self.spans for i in (sp.start_id, sp.end_id, *sp.code_ids)}
        self.comma_ids = sorted(i for i, s in strings.items() if s == "," and i not in perception)
        self.opener_ids = frozenset(i for i, s in strings.items() if s.endswith("(") and i not in perception)
        self.closer_ids = sorted(i for i, s in strings.items() if s.startswith(")") and i not in perception)
        if self.constrain_boxes and (not self.comma_ids or not self.closer_ids or not self.opener_ids):
            raise ValueError("tokenizer has no ',' / '(' / ')' tokens; cannot constrain boxes")

        self._code_sets = [frozenset(sp.code_ids) for sp in self.spans]
        self._start_kind = {sp.start_id: k for k, sp in enumerate(self.spans)}
        self._pixel_set = frozenset(self.pixel_ids)
        self._pixel_value = {i: v for v, i in enumerate(self.pixel_ids)}
        self._comma_set = frozenset(self.comma_ids)
        self._closer_set = frozenset(self.closer_ids)
        self._keys = self._all_keys()
        self._key_index = {k: n for n, k in enumerate(self._keys)}
        self._tables: dict[tuple, torch.Tensor] = {}
        self.prompt_length = prompt_length

    @property
    def prompt_length(self) -> int | Sequence[int] | None:
        return self._prompt_length

    @prompt_length.setter
    def prompt_length(self, value: int | Sequence[int] | None) -> None:
        self._prompt_length = value
        self._reset()

    def _reset(self) -> None:
        self._states: list[RowState] | None = None
        self._seen = 0  # input_ids length at the last call
        self._last: list[int] = []  # each row's last token at the last call

    # ------------------------------------------------------------------ state

    def advance(self, st: RowState, tok: int) -> None:
        """Move ``st`` past one generated token (in place, O(1))."""
        if st.in_span:
            if tok in self._code_sets[st.span_kind]:
                st.codes_in_span += 1
            elif tok == self.spans[st.span_kind].end_id:
                st.in_span, st.spans_closed = False, st.spans_closed | (1 << st.span_kind)
            return
        if tok == self.control_id:
            st.control_seen, st.last_opens_box = True, False
            return
        kind = self._start_kind.get(tok)
        if kind is not None:
            st.in_span, st.span_kind, st.codes_in_span = True, kind, 0
            st.last_opens_box = False
            return
        if not self.constrain_boxes:
            return
        if tok in self._pixel_set:
            if st.in_box:
                st.pixels_in_box += 1
                st.coords += (self._pixel_value[tok],)
            elif st.last_opens_box:
                st.in_box, st.pixels_in_box = True, 1
                st.coords = (self._pixel_value[tok],)
            st.last_was_comma = False
        elif st.in_box and tok in self._comma_set:
            st.last_was_comma = True
        elif st.in_box:
            # A closer ends the group; anything else is only reachable when generation
            # was not constrained: leave the group either way.
            st.in_box, st.pixels_in_box, st.last_was_comma, st.coords = False, 0, False, ()
        st.last_opens_box = tok in self.opener_ids

    def row_state(self, generated: Sequence[int]) -> RowState:
        """Scan one row's generated ids and say where it stands."""
        st = RowState()
        for tok in generated:
            self.advance(st, int(tok))
        return st

    # ------------------------------------------------------------------ masks

    def state_key(self, st: RowState) -> tuple:
        """Which keep-mask applies to a row in state ``st`` (one of :meth:`_all_keys`)."""
        if self.constrain_depth and st.in_span:
            return ("codes", st.span_kind) if st.codes_in_span < self.spans[st.span_kind].length else ("end", st.span_kind)
        if self.constrain_boxes and st.in_box:
            n = st.pixels_in_box
            if st.last_was_comma:
                # x2 > x1 and y2 > y1: a box never collapses (GridBox refuses that).
                return ("above", st.coords[n - POINT_COORDS]) if n >= POINT_COORDS else ("pixels",)
            if n == POINT_COORDS:
                x1, y1 = st.coords
                if x1 >= self.pixel_grid - 1 or y1 >= self.pixel_grid - 1:
                    return ("closer",)  # no room for a box: it is a point
                return ("comma_or_closer",)  # a point may close here
            return ("comma",) if n < BOX_COORDS else ("closer",)
        closed = st.spans_closed if self.constrain_depth else 0
        pixels_ok = not self.constrain_boxes or st.last_opens_box
        # [SEG] once, before any span: outside a span, closed != 0 means one has been written
        control_banned = self.constrain_depth and (st.control_seen or closed != 0)
        return ("outside", closed, pixels_ok, control_banned)

    def _all_keys(self) -> list[tuple]:
        kinds = range(len(self.spans))
        keys: list[tuple] = [(what, k) for k in kinds for what in ("codes", "end")]
        keys += [("pixels",), ("comma",), ("closer",), ("comma_or_closer",)]
        keys += [("above", v) for v in range(self.pixel_grid)]
        # which span kinds have closed (a bit set each) x whether a pixel may open a group
        # x whether the control token ([SEG]) is banned
        keys += [("outside", c, p, b) for c in range(1 << len(self.spans)) for p in (False, True) for b in (False, True)]
        return keys

    def _table(self, vocab: int, device: torch.device) -> torch.Tensor:
        """``[len(keys), vocab]`` bool: which ids each state keeps."""
        key = (vocab, device)
        if key not in self._tables:
            def ids_mask(ids: Sequence[int]) -> torch.Tensor:
                m = torch.zeros(vocab, dtype=torch.bool)
                ids = [i for i in ids if 0 <= i < vocab]
                if ids:
                    m[torch.tensor(ids)] = True
                return m

            codes = [ids_mask(sp.code_ids) for sp in self.spans]
            starts, ends = [ids_mask([sp.start_id]) for sp in self.spans], [ids_mask([sp.end_id]) for sp in self.spans]
            pixels, comma, closer = ids_mask(self.pixel_ids), ids_mask(self.comma_ids), ids_mask(self.closer_ids)
            control = ids_mask([self.control_id] if self.control_id >= 0 else [])
            value = torch.full((vocab,), -1, dtype=torch.long)  # pixel value of each id, -1 if none
            for v, i in enumerate(self.pixel_ids):
                if i < vocab:
                    value[i] = v
            rows = []
            for k in self._keys:
                if k[0] == "above":
                    rows.append(value > k[1])
                elif k[0] in ("codes", "end"):
                    rows.append((codes if k[0] == "codes" else ends)[k[1]])
                elif k[0] == "outside":
                    _, closed, pixels_ok, control_banned = k
                    banned = torch.zeros(vocab, dtype=torch.bool)
                    if control_banned:
                        banned |= control
                    if self.constrain_depth:
                        for n in range(len(self.spans)):
                            banned |= codes[n] | ends[n]
                            if closed >> n & 1:
                                banned |= starts[n]
                    if not pixels_ok:
                        banned |= pixels
                    rows.append(~banned)
                else:
                    rows.append({"pixels": pixels, "comma": comma, "closer": closer,
                                 "comma_or_closer": comma | closer}[k[0]])
            self._tables[key] = torch.stack(rows).to(device)
        return self._tables[key]

    def keep_mask(self, st: RowState, vocab: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The ids a row in state ``st`` may generate next (bool, ``[vocab]``)."""
        return self._table(vocab, torch.device(device))[self._key_index[self.state_key(st)]]

    # ------------------------------------------------------------------ call

    def _states_for(self, input_ids: torch.LongTensor) -> list[RowState]:
        """Row states after every id in ``input_ids``: advanced by the one new column when
        this call continues the last one, else rescanned from each row's answer start."""
        batch, width = input_ids.shape
        tail = input_ids[:, -2:].tolist()  # one device->host copy of two columns
        continues = (
            self._states is not None
            and len(self._states) == batch
            and width == self._seen + 1
            and width >= 2
            and all(row[0] == last for row, last in zip(tail, self._last))
        )
        if continues:
            for st, row in zip(self._states, tail):
                self.advance(st, row[1])
        else:
            if self._prompt_length is None:
                self._prompt_length = width
            starts = (
                [int(self._prompt_length)] * batch
                if isinstance(self._prompt_length, int)
                else [int(s) for s in self._prompt_length]
            )
            if len(starts) != batch:
                raise ValueError(f"{len(starts)} prompt lengths for a batch of {batch}")
            rows = input_ids.tolist()
            self._states = [self.row_state(row[start:]) for row, start in zip(rows, starts)]
        self._seen = width
        self._last = [row[-1] for row in tail]
        return self._states

    def _drop_table(self, vocab: int, device: torch.device) -> torch.Tensor:
        """``~_table``: which ids each state removes (kept so a step does no inversion)."""
        key = ("drop", vocab, device)
        if key not in self._tables:
            self._tables[key] = ~self._table(vocab, device)
        return self._tables[key]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        states = self._states_for(input_ids)
        drop = self._drop_table(scores.shape[-1], scores.device)
        index = [self._key_index[self.state_key(st)] for st in states]
        if all(i == index[0] for i in index):
            mask = drop[index[0]]  # every row in the same state (common): broadcast one row
        else:
            mask = drop[torch.tensor(index, device=scores.device)]
        return scores.masked_fill(mask, torch.finfo(scores.dtype).min)
