"""Generate the bad-input corpus used by ``tests/hardening``.

Every case is a small, deterministic folder built from a valid base (the demo ADE20K /
LVIS / RefCOCO layouts plus a three-question HardBLINK set) with exactly one thing
broken. Nothing is committed: the tests build the cases they need into ``tmp_path``.

Usage::

    python tests/data/bad/make_bad_corpus.py OUT_DIR            # every case
    python tests/data/bad/make_bad_corpus.py OUT_DIR CASE ...   # some cases
    python tests/data/bad/make_bad_corpus.py --list             # names and descriptions

Each case folder gets a ``case.json`` with what was written (paths relative to the
case folder, the id of the broken record, the file the reader should name). The
expected outcome lives in the test, not here: this script only writes inputs.

Pickle payloads are built with ``__reduce__`` and written with ``pickle.dumps``, which
records the call without making it; building the corpus never runs a payload.
"""

from __future__ import annotations

import argparse
import builtins
import io
import json
import os
import pickle
import shutil
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

# The repository root must be importable when this runs as a script.
_REPO = Path(__file__).resolve().parents[3]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from perception_tokens.demo import write_demo_datasets  # noqa: E402

BASE_DIR = "_base"
DEMO_COUNTS = {"n_ade20k": 4, "n_lvis": 4, "n_refcoco": 4}
DEMO_SEED = 0
DEMO_SIZE = (64, 48)  # (width, height); tiny, every reader still sees real files
HARDBLINK_POINTS = 3
HARDBLINK_QUESTIONS = 3
LONG_NAME_CHARS = 300  # longer than NAME_MAX (255) on every common Linux file system
BOMB_SIDE = 7072  # 7072**2 = 50,013,184 pixels, just over the 50M default limit
MARKER_NAME = "PAYLOAD_RAN"  # a pickle payload that ran would create this file
HUGE_FILE_BYTES = 4 * 2**30  # `truncate -s 4G`: sparse, so it costs no disk, but reading it costs 4 GB
SHARED_LIST_LEVELS = 24  # 2**24 lists once shared references are copied out
LONG_INT_DIGITS = 5000  # past Python's 4300-digit int/str conversion limit
DEEP_NESTING = 100_000  # far past the JSON parser's recursion limit


# ---------------------------------------------------------------------------- helpers


