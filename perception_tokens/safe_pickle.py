"""Load data-only pickles (RefCOCO's ``refs(unc).p``) without running any code.

A pickle can name any importable callable (``os.system``, ``builtins.eval``...) and call
it while loading. The official RefCOCO refs file is a pickle written by Python 2, so we
read it with an ``Unpickler`` whose ``find_class`` only hands out inert container
types; anything else is refused *before* it is imported or called.

Python 2 ``str`` objects arrive as ``bytes`` (``encoding="bytes"``) and are then decoded
as UTF-8, falling back to Latin-1 byte-for-byte. This is the same result as
``encoding="latin1"`` for ASCII text (all of RefCOCO's keys and nearly all sentences),
and correct rather than mojibake for the few sentences holding UTF-8 bytes.

A pickle can also refer to one object many times (its memo): 24 levels of "a list holding
the previous list twice" fit in 181 bytes and stand for 2**24 lists once copied out.
Before anything walks the loaded value, its size *as a tree* is counted once per distinct
object; more than :func:`object_budget` (a few objects per byte of file, far above any
data pickle) or a container that holds itself is refused with :class:`PickleExpansionError`.
Shared references can also make the loading itself slow: a dict key made of shared tuples
is hashed as its whole expansion. So before loading, the opcode stream is replayed
(:func:`perception_tokens.pickle_hash_work.hashing_work`, linear in the file) and a pickle
whose dict keys and set members stand for more than the same budget is refused unloaded.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

from perception_tokens.pickle_hash_work import hashing_work

__all__ = [
    "PickleExpansionError",
    "UnsafePickleError",
    "load_restricted_pickle",
    "loads_restricted",
    "object_budget",
]

# A data pickle spends at least one byte on nearly every object it holds (None, True and
# BININT1 are 1-2 bytes, an empty list 1 byte plus its memo slot); RefCOCO's refs hold
# about 0.2 objects per byte. Four per byte leaves room for any of them and stops
# shared-reference bombs at a small multiple of the file's own size.
OBJECTS_PER_BYTE = 4
MIN_OBJECT_BUDGET = 10_000

# (module, name) pairs that a data pickle may reference. Only inert containers: calling
# them with pickled arguments can build a value but cannot reach the OS or the interpreter.
_ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("__builtin__", "set"),  # Python 2 spelling
        ("__builtin__", "frozenset"),
    }
)


class UnsafePickleError(ValueError):
    """The pickle references a global outside the allow-list (nothing was executed)."""

    def __init__(self, source: str, global_name: str):
        super().__init__(
            f"{source}: refused to unpickle global {global_name!r} "
            "(only plain containers and scalars are allowed; nothing was executed)"
        )
        self.source = source
        self.global_name = global_name


class PickleExpansionError(ValueError):
    """The pickle's shared references stand for too many objects, or a container holds itself."""

    def __init__(self, source: str, why: str):
        super().__init__(f"{source}: refused pickle: {why}")
        self.source = source
        self.why = why


def object_budget(n_bytes: int) -> int:
    """How many objects (counted as a tree) a data pickle of ``n_bytes`` may stand for."""
    return MIN_OBJECT_BUDGET + OBJECTS_PER_BYTE * n_bytes


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, source: str):
        super().__init__(file, encoding="bytes", fix_imports=True)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle hook
        if (module, name) in _ALLOWED_GLOBALS:
            import builtins

            return getattr(builtins, name)
        raise UnsafePickleError(self._source, f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(self._source, f"persistent id {pid!r}")


def _decode_bytes(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin1")


_CONTAINERS = (dict, list, tuple, set, frozenset)


def _check_tree_size(root: Any, budget: int, source: str) -> int:
    """Objects ``root`` stands for once every shared reference is copied out.

    Each distinct container is visited once (its tree size memoised by ``id``; all of
    them stay alive under ``root``, so ids are stable), so the cost is linear in the
    pickle, not in its expansion. Raises PickleExpansionError past ``budget`` or on a cycle.
    """
    sizes: dict[int, int] = {}
    open_ids: set[int] = set()

    def size(value: Any) -> int:
        if not isinstance(value, _CONTAINERS):
            return 1
        key = id(value)
        if key in sizes:
            return sizes[key]
        if key in open_ids:
            raise PickleExpansionError(source, f"a {type(value).__name__} contains itself")
        open_ids.add(key)
        children = [x for kv in value.items() for x in kv] if isinstance(value, dict) else value
        total = 1
        for child in children:
            total += size(child)
            if total > budget:
                raise PickleExpansionError(
                    source, f"shared references stand for more than {budget} objects (the limit for its size)"
                )
        open_ids.discard(key)
        sizes[key] = total
        return total

    return size(root)


def _normalise(value: Any) -> Any:
    """bytes -> str everywhere (keys included); containers rebuilt with the same shape."""
    if isinstance(value, bytes):
        return _decode_bytes(value)
    if isinstance(value, dict):
        return {_normalise(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_normalise(v) for v in value)
    if isinstance(value, set):
        return {_normalise(v) for v in value}
    if isinstance(value, frozenset):
        return frozenset(_normalise(v) for v in value)
    return value


def loads_restricted(data: bytes, *, source: str = "<bytes>", max_objects: int | None = None) -> Any:
    """Restricted load of pickle ``data``; ``source`` names it in error messages.

    ``max_objects`` caps the objects the value stands for as a tree, and the objects its
    dict keys and set members stand for, hashed while loading (default:
    :func:`object_budget` of ``len(data)``); past either, :class:`PickleExpansionError`.
    """
    budget = object_budget(len(data)) if max_objects is None else max_objects
    try:
        work = hashing_work(data, budget)
    except ValueError as exc:
        raise ValueError(f"{source}: malformed pickle: {exc}") from exc
    if work > budget:
        raise PickleExpansionError(
            source, f"its dict keys and set members stand for more than {budget} objects to hash (the limit for its size)"
        )
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), source).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, MemoryError, RecursionError) as exc:
        raise ValueError(f"{source}: malformed pickle: {type(exc).__name__}: {exc}") from exc
    try:
        _check_tree_size(obj, budget, source)
        return _normalise(obj)
    except RecursionError:
        raise PickleExpansionError(source, "containers nested deeper than the interpreter's recursion limit") from None


def load_restricted_pickle(path: str | os.PathLike) -> Any:
    """Load a data-only pickle file (dicts, lists, str, numbers, sets) safely.

    Raises :class:`UnsafePickleError` naming the file and the refused global if the
    pickle tries to reference anything else, ``FileNotFoundError`` if it is missing and
    ``ValueError`` (naming the file) if it is not a valid pickle, and
    :class:`PickleExpansionError` if its shared references stand for too many objects.
    """
    path = Path(path)
    data = path.read_bytes()
    return loads_restricted(data, source=str(path))
