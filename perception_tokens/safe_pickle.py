"""Load data-only pickles (RefCOCO's ``refs(unc).p``) without running any code.

A pickle can name any importable callable (``os.system``, ``builtins.eval``...) and call
it while loading. The official RefCOCO refs file is a pickle written by Python 2, so we
read it with an ``Unpickler`` whose ``find_class`` only hands out inert container
types; anything else is refused *before* it is imported or called.

Python 2 ``str`` objects arrive as ``bytes`` (``encoding="bytes"``) and are then decoded
as UTF-8, falling back to Latin-1 byte-for-byte. This is the same result as
``encoding="latin1"`` for ASCII text (all of RefCOCO's keys and nearly all sentences),
and correct rather than mojibake for the few sentences holding UTF-8 bytes.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

__all__ = ["UnsafePickleError", "load_restricted_pickle", "loads_restricted"]

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


def loads_restricted(data: bytes, *, source: str = "<bytes>") -> Any:
    """Restricted load of pickle ``data``; ``source`` names it in error messages."""
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), source).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, MemoryError, RecursionError) as exc:
        raise ValueError(f"{source}: malformed pickle: {type(exc).__name__}: {exc}") from exc
    return _normalise(obj)


def load_restricted_pickle(path: str | os.PathLike) -> Any:
    """Load a data-only pickle file (dicts, lists, str, numbers, sets) safely.

    Raises :class:`UnsafePickleError` naming the file and the refused global if the
    pickle tries to reference anything else, ``FileNotFoundError`` if it is missing and
    ``ValueError`` (naming the file) if it is not a valid pickle.
    """
    path = Path(path)
    data = path.read_bytes()
    return loads_restricted(data, source=str(path))