def _rng(name: str) -> np.random.Generator:
    """A generator seeded from the case name, so each case's pixels are stable."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def _encode(im: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _jpeg(name: str, size=(32, 24)) -> bytes:
    arr = _rng(name).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return _encode(Image.fromarray(arr), "JPEG", quality=90)


def _png(name: str, size=(32, 24)) -> bytes:
    arr = _rng(name).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return _encode(Image.fromarray(arr), "PNG")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_claiming(width: int, height: int) -> bytes:
    """A ~60-byte PNG whose IHDR claims ``width`` x ``height`` 8-bit gray pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + _png_chunk(b"IEND", b"")
    )


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _write_jsonl(path: Path, lines: list[Any]) -> None:
    """Objects are dumped; strings are written verbatim (for malformed lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))


# ---------------------------------------------------------------------------- base


def build_base(out_dir: Path) -> Path:
    """Write (once) the valid inputs every case starts from; returns the base folder."""
    base = Path(out_dir) / BASE_DIR
    done = base / "BASE_OK"
    if done.exists():
        return base
    if base.exists():
        shutil.rmtree(base)
    write_demo_datasets(base / "demo", seed=DEMO_SEED, image_size=DEMO_SIZE, **DEMO_COUNTS)
    hb = base / "hardblink"
    questions, answers = [], []
    for qid in range(1, HARDBLINK_QUESTIONS + 1):
        _write_bytes(hb / f"images/blink{HARDBLINK_POINTS}pointscenter/{qid}.png", _png(f"hardblink {qid}"))
        questions.append({
            "question_id": qid,
            "image": f"{qid}.png",
            "text": "Which point is closer to the camera? Select from A, B, C.",
            "category": "count",
        })
        answers.append({"question_id": qid, "text": "(" + "ABC"[qid % 3] + ")", "category": "count"})
    _write_jsonl(hb / f"questions/blink_{HARDBLINK_POINTS}pointscenter_questions.jsonl", questions)
    _write_jsonl(hb / f"answers/blink_{HARDBLINK_POINTS}pointscenter_answers.jsonl", answers)
    done.write_text("ok\n")
    return base


def _copy_ade(base: Path, case_dir: Path) -> Path:
    root = case_dir / "ADEChallengeData2016"
    shutil.copytree(base / "demo" / "ADEChallengeData2016", root)
    return root


def _lvis_doc(base: Path) -> dict:
    return json.loads((base / "demo" / "lvis" / "lvis_v1_train.json").read_text())


def _refcoco_inputs(base: Path) -> tuple[list, dict]:
    # Our own, trusted pickle written by the demo generator: plain pickle is fine here.
    refs = pickle.loads((base / "demo" / "refcoco" / "refs(unc).p").read_bytes())
    inst = json.loads((base / "demo" / "refcoco" / "instances.json").read_text())
    return refs, inst


def _hardblink_copy(base: Path, case_dir: Path) -> Path:
    root = case_dir / "hardblink"
    shutil.copytree(base / "hardblink", root)
    return root


def _hb_questions(root: Path) -> Path:
    return root / f"questions/blink_{HARDBLINK_POINTS}pointscenter_questions.jsonl"


def _hb_answers(root: Path) -> Path:
    return root / f"answers/blink_{HARDBLINK_POINTS}pointscenter_answers.jsonl"


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------- image cases
# Each adds one file to ADEChallengeData2016/images/training/ of a copy of the demo set.


def _ade_add(name: str, data: bytes | Callable[[], bytes]) -> Callable[[Path, Path], dict]:
    """Add file ``name`` holding ``data`` (or ``data()``, made only when the case is built)."""

    def build(base: Path, case_dir: Path) -> dict:
        root = _copy_ade(base, case_dir)
        _write_bytes(root / "images" / "training" / name, data() if callable(data) else data)
        return {"root": "ADEChallengeData2016", "bad_file": f"images/training/{name}"}

    return build


def _truncated_jpeg() -> bytes:
    data = _jpeg("truncated")
    return data[: len(data) // 2]


def _png_bad_crc() -> bytes:
    data = bytearray(_png("bad crc"))
    i = data.index(b"IDAT")
    data[i + 10] ^= 0xFF  # flip one compressed byte: the chunk CRC no longer matches
    return bytes(data)


def _bomb_sparse_png() -> bytes:
    # A real, complete, all-black 1-bit PNG: ~6 MB raw, ~6 KB compressed.
    return _encode(Image.new("1", (BOMB_SIDE, BOMB_SIDE), 0), "PNG")


def _gif() -> bytes:
    return _encode(Image.fromarray(_rng("gif").integers(0, 256, (8, 8, 3), dtype=np.uint8)), "GIF")


def _build_ade_directory(base: Path, case_dir: Path) -> dict:
    root = _copy_ade(base, case_dir)
    (root / "images" / "training" / "ADE_folder.jpg").mkdir()
    return {"root": "ADEChallengeData2016", "bad_file": "images/training/ADE_folder.jpg"}


def _build_ade_symlink(base: Path, case_dir: Path) -> dict:
    root = _copy_ade(base, case_dir)
    secret = case_dir / "outside" / "secret.jpg"  # a valid image, but outside the root
    _write_bytes(secret, _jpeg("secret"))
    os.symlink(secret, root / "images" / "training" / "ADE_link.jpg")
    return {"root": "ADEChallengeData2016", "bad_file": "images/training/ADE_link.jpg", "outside": "outside/secret.jpg"}


def _build_ade_huge_sparse(base: Path, case_dir: Path) -> dict:
    root = _copy_ade(base, case_dir)
    path = root / "images" / "training" / "ADE_huge.jpg"
    with open(path, "wb") as fh:
        fh.write(_jpeg("huge"))  # a valid JPEG start, then a 4 GiB hole
    os.truncate(path, HUGE_FILE_BYTES)
    return {"root": "ADEChallengeData2016", "bad_file": "images/training/ADE_huge.jpg"}


def _build_ade_symlink_loop(base: Path, case_dir: Path) -> dict:
    root = _copy_ade(base, case_dir)
    os.symlink("ADE_loop.jpg", root / "images" / "training" / "ADE_loop.jpg")  # points at itself
    return {"root": "ADEChallengeData2016", "bad_file": "images/training/ADE_loop.jpg"}


def _build_ade_no_images(base: Path, case_dir: Path) -> dict:
    root = _copy_ade(base, case_dir)
    shutil.rmtree(root / "images")
    return {"root": "ADEChallengeData2016"}


def _build_ade_non_utf8_name(base: Path, case_dir: Path) -> dict:
    root = _copy_ade(base, case_dir)
    folder = os.fsencode(root / "images" / "training")
    with open(folder + b"/ADE_\xff\xfe.jpg", "wb") as fh:  # not valid UTF-8 on purpose
        fh.write(_jpeg("non utf8"))
    return {"root": "ADEChallengeData2016"}


def _mode_image(mode: str) -> tuple[np.ndarray, bytes]:
    """(source array, encoded file) for an image that must be accepted and converted."""
    rng = _rng(f"mode {mode}")
    if mode == "gray_jpeg":
        # Smooth gradient: JPEG keeps it within a few levels.
        arr = np.tile(np.linspace(0, 255, 32, dtype=np.float64), (24, 1)).round().astype(np.uint8)
        return arr, _encode(Image.fromarray(arr, "L"), "JPEG", quality=95)
    if mode == "gray16_png":
        arr = rng.integers(0, 65536, (24, 32), dtype=np.uint16)
        arr[0, :4] = [0, 255, 256, 65535]  # edges of the top-8-bits mapping
        return arr, _encode(Image.fromarray(arr), "PNG")
    if mode == "rgba_png":
        arr = rng.integers(0, 256, (24, 32, 4), dtype=np.uint8)
        arr[..., 3] = rng.integers(0, 2, (24, 32), dtype=np.uint8) * 255  # half transparent
        return arr, _encode(Image.fromarray(arr, "RGBA"), "PNG")
    if mode == "palette_png":
        palette = rng.integers(0, 256, (16, 3), dtype=np.uint8)
        idx = rng.integers(0, 16, (24, 32), dtype=np.uint8)
        im = Image.fromarray(idx, "P")
        im.putpalette(palette.flatten().tolist())
        return np.concatenate([palette.reshape(-1), idx.reshape(-1)]), _encode(im, "PNG")
    if mode == "gray_png":
        arr = rng.integers(0, 256, (24, 32), dtype=np.uint8)
        return arr, _encode(Image.fromarray(arr, "L"), "PNG")
    raise ValueError(mode)


def _ade_mode(mode: str) -> Callable[[Path, Path], dict]:
    def build(base: Path, case_dir: Path) -> dict:
        root = _copy_ade(base, case_dir)
        source, data = _mode_image(mode)
        ext = "jpg" if mode.endswith("jpeg") else "png"
        name = f"ADE_{mode}.{ext}"
        _write_bytes(root / "images" / "training" / name, data)
        np.save(case_dir / "source.npy", source)
        return {"root": "ADEChallengeData2016", "bad_file": f"images/training/{name}", "source": "source.npy",
                "mode": mode}

    return build


# ---------------------------------------------------------------------------- LVIS cases


def _lvis_edit(edit: Callable[[dict], dict | None]) -> Callable[[Path, Path], dict]:
    """Copy the demo LVIS train file, let ``edit`` break it; edit returns extra info."""

    def build(base: Path, case_dir: Path) -> dict:
        doc = _lvis_doc(base)
        extra = edit(doc) or {}
        _write_json(case_dir / "lvis" / "lvis_v1_train.json", doc)
        return {"annotations": "lvis/lvis_v1_train.json", "image_root": f"../{BASE_DIR}/demo/coco", **extra}

    return build


def _lvis_raw(text: bytes) -> Callable[[Path, Path], dict]:
    def build(base: Path, case_dir: Path) -> dict:
        _write_bytes(case_dir / "lvis" / "lvis_v1_train.json", text)
        return {"annotations": "lvis/lvis_v1_train.json", "image_root": f"../{BASE_DIR}/demo/coco"}

    return build


def _lvis_malformed_json(base: Path, case_dir: Path) -> dict:
    text = json.dumps(_lvis_doc(base), indent=1)
    cut = text[: len(text) // 2]  # a download that stopped half way
    _write_bytes(case_dir / "lvis" / "lvis_v1_train.json", cut.encode())
    return {"annotations": "lvis/lvis_v1_train.json", "image_root": f"../{BASE_DIR}/demo/coco"}


def _ann(doc: dict, pos: int = 0) -> dict:
    return doc["annotations"][pos]


def _edit_missing_key(doc: dict) -> dict:
    del doc["annotations"]
    return {"missing_key": "annotations"}


def _edit_negative_width(doc: dict) -> dict:
    a = _ann(doc)
    a["bbox"] = [a["bbox"][0], a["bbox"][1], -5.0, a["bbox"][3]]
    return {"bad_id": str(a["id"]), "stage": "lvis_instances"}


def _edit_box_outside(doc: dict) -> dict:
    a = _ann(doc)
    img = next(i for i in doc["images"] if i["id"] == a["image_id"])
    a["bbox"] = [float(img["width"] - 4), 2.0, 40.0, 5.0]  # runs 36 px past the right edge
    return {"bad_id": str(a["id"]), "stage": "lvis_instances"}


def _edit_unknown_category(doc: dict) -> dict:
    a = _ann(doc)
    a["category_id"] = max(c["id"] for c in doc["categories"]) + 1000
    return {"bad_id": str(a["id"]), "stage": "lvis_instances", "category_id": a["category_id"]}


def _edit_duplicate_image(doc: dict) -> dict:
    dup = dict(doc["images"][0])
    dup["coco_url"] = doc["images"][1]["coco_url"]  # a different file under the same id
    doc["images"].append(dup)
    return {"bad_id": str(dup["id"]), "stage": "lvis_images"}


def _edit_duplicate_annotation(doc: dict) -> dict:
    dup = dict(doc["annotations"][1])
    dup["bbox"] = [0.0, 0.0, 1.0, 1.0]
    doc["annotations"].append(dup)
    return {"bad_id": str(dup["id"]), "stage": "lvis_instances"}


def _edit_annotation_unknown_image(doc: dict) -> dict:
    a = _ann(doc)
    a["image_id"] = 987654321
    return {"bad_id": str(a["id"]), "stage": "lvis_instances"}


def _edit_nan_box(doc: dict) -> dict:
    a = _ann(doc)
    a["bbox"] = [float("nan"), 1.0, 2.0, 2.0]  # json.dumps writes NaN, json.load reads it
    return {"bad_id": str(a["id"]), "stage": "lvis_instances"}


def _edit_string_size(doc: dict) -> dict:
    img = doc["images"][0]
    img["width"] = "64"
    return {"bad_id": str(img["id"]), "stage": "lvis_images"}


def _edit_size_mismatch(doc: dict) -> dict:
    img = doc["images"][0]
    img["width"] = img["width"] + 10  # the file on disk is 10 px narrower
    return {"bad_id": str(img["id"]), "stage": "lvis_images"}


def _edit_coco_url_escape(doc: dict) -> dict:
    img = doc["images"][0]
    img["coco_url"] = "http://images.cocodataset.org/../secret.jpg"  # -> '../secret.jpg'
    return {"bad_id": str(img["id"]), "stage": "lvis_images"}


def _edit_long_file_name(doc: dict) -> dict:
    img = doc["images"][0]
    img["coco_url"] = "http://images.cocodataset.org/train2017/" + "9" * LONG_NAME_CHARS + ".jpg"
    return {"bad_id": str(img["id"]), "stage": "lvis_images"}


def _edit_duplicate_category(doc: dict) -> dict:
    doc["categories"].append(dict(doc["categories"][0]))
    return {"category_id": doc["categories"][0]["id"]}


def _edit_huge_annotation_id(doc: dict) -> dict:
    a = _ann(doc)
    a["id"] = 2**70  # valid JSON integer, does not fit the table's int64 column
    return {"bad_id": str(a["id"]), "stage": "lvis_instances"}


def _edit_nan_area(doc: dict) -> dict:
    a = _ann(doc)
    a["area"] = float("nan")
    return {"bad_id": str(a["id"]), "stage": "lvis_instances"}


def _edit_category_name_not_string(doc: dict) -> dict:
    doc["categories"][0]["name"] = 5
    return {"field": "name", "position": 0}


def _lvis_json_with(info_json: str) -> Callable[[Path, Path], dict]:
    """The base LVIS file, one key per line, with ``"info"`` replaced by raw ``info_json``."""

    def build(base: Path, case_dir: Path) -> dict:
        doc = _lvis_doc(base)
        doc = {"info": "@INFO@", **{k: v for k, v in doc.items() if k != "info"}}
        lines = ["{"] + [f"{json.dumps(k)}: {json.dumps(v)}," for k, v in doc.items()]
        lines[-1] = lines[-1].rstrip(",")
        text = "\n".join(lines + ["}"]).replace('"@INFO@"', info_json)
        _write_bytes(case_dir / "lvis" / "lvis_v1_train.json", text.encode())
        return {"annotations": "lvis/lvis_v1_train.json", "image_root": f"../{BASE_DIR}/demo/coco", "bad_line": 2}

    return build


# ---------------------------------------------------------------------------- RefCOCO cases


class _OpenMarker:
    """Unpickling this calls ``open(marker, 'w')``: it would create the marker file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


