"""The perception-token kind registry: the one list of token kinds the model can write.

A kind names its vocabulary (in the order tokens are added to a tokenizer), the shape
its tokens take in an answer (which the decoding constraint and its grammar enforce),
its text codec, the curriculum wording that asks for it, and what turns its decoded
values into an output. Everything else derives from this list:

- :func:`perception_tokens.vocab.all_tokens` / ``skill_tokens`` / ``skills_in_text`` /
  ``vocabulary_hash`` (tokenizer additions, per-skill vocabularies, adapter identity);
- :class:`evaluation.constrained.DepthSpanLogitsProcessor` (``transformers`` logits
  processor) and :func:`evaluation.constraint_grammar.lark_grammar` (llguidance) build
  their rules from each kind's :attr:`TokenKind.shape`.

Three shapes exist. :class:`SpanShape` (a start token, exactly ``length`` code tokens, an
end token; at most one span of each kind per answer) is the depth map's, and any new
kind of that shape (say a segmentation mask as codes of its own VQ-VAE) is supported by
the constraint and the grammar with no other change. :class:`GroupShape` (coordinate
groups ``(<v>,<v>)`` / ``(<v>,<v>,<v>,<v>)`` after a ``(``) is the boxes'; the constraint
supports one kind of that shape. :class:`ControlShape` is one control token written at most
once, before any span (Perceptio's ``[SEG]``: segmentation, then the depth map, then the
answer); the constraint supports one kind of that shape. Adding a kind: see CONTRIBUTING.md.

Optional kinds (:data:`OPTIONAL`, Perceptio's ``[SEG]``) are not in the vocabulary until a
run asks for them (:func:`enable`), so the builtin vocabulary, and its hash recorded with
every ``project`` / ``aurora`` adapter, stays as it was.

VPT's shapes (:class:`RegionShape`, :class:`TriggerShape`; arXiv 2502.17425) are built by
:func:`vpt_kinds` and kept out of :data:`BUILTIN`, so the default vocabulary does not change;
their decoding rules live in :mod:`evaluation.region_constraint`, not in the depth/box constraint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from perception_tokens import regions, vocab
from perception_tokens.curriculum import templates
from perception_tokens.named_registry import NamedRegistry


@dataclass(frozen=True)
class SpanShape:
    """``start`` + exactly ``length`` tokens of ``codes`` + ``end``; at most one span per answer."""

    start: str
    end: str
    codes: tuple[str, ...]
    length: int

    def tokens(self) -> list[str]:
        return [self.start, self.end, *self.codes]  # Aurora's add order: start, end, codes


@dataclass(frozen=True)
class GroupShape:
    """Groups of ``values`` tokens right after a ``(``: a point (2) or a box (4, x2 > x1, y2 > y1)."""

    values: tuple[str, ...]

    def tokens(self) -> list[str]:
        return list(self.values)


@dataclass(frozen=True)
class ControlShape:
    """One control token (``[SEG]``): at most once per answer, and only before any span opens."""

    token: str

    def tokens(self) -> list[str]:
        return [self.token]


@dataclass(frozen=True)
class TokenKind:
    """One kind of perception token."""

    name: str  # skill name ("depth", "pixel"): finetune's per-skill vocabulary, adapter metadata
    marker: str  # every token of the kind starts with it: finds the kind in a text
    shape: SpanShape | GroupShape | ControlShape | RegionShape | TriggerShape
    encode: Callable[[Any], str]  # values -> the tokens' text (codes -> a span, a box -> a group)
    decode: Callable[[str], Any]  # one span/group text -> values; raises vocab.TokenParseError
    find: Callable[[str], list]  # every span/group in a longer text (a CoT answer)
    # the curriculum wording: the atomic question asking for the kind, the answer sentence carrying it
    templates: dict[str, Any] = field(default_factory=dict)
    # "module:attribute" that turns decoded values into the output (resolved lazily: it may
    # live in a later layer, e.g. the VQ-VAE decoder in training/)
    renderer: str | None = None

    def __post_init__(self) -> None:
        stray = [t for t in self.tokens if not t.startswith(self.marker)]
        if stray:
            raise ValueError(f"token kind {self.name!r}: tokens {stray[:3]} do not start with its marker {self.marker!r}")

    @property
    def tokens(self) -> list[str]:
        """The kind's vocabulary, in the order it is added to a tokenizer."""
        return self.shape.tokens()


BUILTIN: tuple[TokenKind, ...] = (
    TokenKind(
        "depth", "<DEPTH_",
        SpanShape(vocab.DEPTH_START, vocab.DEPTH_END,
                  tuple(vocab.depth_code_token(k) for k in range(vocab.NUM_DEPTH_CODES)), vocab.DEPTH_SPAN),
        encode=vocab.encode_depth, decode=vocab.decode_depth, find=vocab.find_depth_spans,
        templates={"atomic_question": templates.DEPTH_ATOMIC_QUESTION, "answer": templates.DEPTH_MAP_SENTENCE},
        renderer="training.vqvae.model:DepthVQVAE.decode_codes",  # 100 codes -> a 336x336 depth map
    ),
    TokenKind(
        "pixel", "<PIXEL_",
        GroupShape(tuple(vocab.pixel_token(v) for v in range(vocab.PIXEL_GRID))),
        encode=vocab.encode_box, decode=vocab.decode_box, find=vocab.find_boxes,
        # a CoT answer lists one box per line, then the count sentence
        templates={"atomic_question": templates.COUNT_ATOMIC_TEMPLATES, "answer": templates.COUNT_RESULT_MANY},
        renderer="perception_tokens.vocab:GridBox.as_tuple",  # a box on the 336 grid
    ),
)

@dataclass(frozen=True)
class RegionShape:
    """VPT's region: ``start`` x_min y_min x_max y_max ``end`` over a k x k grid of cells
    (:mod:`perception_tokens.regions`); x_min <= x_max, y_min <= y_max; any number per answer
    (the action loop bounds them)."""

    start: str
    end: str
    x_cells: tuple[str, ...]
    y_cells: tuple[str, ...]

    def tokens(self) -> list[str]:
        return [self.start, self.end, *self.x_cells, *self.y_cells]


@dataclass(frozen=True)
class TriggerShape:
    """One token whose hidden state is the signal (VPT's <Re-Encoding Control>): no codes, no loss.
    Not a :class:`ControlShape`: the depth/box constraint's "once, before any span" rule for
    ``[SEG]`` does not apply; VPT's rules are in :mod:`evaluation.region_constraint`."""

    token: str

    def tokens(self) -> list[str]:
        return [self.token]


def vpt_kinds(grid: int = regions.DEFAULT_GRID) -> tuple[TokenKind, TokenKind]:
    """VPT's two kinds (arXiv 2502.17425 Sec. 3.1-3.2) for a k x k region grid. Not in
    :data:`BUILTIN`: they enter a vocabulary only when a config asks (``register`` them, or
    add ``vpt_tokens(grid)``), so the default vocabulary and its hash stay as they are."""
    region = TokenKind(
        "region", "<REGION_",
        RegionShape(regions.REGION_START, regions.REGION_END, tuple(regions.x_token(c) for c in range(grid)),
                    tuple(regions.y_token(c) for c in range(grid))),
        encode=regions.encode_region,
        decode=lambda text: regions.decode_region(text, grid),
        find=lambda text: regions.find_regions(text, grid),
    )
    control = TokenKind("reencode", "<REENCODE_", TriggerShape(regions.REENCODE_CONTROL),
                        encode=lambda _=None: regions.REENCODE_CONTROL,
                        decode=lambda text: text.strip() == regions.REENCODE_CONTROL,
                        find=lambda text: [regions.REENCODE_CONTROL] * text.count(regions.REENCODE_CONTROL))
    return region, control


def vpt_tokens(grid: int = regions.DEFAULT_GRID) -> list[str]:
    """The tokens a ``profile: vpt`` run adds: the region kind's, then the control token."""
    return [t for kind in vpt_kinds(grid) for t in kind.tokens]


def region_kind() -> TokenKind | None:
    """The registered region kind, or None (the default vocabulary has none)."""
    return next((k for k in kinds() if isinstance(k.shape, RegionShape)), None)


# ---------------------------------------------------------------------------- [SEG]

SEG_TOKEN = "[SEG]"  # Perceptio sec. 3.1/3.2: the control token whose hidden state prompts the SAM2 mask decoder


def _encode_seg(_value: Any = None) -> str:
    return SEG_TOKEN


def _decode_seg(text: str) -> bool:
    if text.strip() != SEG_TOKEN:
        raise vocab.TokenParseError(f"not a {SEG_TOKEN} token", text)
    return True


def _find_seg(text: str) -> list[str]:
    return [SEG_TOKEN] * text.count(SEG_TOKEN)


SEG = TokenKind(
    "seg", SEG_TOKEN, ControlShape(SEG_TOKEN),
    encode=_encode_seg, decode=_decode_seg, find=_find_seg,
    # the mask comes from the SAM2 mask decoder prompted by the token's hidden state
    renderer="training.segmentation.head:SegmentationHead.predict_masks",
)

# Kinds a run adds only when its config asks (finetune.segmentation under profile: perceptio).
OPTIONAL: dict[str, TokenKind] = {"seg": SEG}


def _no_overlap(kind: TokenKind, registered: list[TokenKind]) -> None:
    """A kind's tokens may not overlap another kind's (its marker finds it in a text)."""
    for other in registered:
        if kind.marker.startswith(other.marker) or other.marker.startswith(kind.marker):
            raise ValueError(f"token kind {kind.name!r}: marker {kind.marker!r} overlaps {other.name!r}'s {other.marker!r}")


_KINDS: NamedRegistry[TokenKind] = NamedRegistry("perception token kind", BUILTIN, check=_no_overlap)
# Add a kind (before tokenizers, processors or grammars are built) / remove one (tests do).
register, unregister = _KINDS.register, _KINDS.unregister
kinds = _KINDS.values  # every registered kind, in vocabulary order (depth first, as Aurora adds them)
get = _KINDS.get


def enable(name: str) -> TokenKind:
    """Register the optional kind ``name`` (idempotent): its tokens join the vocabulary (after the
    builtin ones, so builtin ids do not move) and the decoding constraint. Process-wide: a fine-tune
    runs in its own worker process, and adapters are checked against the hash of their own tokens,
    so an adapter without the kind still loads in a process that has it."""
    if name not in OPTIONAL:
        raise ValueError(f"unknown optional token kind {name!r}; expected one of {sorted(OPTIONAL)}")
    if name not in [k.name for k in kinds()]:
        register(OPTIONAL[name])
    return get(name)


def disable(name: str) -> None:
    """Unregister the optional kind ``name`` if registered (the vocabulary is the builtin one again)."""
    if name in [k.name for k in kinds()]:
        unregister(name)


def span_kinds() -> list[TokenKind]:
    return [k for k in kinds() if isinstance(k.shape, SpanShape)]


def group_kind() -> TokenKind | None:
    """The one coordinate-group kind (boxes), or None; the constraint supports only one."""
    groups = [k for k in kinds() if isinstance(k.shape, GroupShape)]
    if len(groups) > 1:
        raise ValueError(f"the decoding constraint supports one coordinate-group kind, registered: {[k.name for k in groups]}")
    return groups[0] if groups else None


def control_kind() -> TokenKind | None:
    """The one control-token kind (``[SEG]``) when registered, else None; the constraint supports only one."""
    controls = [k for k in kinds() if isinstance(k.shape, ControlShape)]
    if len(controls) > 1:
        raise ValueError(f"the decoding constraint supports one control-token kind, registered: {[k.name for k in controls]}")
    return controls[0] if controls else None


def resolve_renderer(kind: TokenKind) -> Callable:
    """Import the kind's renderer (``module:Class.attr``)."""
    import importlib

    if kind.renderer is None:
        raise ValueError(f"token kind {kind.name!r} has no renderer")
    module, _, attr = kind.renderer.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
