"""LLaVA's conversation templates (``llava/conversation.py`` of the reference), as chat templates.

Aurora trains with ``--version v1`` (``scripts/v1_5/finetune_task_lora_depth_annealing.sh:11``),
which ``conv_templates`` maps to ``conv_vicuna_v1`` (conversation.py:242-252, 376), and
evaluates with ``--conv-mode llava_v1`` (``eval/model_vqa.py:97`` -> conv_llava_v1,
conversation.py:325-335). Both are ``SeparatorStyle.TWO``: ``system + " " + "USER: " +
"<image>\\n" + question + " " + "ASSISTANT: " + answer + "</s>"``, and a generation prompt
ends with ``"ASSISTANT:"``. They differ only in the system sentence.

``chat_template(name)`` gives the Jinja template that renders exactly that (without the
final ``</s>``, which the training code appends as the tokenizer's eos), so it can be set
as a processor's ``chat_template`` and travels with the saved processor. Strings only.
"""

from __future__ import annotations

SYSTEMS = {
    # conversation.py:243-244
    "vicuna_v1": "A chat between a curious user and an artificial intelligence assistant. "
                 "The assistant gives helpful, detailed, and polite answers to the user's questions.",
    # conversation.py:326-327
    "llava_v1": "A chat between a curious human and an artificial intelligence assistant. "
                "The assistant gives helpful, detailed, and polite answers to the human's questions.",
}
TEMPLATES = ("plain", *SYSTEMS)


def render_prompt(name: str, question: str, answer: str | None = None) -> str:
    """The reference's ``conv.get_prompt()`` for one turn (answer None: a generation prompt)."""
    if name not in SYSTEMS:
        raise ValueError(f"unknown conversation template {name!r}; expected one of {sorted(SYSTEMS)}")
    head = f"{SYSTEMS[name]} USER: <image>\n{question} ASSISTANT:"
    return head if answer is None else f"{head} {answer}</s>"


def chat_template(name: str, image_token: str = "<image>") -> str:
    """A Jinja chat template rendering ``name`` for HF-style messages (image part + text part)."""
    if name not in SYSTEMS:
        raise ValueError(f"unknown conversation template {name!r}; expected one of {sorted(SYSTEMS)}")
    parts = (
        "{% for p in m['content'] %}{% if p['type'] == 'image' %}{{ '" + image_token + "\\n' }}"
        "{% else %}{{ p['text'] }}{% endif %}{% endfor %}"
    )
    content = "{% if m['content'] is string %}{{ m['content'] }}{% else %}" + parts + "{% endif %}"
    return (
        "{{ '" + SYSTEMS[name].replace("'", "\\'") + "' }}"
        "{% for m in messages %}{% if m['role'] == 'user' %}{{ ' USER: ' }}" + content +
        "{% elif m['role'] == 'assistant' %}{{ ' ASSISTANT: ' }}" + content + "{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ ' ASSISTANT:' }}{% endif %}"
    )