class _ExecMarker:
    """Unpickling this calls ``exec(code)``: arbitrary Python."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({self.marker!r}, 'w').close()",))


def _refcoco_write(case_dir: Path, refs_bytes: bytes, inst: dict) -> dict:
    _write_bytes(case_dir / "refcoco" / "refs(unc).p", refs_bytes)
    _write_json(case_dir / "refcoco" / "instances.json", inst)
    return {"refs": "refcoco/refs(unc).p", "instances": "refcoco/instances.json",
            "image_root": f"../{BASE_DIR}/demo/coco"}


def _refcoco_edit(edit: Callable[[list, dict], dict | None]) -> Callable[[Path, Path], dict]:
    def build(base: Path, case_dir: Path) -> dict:
        refs, inst = _refcoco_inputs(base)
        extra = edit(refs, inst) or {}
        return {**_refcoco_write(case_dir, pickle.dumps(refs, protocol=2), inst), **extra}

    return build


def _refcoco_payload(kind: str) -> Callable[[Path, Path], dict]:
    def build(base: Path, case_dir: Path) -> dict:
        refs, inst = _refcoco_inputs(base)
        marker = str((case_dir / MARKER_NAME).resolve())
        if kind == "open":
            refs.append(_OpenMarker(marker))  # a top-level list element
        else:
            refs[0]["sentences"][0]["sent"] = _ExecMarker(marker)  # nested deep inside a ref
        data = pickle.dumps(refs, protocol=2)  # records the call, does not make it
        return {**_refcoco_write(case_dir, data, inst), "marker": MARKER_NAME}

    return build


def _refcoco_truncated_pickle(base: Path, case_dir: Path) -> dict:
    refs, inst = _refcoco_inputs(base)
    data = pickle.dumps(refs, protocol=2)
    return _refcoco_write(case_dir, data[: len(data) // 2], inst)


def _refcoco_shared_lists(base: Path, case_dir: Path) -> dict:
    _, inst = _refcoco_inputs(base)
    nested: list = []
    for _ in range(SHARED_LIST_LEVELS):
        nested = [nested, nested]  # pickled once, referenced twice (the memo)
    return _refcoco_write(case_dir, pickle.dumps([nested], protocol=2), inst)


def _refcoco_self_reference(base: Path, case_dir: Path) -> dict:
    refs, inst = _refcoco_inputs(base)
    refs[0]["sentences"].append(refs[0]["sentences"])  # a list that holds itself
    return _refcoco_write(case_dir, pickle.dumps(refs, protocol=2), inst)


def _refcoco_refs_not_list(base: Path, case_dir: Path) -> dict:
    refs, inst = _refcoco_inputs(base)
    return _refcoco_write(case_dir, pickle.dumps({"refs": refs}, protocol=2), inst)


def _edit_ref_missing_ann(refs: list, inst: dict) -> dict:
    refs[0]["ann_id"] = 999_999_999
    return {"bad_ref": refs[0]["ref_id"], "stage": "refcoco_refs"}


def _edit_ref_no_sentences(refs: list, inst: dict) -> dict:
    refs[0]["sentences"] = []
    refs[0]["sent_ids"] = []
    return {"bad_ref": refs[0]["ref_id"], "stage": "refcoco_refs"}


def _edit_sentence_without_text(refs: list, inst: dict) -> dict:
    sent = refs[0]["sentences"][0]
    sent["sent"] = "   "
    sent["raw"] = "   "
    return {"bad_ref": refs[0]["ref_id"], "bad_sentence": sent["sent_id"], "stage": "refcoco_refs"}


def _edit_absolute_file_name(refs: list, inst: dict) -> dict:
    img = inst["images"][0]
    img["file_name"] = "/etc/passwd"
    return {"bad_id": str(img["id"]), "stage": "refcoco_images"}


def _edit_refcoco_long_file_name(refs: list, inst: dict) -> dict:
    img = inst["images"][0]
    img["file_name"] = "COCO_train2014_" + "1" * LONG_NAME_CHARS + ".jpg"
    return {"bad_id": str(img["id"]), "stage": "refcoco_images"}


# ---------------------------------------------------------------------------- HardBLINK cases


def _hb_edit_question(qid: int, **changes: Any) -> Callable[[Path, Path], dict]:
    def build(base: Path, case_dir: Path) -> dict:
        root = _hardblink_copy(base, case_dir)
        qs = _read_jsonl(_hb_questions(root))
        for q in qs:
            if q["question_id"] == qid:
                q.update(changes)
        _write_jsonl(_hb_questions(root), qs)
        return {"root": "hardblink", "bad_id": str(qid)}

    return build


def _hb_point_question_at(root: Path, index: int, image: str) -> dict:
    """Question ``index`` of the copy now shows ``image``: the case's info names it as the bad one."""
    qs = _read_jsonl(_hb_questions(root))
    qs[index]["image"] = image
    _write_jsonl(_hb_questions(root), qs)
    return {"root": "hardblink", "bad_id": str(qs[index]["question_id"])}


