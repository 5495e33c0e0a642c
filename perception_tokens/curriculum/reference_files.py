"""The selection files the reference repository ships, read without running any code.

Aurora-perception ships which 500 ADE20K images get marked points (``AiT/vae/ADE_500files.npy``,
a 1-D array of file names, read by ``add_marks_ade.ipynb`` cell 0), the points themselves
(``AiT/vae/point_label_mappings.json``, written by cell 4 and read by
``create_depth_annealing_data.ipynb`` cell 2), the LVIS images of the counting data
(``Bbox/train_ids.npy``, ``Bbox/cot_ids.npy``, 1-D int arrays, ``create_bbox_annealing_data.ipynb``
cell 3) and GPT-4o's plurals (``Bbox/plurals.npy``, a pickled dict in a 0-d object array,
read there with ``allow_pickle=True``).

``.npy`` arrays are read with ``np.load(allow_pickle=False)``. ``plurals.npy`` is converted once
to JSON (:func:`read_plurals_npy`, ``ptok convert-plurals``): its pickle is loaded by the
restricted unpickler of :mod:`perception_tokens.safe_pickle`, with inert stand-ins for the three
numpy names an object array's pickle refers to, so no numpy (or any other) code runs.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from perception_tokens.aurora_marks import LETTERS, AuroraMarks
from perception_tokens.pickle_hash_work import hashing_work
from perception_tokens.safe_pickle import PickleExpansionError, _check_tree_size, _normalise, _RestrictedUnpickler, object_budget

GRID = 336
_FILE_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.(jpg|jpeg|png)$", re.I)


def load_marked_files(path: str | Path) -> list[str]:
    """``ADE_500files.npy``: the ADE20K file names to mark, in the file's order."""
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:  # an object array needs pickle: refused
        raise ValueError(f"{path}: not a plain string array ({exc})") from exc
    if arr.ndim != 1 or arr.dtype.kind != "U":
        raise ValueError(f"{path}: expected a 1-D array of file names, got {arr.dtype} {arr.shape}")
    names = [str(n) for n in arr]
    bad = [n for n in names if not _FILE_NAME.match(n)]
    if bad:
        raise ValueError(f"{path}: {len(bad)} entries are not plain image file names, e.g. {bad[0]!r}")
    return names


def image_id_of(file_name: str) -> str:
    """The ADE20K image id of a file name: ``ADE_train_00009769.jpg`` -> ``ADE_train_00009769``."""
    return file_name.rsplit(".", 1)[0]


def load_point_mappings(path: str | Path) -> dict[str, AuroraMarks]:
    """``point_label_mappings.json``: image id -> its marks, letters in the file's (drawing) order.

    Every entry must hold 2-5 distinct letters A-E, each with an integer coordinate on the
    336 grid and a numeric depth; anything else is an error naming the file and the entry."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not readable JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of file name -> marks")
    out = {}
    for name, mapping in data.items():
        where = f"{path}: entry {name!r}"
        if not isinstance(name, str) or not _FILE_NAME.match(name):
            raise ValueError(f"{where}: not a plain image file name")
        if not isinstance(mapping, dict) or not 2 <= len(mapping) <= 5 or not set(mapping) <= set(LETTERS):
            raise ValueError(f"{where}: expected 2-5 of the letters {LETTERS}")
        coords, depths = [], []
        for letter, point in mapping.items():
            c = point.get("coordinate") if isinstance(point, dict) else None
            d = point.get("depth") if isinstance(point, dict) else None
            if (not isinstance(c, list) or len(c) != 2 or not all(isinstance(v, int) and 0 <= v < GRID for v in c)
                    or not isinstance(d, (int, float)) or isinstance(d, bool)):
                raise ValueError(f"{where}: point {letter} needs an integer coordinate [x, y] in 0..{GRID - 1} and a numeric depth")
            coords.append((int(c[0]), int(c[1])))
            depths.append(float(d))
        out[image_id_of(name)] = AuroraMarks(tuple(mapping), tuple(coords), tuple(depths))
    return out


def load_id_array(path: str | Path) -> list[str]:
    """``train_ids.npy`` / ``cot_ids.npy``: LVIS image ids as strings, in the file's order."""
    arr = np.load(path, allow_pickle=False)  # plain int arrays; never unpickle
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{path}: expected a 1-D integer array of image ids, got {arr.dtype} {arr.shape}")
    return [str(int(i)) for i in arr]


class _ArrayStandIn:
    """What ``numpy.core.multiarray._reconstruct(ndarray, shape, typecode)`` stands for: state only."""

    def __init__(self, *args: Any):
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _DTypeStandIn(_ArrayStandIn):
    """What ``numpy.dtype(name, align, copy)`` stands for: its name, nothing run."""


_NDARRAY = object()
_NUMPY_STANDINS = {
    ("numpy.core.multiarray", "_reconstruct"): _ArrayStandIn,
    ("numpy._core.multiarray", "_reconstruct"): _ArrayStandIn,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DTypeStandIn,
}


class _NpyObjectUnpickler(_RestrictedUnpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_STANDINS:
            return _NUMPY_STANDINS[(module, name)]
        return super().find_class(module, name)


def read_plurals_npy(path: str | Path) -> dict[str, str]:
    """The dict in Aurora's ``plurals.npy`` (a 0-d object array), loaded without running code.

    Raises ValueError naming the file when it is not a 0-d object array holding one
    ``{str: str}`` dict, and UnsafePickleError when its pickle names any other global."""
    data = Path(path).read_bytes()
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(stream)
    except ValueError as exc:
        raise ValueError(f"{path}: not a .npy file: {exc}") from exc
    shape, _fortran, dtype = header
    if shape != () or dtype != np.dtype(object):
        raise ValueError(f"{path}: expected a 0-d object array (a pickled dict), got {dtype} {shape}")
    payload = data[stream.tell():]
    budget = object_budget(len(payload))
    if hashing_work(payload, budget) > budget:
        raise PickleExpansionError(str(path), "its dict keys stand for more objects than a file of its size may")
    try:
        array = _NpyObjectUnpickler(io.BytesIO(payload), str(path)).load()
    except (EOFError, ValueError, TypeError, IndexError, AttributeError) as exc:
        if type(exc).__name__ == "UnsafePickleError":
            raise
        raise ValueError(f"{path}: malformed pickle: {type(exc).__name__}: {exc}") from exc
    state = array.state if isinstance(array, _ArrayStandIn) else None
    # ndarray.__setstate__'s tuple: (version, shape, dtype, is_fortran, data); object data is a list
    if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[4], list) and len(state[4]) == 1):
        raise ValueError(f"{path}: the pickle is not an object array holding one value")
    value = state[4][0]
    _check_tree_size(value, budget, str(path))
    value = _normalise(value)
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f"{path}: expected a dict of category name -> plural (strings)")
    return value
