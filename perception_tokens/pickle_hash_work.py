"""How much hashing loading a pickle costs, read from its opcodes before anything is built.

Loading puts dict keys and set members through ``hash()``. A tuple's hash walks the whole
tuple every time (CPython does not cache it), so a key built from shared references (30
levels of "a tuple holding the previous tuple twice", about 150 bytes) costs 2**30 steps
inside the C unpickler, long before any check on the loaded value can run.

:func:`hashing_work` replays the opcode stream (``pickletools.genops``, no object is built)
on a stack of tree sizes: every value counts the objects it stands for once shared
references are copied out, memo entries (PUT / GET) share the size of the value they name,
and containers grow in place (APPEND, SETITEMS, ...). Every value that loading hashes (dict
keys, set and frozenset members, the argument of a ``set(...)`` / ``frozenset(...)`` call)
adds its tree size to the work. Sizes of lists, dicts and sets that grow after being nested
may be undercounted, but those are unhashable: hashing one stops with TypeError at once.
The cost of the replay is linear in the file.
"""

from __future__ import annotations

import pickletools

__all__ = ["hashing_work"]

# opcodes whose values go through hash() while loading: the keys of a dict, every set member
_HASHES_KEYS = {"DICT", "SETITEMS", "SETITEM"}
_HASHES_ALL = {"FROZENSET", "ADDITEMS"}
# opcodes that add to the container just below their arguments (it stays the same object)
_GROWS_IN_PLACE = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}

# what the replay does per opcode (a table, so the common opcodes cost one dict lookup)
_PUSH_ONE, _PUSH_NEW, _MARK_OP, _PUT, _MEMOIZE, _GET, _GROW, _BUILD, _STOP, _NOOP, _DUP, _POP = range(12)


class _Value:
    """One stack or memo entry: how many objects it stands for as a tree."""

    __slots__ = ("size",)

    def __init__(self, size: int):
        self.size = size


_ONE = _Value(1)  # shared by every scalar and empty tuple: immutable, never grown


def _spec(op) -> tuple:
    name = op.name
    before = [s.name for s in op.stack_before]
    has_mark = "mark" in before
    n_plain = before.index("mark") if has_mark else len(before)
    hashes = 2 if name in _HASHES_KEYS else 1 if name in _HASHES_ALL or name == "REDUCE" else 0
    if name == "MARK":
        kind = _MARK_OP
    elif name == "STOP":
        kind = _STOP
    elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
        kind = _PUT
    elif name == "MEMOIZE":
        kind = _MEMOIZE
    elif name in ("GET", "BINGET", "LONG_BINGET"):
        kind = _GET
    elif name == "DUP":
        kind = _DUP
    elif name == "POP":
        kind = _POP
    elif name in _GROWS_IN_PLACE:
        kind = _GROW
    elif name in ("EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "BYTEARRAY8"):  # containers that can grow
        kind = _PUSH_NEW
    elif not before and not op.stack_after:
        kind = _NOOP  # PROTO, FRAME
    elif not before and len(op.stack_after) == 1:
        kind = _PUSH_ONE  # scalars, EMPTY_TUPLE, GLOBAL, EXT*, PERSID
    else:
        kind = _BUILD
    # REDUCE: set(iterable) / frozenset(iterable) hash the members of their argument tuple
    return kind, has_mark, n_plain, len(op.stack_after), hashes, name == "REDUCE"


_SPECS = {op: _spec(op) for op in pickletools.opcodes}


class _WorkExceeded(Exception):
    pass


def hashing_work(data: bytes, limit: int) -> int:
    """Tree-size total of everything loading ``data`` would hash, or ``limit + 1`` as soon
    as it passes ``limit`` (sizes saturate there, so huge expansions cost nothing to count).

    Raises ValueError for a stream that is not a well-formed pickle (``pickletools`` reads
    it; the caller's loader would refuse it too).
    """
    cap = limit + 1
    stack: list = []
    marks: list[int] = []  # stack heights at each MARK, as the unpickler's metastack
    memo: dict[int, _Value] = {}
    work = 0

    def pop_to_mark() -> list:
        if not marks:
            raise ValueError("MARK expected on the stack")
        i = marks.pop()
        items = stack[i:]
        del stack[i:]
        return items

    def pop() -> _Value:
        if len(stack) <= (marks[-1] if marks else 0):
            raise ValueError("stack underflow")
        return stack.pop()

    try:
        for op, arg, _pos in pickletools.genops(data):
            kind, has_mark, n_plain, n_after, hashes, reduce_ = _SPECS[op]
            if kind == _GET:  # the commonest opcode of a data pickle with repeated strings
                value = memo.get(arg)
                if value is None:
                    raise ValueError(f"memo key {arg} not found")
                stack.append(value)
            elif kind == _PUT:
                memo[arg] = stack[-1]
            elif kind == _PUSH_ONE:
                stack.append(_ONE)
            elif kind == _PUSH_NEW:
                stack.append(_Value(1))
            elif kind == _MARK_OP:
                marks.append(len(stack))
            elif kind == _MEMOIZE:
                memo[len(memo)] = stack[-1]
            elif kind == _NOOP:
                pass
            elif kind == _STOP:
                break
            elif kind == _DUP:
                stack.append(stack[-1])  # IndexError on an empty stack: malformed
            elif kind == _POP:  # an empty frame pops its mark, as the unpickler does
                if marks and len(stack) == marks[-1]:
                    marks.pop()
                else:
                    pop()
            else:
                items = pop_to_mark() if has_mark else []
                args = [pop() for _ in range(n_plain)][::-1] + items
                if kind == _GROW:
                    container, args = args[0], args[1:]
                if hashes:
                    hashed = args[0::2] if hashes == 2 else args[1:] if reduce_ else args
                    work += sum(v.size for v in hashed)
                    if work > limit:
                        raise _WorkExceeded
                size = min(cap, sum(v.size for v in args))
                if kind == _GROW:
                    # growing a scalar fails in the loader (a str has no append); leave _ONE as it is
                    if container is not _ONE:
                        container.size = min(cap, container.size + size)
                    stack.append(container)
                else:
                    stack.extend(_Value(min(cap, 1 + size)) for _ in range(n_after))
    except _WorkExceeded:
        return cap
    except IndexError as exc:
        raise ValueError(f"stack underflow: {exc}") from exc
    return work