def _hb_symlink_image(base: Path, case_dir: Path) -> dict:
    root = _hardblink_copy(base, case_dir)
    secret = case_dir / "outside" / "secret.png"
    _write_bytes(secret, _png("secret"))
    os.symlink(secret, root / f"images/blink{HARDBLINK_POINTS}pointscenter/evil.png")
    return _hb_point_question_at(root, 0, "evil.png")


def _hb_symlink_loop_image(base: Path, case_dir: Path) -> dict:
    root = _hardblink_copy(base, case_dir)
    os.symlink("loop.png", root / f"images/blink{HARDBLINK_POINTS}pointscenter/loop.png")
    return _hb_point_question_at(root, 1, "loop.png")


def _hb_huge_image(base: Path, case_dir: Path) -> dict:
    root = _hardblink_copy(base, case_dir)
    path = root / f"images/blink{HARDBLINK_POINTS}pointscenter/1.png"
    os.truncate(path, HUGE_FILE_BYTES)  # the real PNG, then a 4 GiB hole
    return {"root": "hardblink", "bad_id": "1"}


def _hb_raw_question_line(qid: int, raw: Callable[[dict], str]) -> Callable[[Path, Path], dict]:
    """Question ``qid``'s line replaced by ``raw(question)``, written verbatim."""

    def build(base: Path, case_dir: Path) -> dict:
        root = _hardblink_copy(base, case_dir)
        qs = _read_jsonl(_hb_questions(root))
        lines = [raw(q) if q["question_id"] == qid else json.dumps(q) for q in qs]
        _hb_questions(root).write_text("\n".join(lines) + "\n")
        return {"root": "hardblink", "bad_line": [q["question_id"] for q in qs].index(qid) + 1,
                "orphan_answer": str(qid)}

    return build


def _deep_question(q: dict) -> str:
    return json.dumps({**q, "text": "@"}).replace('"@"', "[" * DEEP_NESTING + "]" * DEEP_NESTING)


def _long_int_question(q: dict) -> str:
    return json.dumps({**q, "question_id": "@"}).replace('"@"', "7" * LONG_INT_DIGITS)


def _hb_image_is_text(base: Path, case_dir: Path) -> dict:
    root = _hardblink_copy(base, case_dir)
    _write_bytes(root / f"images/blink{HARDBLINK_POINTS}pointscenter/1.png", b"this is not an image\n")
    return {"root": "hardblink", "bad_id": "1"}


def _hb_drop_answer(base: Path, case_dir: Path) -> dict:
    root = _hardblink_copy(base, case_dir)
    answers = [a for a in _read_jsonl(_hb_answers(root)) if a["question_id"] != 2]
    _write_jsonl(_hb_answers(root), answers)
    return {"root": "hardblink", "bad_id": "2"}


def _hb_null_answer(base: Path, case_dir: Path) -> dict:
    root = _hardblink_copy(base, case_dir)
    answers = _read_jsonl(_hb_answers(root))
    answers[1]["text"] = None
    _write_jsonl(_hb_answers(root), answers)
    return {"root": "hardblink", "bad_id": str(answers[1]["question_id"])}


def _hb_answer_not_letter(base: Path, case_dir: Path) -> dict:
    root = _hardblink_copy(base, case_dir)
    answers = _read_jsonl(_hb_answers(root))
    answers[2]["text"] = "(E)"  # only A-C exist with 3 points
    _write_jsonl(_hb_answers(root), answers)
    return {"root": "hardblink", "bad_id": str(answers[2]["question_id"])}


def _hb_malformed_line(base: Path, case_dir: Path) -> dict:
    root = _hardblink_copy(base, case_dir)
    lines = _hb_questions(root).read_text().splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]  # question 2's line cut in half
    _hb_questions(root).write_text("\n".join(lines) + "\n")
    return {"root": "hardblink", "bad_line": 2, "orphan_answer": "2"}


def _hb_duplicate_question(base: Path, case_dir: Path) -> dict:
    root = _hardblink_copy(base, case_dir)
    qs = _read_jsonl(_hb_questions(root))
    qs.append(dict(qs[0]))
    _write_jsonl(_hb_questions(root), qs)
    return {"root": "hardblink", "bad_id": str(qs[0]["question_id"])}


def _hb_missing_questions(base: Path, case_dir: Path) -> dict:
    root = _hardblink_copy(base, case_dir)
    _hb_questions(root).unlink()
    return {"root": "hardblink", "missing": str(_hb_questions(root).relative_to(case_dir))}


# ---------------------------------------------------------------------------- text cases


def _text(name: str, text: str | bytes) -> Callable[[Path, Path], dict]:
    def build(base: Path, case_dir: Path) -> dict:
        _write_bytes(case_dir / name, text.encode() if isinstance(text, str) else text)
        return {"file": name}

    return build


def _depth_answer(codes: list[int], end: bool = True) -> str:
    """A depth span written by hand (not via encode_depth, which refuses bad codes)."""
    return "<DEPTH_START>" + "".join(f"<DEPTH_{c}>" for c in codes) + ("<DEPTH_END>" if end else "")


_CODES = [(7 * i) % 128 for i in range(100)]
_GOOD_LLAVA = {
    "id": "lvis-1-depth",
    "image": "train2017/000000000001.jpg",
    "conversations": [
        {"from": "human", "value": "<image>\nWhat is the depth map of the image?"},
        {"from": "gpt", "value": _depth_answer(_CODES)},
    ],
}


def _yaml_alias_bomb() -> str:
    """Under ``vqvae.overrides`` (a free-form mapping), so only the aliases are wrong."""
    lines = ["vqvae:", "  overrides:", '    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"    {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _llava(records: Any) -> str:
    return json.dumps(records)


# ---------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Case:
    name: str
    stage: str
    description: str
    build: Callable[[Path, Path], dict]


_CASES = [
    # images (read through the ADE20K reader, which visits every file of a folder)
    Case("img_truncated_jpeg", "ade20k_images", "JPEG cut in half", _ade_add("ADE_truncated.jpg", _truncated_jpeg)),
    Case("img_zero_byte_png", "ade20k_images", "empty .png file", _ade_add("ADE_empty.png", b"")),
    Case("img_text_as_jpeg", "ade20k_images", "a text file named .jpg",
         _ade_add("ADE_text.jpg", b"<html>404 Not Found</html>\n")),
    Case("img_bomb_header_png", "ade20k_images", "60-byte PNG claiming 100000x100000 pixels",
         _ade_add("ADE_bomb_header.png", png_header_claiming(100_000, 100_000))),
    Case("img_bomb_sparse_png", "ade20k_images", f"complete {BOMB_SIDE}x{BOMB_SIDE} 1-bit PNG (> 50M pixels)",
         _ade_add("ADE_bomb_sparse.png", _bomb_sparse_png)),
    Case("img_png_bad_crc", "ade20k_images", "PNG with one IDAT byte flipped", _ade_add("ADE_crc.png", _png_bad_crc)),
    Case("img_gif_named_png", "ade20k_images", "a GIF named .png", _ade_add("ADE_gif.png", _gif)),
    Case("img_directory_named_jpg", "ade20k_images", "a folder named like an image", _build_ade_directory),
    Case("img_symlink_outside_root", "ade20k_images", "symlink to an image outside the root", _build_ade_symlink),
    Case("img_wrong_extension", "ade20k_images", "a .txt file among the images",
         _ade_add("ADE_notes.txt", b"notes\n")),
    Case("img_non_utf8_file_name", "ade20k_images", "valid JPEG whose file name is not UTF-8",
         _build_ade_non_utf8_name),
    Case("img_huge_sparse_file", "ade20k_images", "a 4 GiB (sparse) file named .jpg", _build_ade_huge_sparse),
    Case("img_symlink_loop", "ade20k_images", "an image name that is a symlink to itself", _build_ade_symlink_loop),
    Case("ade_root_without_images", "ade20k_images", "ADE20K root with no images/ folder", _build_ade_no_images),
    Case("img_gray_jpeg", "ade20k_images", "8-bit grayscale JPEG (accepted)", _ade_mode("gray_jpeg")),
    Case("img_gray_png", "ade20k_images", "8-bit grayscale PNG (accepted)", _ade_mode("gray_png")),
    Case("img_gray16_png", "ade20k_images", "16-bit grayscale PNG (accepted)", _ade_mode("gray16_png")),
    Case("img_rgba_png", "ade20k_images", "RGBA PNG (accepted, alpha dropped)", _ade_mode("rgba_png")),
    Case("img_palette_png", "ade20k_images", "palette PNG (accepted, expanded)", _ade_mode("palette_png")),
    # LVIS
    Case("lvis_missing_annotations_key", "lvis", "no top-level 'annotations'", _lvis_edit(_edit_missing_key)),
    Case("lvis_malformed_json", "lvis", "JSON cut in half", _lvis_malformed_json),
    Case("lvis_top_level_list", "lvis", "top level is a list", _lvis_raw(b"[]")),
    Case("lvis_not_utf8", "lvis", "annotation file in Latin-1", _lvis_raw('{"info": "caf\xe9"}'.encode("latin1"))),
    Case("lvis_duplicate_category", "lvis", "category id listed twice", _lvis_edit(_edit_duplicate_category)),
    Case("lvis_negative_width", "lvis_instances", "bbox with w = -5", _lvis_edit(_edit_negative_width)),
    Case("lvis_box_outside_image", "lvis_instances", "bbox past the right edge", _lvis_edit(_edit_box_outside)),
    Case("lvis_unknown_category", "lvis_instances", "category id not in the table",
         _lvis_edit(_edit_unknown_category)),
    Case("lvis_duplicate_image_id", "lvis_images", "image id twice", _lvis_edit(_edit_duplicate_image)),
    Case("lvis_duplicate_annotation_id", "lvis_instances", "annotation id twice",
         _lvis_edit(_edit_duplicate_annotation)),
    Case("lvis_annotation_unknown_image", "lvis_instances", "annotation on a missing image",
         _lvis_edit(_edit_annotation_unknown_image)),
    Case("lvis_nan_box", "lvis_instances", "NaN in a bbox", _lvis_edit(_edit_nan_box)),
    Case("lvis_string_image_size", "lvis_images", "width given as a string", _lvis_edit(_edit_string_size)),
    Case("lvis_image_size_mismatch", "lvis_images", "JSON size disagrees with the file",
         _lvis_edit(_edit_size_mismatch)),
    Case("lvis_coco_url_escapes", "lvis_images", "coco_url resolving to ../secret.jpg",
         _lvis_edit(_edit_coco_url_escape)),
    Case("lvis_long_file_name", "lvis_images", f"coco_url file name of {LONG_NAME_CHARS} chars",
         _lvis_edit(_edit_long_file_name)),
    Case("lvis_huge_annotation_id", "lvis_instances", "annotation id 2**70", _lvis_edit(_edit_huge_annotation_id)),
    Case("lvis_nan_area", "lvis_instances", "annotation area NaN", _lvis_edit(_edit_nan_area)),
    Case("lvis_category_name_not_string", "lvis", "categories[0].name is the number 5",
         _lvis_edit(_edit_category_name_not_string)),
    Case("lvis_deep_nesting", "lvis", f"'info' nested {DEEP_NESTING} arrays deep",
         _lvis_json_with("[" * DEEP_NESTING + "]" * DEEP_NESTING)),
    Case("lvis_long_integer", "lvis", f"'info' is a {LONG_INT_DIGITS}-digit integer",
         _lvis_json_with("9" * LONG_INT_DIGITS)),
    # RefCOCO
    Case("refcoco_pickle_calls_open", "refcoco", "refs pickle whose __reduce__ calls open()",
         _refcoco_payload("open")),
    Case("refcoco_pickle_calls_exec", "refcoco", "refs pickle with a nested exec() payload",
         _refcoco_payload("exec")),
    Case("refcoco_pickle_truncated", "refcoco", "refs pickle cut in half", _refcoco_truncated_pickle),
    Case("refcoco_pickle_shared_refs", "refcoco", f"{SHARED_LIST_LEVELS} levels of shared lists (2**{SHARED_LIST_LEVELS} once expanded)",
         _refcoco_shared_lists),
    Case("refcoco_pickle_self_reference", "refcoco", "a sentence list that contains itself", _refcoco_self_reference),
    Case("refcoco_pickle_not_list", "refcoco", "refs pickle holding a dict", _refcoco_refs_not_list),
    Case("refcoco_ref_missing_annotation", "refcoco_refs", "ref naming an unknown ann_id",
         _refcoco_edit(_edit_ref_missing_ann)),
    Case("refcoco_ref_no_sentences", "refcoco_refs", "ref with an empty sentence list",
         _refcoco_edit(_edit_ref_no_sentences)),
    Case("refcoco_sentence_without_text", "refcoco_refs", "sentence of blanks",
         _refcoco_edit(_edit_sentence_without_text)),
    Case("refcoco_absolute_file_name", "refcoco_images", "file_name /etc/passwd",
         _refcoco_edit(_edit_absolute_file_name)),
    Case("refcoco_long_file_name", "refcoco_images", f"file_name of {LONG_NAME_CHARS} chars",
         _refcoco_edit(_edit_refcoco_long_file_name)),
    # HardBLINK (benchmark jsonl)
    Case("bench_image_path_traversal", "hardblink", "image ../../etc/passwd",
         _hb_edit_question(1, image="../../../../../../etc/passwd")),
    Case("bench_image_absolute_path", "hardblink", "image /etc/passwd", _hb_edit_question(1, image="/etc/passwd")),
    Case("bench_image_symlink_outside", "hardblink", "image is a symlink leaving the root", _hb_symlink_image),
    Case("bench_image_long_name", "hardblink", f"image name of {LONG_NAME_CHARS} chars",
         _hb_edit_question(3, image="x" * LONG_NAME_CHARS + ".png")),
    Case("bench_image_symlink_loop", "hardblink", "image is a symlink to itself", _hb_symlink_loop_image),
    Case("bench_image_huge_sparse", "hardblink", "image file of 4 GiB (sparse)", _hb_huge_image),
    Case("bench_deep_json_line", "hardblink", f"question text nested {DEEP_NESTING} arrays deep",
         _hb_raw_question_line(2, _deep_question)),
    Case("bench_long_integer_line", "hardblink", f"question_id of {LONG_INT_DIGITS} digits",
         _hb_raw_question_line(3, _long_int_question)),
    Case("bench_image_is_text", "hardblink", "image file holding text", _hb_image_is_text),
    Case("bench_question_without_answer", "hardblink", "no answer line for question 2", _hb_drop_answer),
    Case("bench_answer_null", "hardblink", "answer text null", _hb_null_answer),
    Case("bench_answer_not_a_letter", "hardblink", "answer (E) with 3 points", _hb_answer_not_letter),
    Case("bench_malformed_json_line", "hardblink", "question line cut in half", _hb_malformed_line),
    Case("bench_duplicate_question_id", "hardblink", "question id twice", _hb_duplicate_question),
    Case("bench_question_without_text", "hardblink", "question text empty", _hb_edit_question(2, text="")),
    Case("bench_missing_questions_file", "hardblink", "questions file absent", _hb_missing_questions),
    # perception-token strings in curriculum answers
    Case("tok_99_codes", "tokens", "depth span with 99 codes", _text("answer.txt", _depth_answer(_CODES[:99]))),
    Case("tok_code_128", "tokens", "depth code 128", _text("answer.txt", _depth_answer(_CODES[:99] + [128]))),
    Case("tok_missing_depth_end", "tokens", "no <DEPTH_END>", _text("answer.txt", _depth_answer(_CODES, end=False))),
    Case("tok_negative_code", "tokens", "<DEPTH_-1> inside a span",
         _text("answer.txt", _depth_answer(_CODES).replace("<DEPTH_0>", "<DEPTH_-1>", 1))),
    Case("tok_pixel_336", "tokens", "box with <PIXEL_336>",
         _text("answer.txt", "(<PIXEL_10>,<PIXEL_20>,<PIXEL_336>,<PIXEL_40>)")),
    Case("tok_degenerate_box", "tokens", "box with x1 > x2",
         _text("answer.txt", "(<PIXEL_50>,<PIXEL_20>,<PIXEL_30>,<PIXEL_40>)")),
    # LLaVA conversation JSON (curriculum export, read back for training)
    Case("llava_missing_gpt_turn", "llava_json", "record with only the human turn",
         _text("curriculum.json", _llava([_GOOD_LLAVA, {**_GOOD_LLAVA, "id": "x2",
                                                        "conversations": _GOOD_LLAVA["conversations"][:1]}]))),
    Case("llava_image_escapes", "llava_json", "record image ../../etc/passwd",
         _text("curriculum.json", _llava([{**_GOOD_LLAVA, "image": "../../etc/passwd"}]))),
    Case("llava_malformed_json", "llava_json", "JSON cut in half",
         _text("curriculum.json", _llava([_GOOD_LLAVA])[:40])),
    Case("llava_not_utf8", "llava_json", "file in UTF-16",
         _text("curriculum.json", _llava([_GOOD_LLAVA]).encode("utf-16"))),
    # configuration
    Case("cfg_num_shards_zero", "config", "datasets.num_shards: 0",
         _text("config.yaml", "datasets:\n  num_shards: 0\n")),
    Case("cfg_depth_input_size_500", "config", "depth.input_size: 500 (not a multiple of 14)",
         _text("config.yaml", "depth:\n  input_size: 500\n")),
    Case("cfg_unknown_key", "config", "datasets.num_shard (typo)", _text("config.yaml", "datasets:\n  num_shard: 4\n")),
    Case("cfg_wrong_type", "config", "vqvae.epochs: many", _text("config.yaml", "vqvae:\n  epochs: many\n")),
    Case("cfg_bad_yaml", "config", "unclosed bracket", _text("config.yaml", "datasets: [num_shards: 2\n")),
    Case("cfg_top_level_list", "config", "a YAML list", _text("config.yaml", "- datasets\n- depth\n")),
    Case("cfg_yaml_alias_bomb", "config", "nine levels of nine-fold YAML aliases (9**9 strings)",
         _text("config.yaml", _yaml_alias_bomb())),
    Case("cfg_yaml_recursive_alias", "config", "a YAML alias inside the node it names",
         _text("config.yaml", "demo: &d\n  nested: *d\n")),
    Case("cfg_unknown_override_key", "config", "vqvae.overrides.code_dimm (typo)",
         _text("config.yaml", "vqvae:\n  overrides:\n    code_dimm: 256\n")),
    Case("cfg_unknown_difficulty_task", "config", "curriculum.difficulties.depth_atomc (typo)",
         _text("config.yaml", "curriculum:\n  difficulties:\n    depth_atomc: 1.0\n")),
    Case("cfg_unknown_depth_loss", "config", "finetune.depth_losses.makrer (typo)",
         _text("config.yaml", "finetune:\n  depth_losses:\n    makrer: 1.0\n")),
    Case("cfg_not_utf8", "config", "config in Latin-1", _text("config.yaml", "demo:\n  root: caf\xe9\n".encode("latin1"))),
]


CASES: dict[str, Case] = {c.name: c for c in _CASES}
assert len(CASES) == len(_CASES), "case names must be unique"


def make_case(name: str, out_dir: str | os.PathLike) -> tuple[Path, dict]:
    """Build case ``name`` under ``out_dir/name`` (and the shared base); returns (folder, info)."""
    case = CASES[name]
    out_dir = Path(out_dir)
    base = build_base(out_dir)
    case_dir = out_dir / name
    if case_dir.exists():
        shutil.rmtree(case_dir)
    case_dir.mkdir(parents=True)
    info = {"name": name, "stage": case.stage, "description": case.description, **case.build(base, case_dir)}
    (case_dir / "case.json").write_text(json.dumps(info, indent=1))
    return case_dir, info


def make_all(out_dir: str | os.PathLike, names: list[str] | None = None) -> dict[str, Path]:
    """Build every case (or ``names``); returns name -> case folder."""
    return {n: make_case(n, out_dir)[0] for n in (names or list(CASES))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", help="folder to write the corpus into")
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)
    if args.list:
        for c in CASES.values():
            print(f"{c.name:34s} {c.stage:15s} {c.description}")
        return 0
    if not args.out_dir:
        parser.error("out_dir is required")
    unknown = [n for n in args.cases if n not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; see --list")
    made = make_all(args.out_dir, args.cases or None)
    print(f"wrote {len(made)} case(s) under {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
