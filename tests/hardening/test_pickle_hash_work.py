"""Shared references cannot make the unpickler hash for long: a dict key (or set member)
whose tuples are shared stands for its whole expansion when hashed, and such a pickle is
refused from its opcodes before the loader builds anything."""

import pickle
import pickletools

import pytest

import perception_tokens.safe_pickle as safe_pickle
from perception_tokens.pickle_hash_work import hashing_work
from perception_tokens.safe_pickle import PickleExpansionError, load_restricted_pickle, loads_restricted, object_budget


def _shared_tuple(depth: int) -> tuple:
    t: tuple = ()
    for _ in range(depth):
        t = (t, t)  # 2**(depth+1) - 1 tuples once expanded; hash() walks all of them
    return t


def _rewrite(data: bytes, replace: dict[str, bytes]) -> bytes:
    """``data`` with each named one-byte opcode (each present once) replaced by another."""
    out = bytearray(data)
    seen = []
    for op, _arg, pos in pickletools.genops(data):
        if op.name in replace:
            out[pos:pos + 1] = replace[op.name]
            seen.append(op.name)
    assert sorted(seen) == sorted(replace), seen
    return bytes(out)


def _pickle_dict_key(key, protocol: int) -> bytes:
    """The pickle of ``{key: 1}``, written without hashing ``key`` (building that dict here
    would take as long as the attack): ``[key, 1]`` with its list opcodes turned into dict ones."""
    return _rewrite(pickle.dumps([key, 1], protocol=protocol), {"EMPTY_LIST": b"}", "APPENDS": b"u"})


class _CallWith:
    """Pickles as ``func(*args)`` (GLOBAL + REDUCE), so ``set([key])`` is written unhashed."""

    def __init__(self, func, *args):
        self.reduced = (func, args)

    def __reduce__(self):
        return self.reduced


@pytest.fixture
def loader_calls(monkeypatch):
    calls = []
    real_load = safe_pickle._RestrictedUnpickler.load

    def counting_load(self):
        calls.append(self._source)
        return real_load(self)

    monkeypatch.setattr(safe_pickle._RestrictedUnpickler, "load", counting_load)
    return calls


@pytest.mark.timeout(120)  # without the bound, hashing this key takes minutes
@pytest.mark.parametrize("protocol", range(1, pickle.HIGHEST_PROTOCOL + 1))
def test_deeply_shared_tuple_as_dict_key_is_refused_before_loading(tmp_path, loader_calls, protocol):
    data = _pickle_dict_key(_shared_tuple(34), protocol)
    assert len(data) < 400
    path = tmp_path / "refs(unc).p"
    path.write_bytes(data)
    with pytest.raises(PickleExpansionError) as err:
        load_restricted_pickle(path)
    assert str(path) in str(err.value)
    assert f"set members stand for more than {object_budget(len(data))} objects to hash" in str(err.value)
    assert loader_calls == []  # refused from the opcodes: the C unpickler never ran


@pytest.mark.timeout(120)
@pytest.mark.parametrize("make", [
    lambda t: pickle.dumps(_CallWith(set, [t, 1]), protocol=2),  # set([...]) via REDUCE
    lambda t: pickle.dumps(_CallWith(frozenset, [t, 1]), protocol=2),
    lambda t: _rewrite(pickle.dumps([t, 1], protocol=4), {"EMPTY_LIST": b"\x8f", "APPENDS": b"\x90"}),  # ADDITEMS
    lambda t: _rewrite(pickle.dumps((t, 1, 2, 3), protocol=4), {"TUPLE": b"\x91"}),  # FROZENSET
], ids=["set-reduce", "frozenset-reduce", "additems", "frozenset-opcode"])
def test_deeply_shared_tuple_as_set_member_is_refused(loader_calls, make):
    with pytest.raises(PickleExpansionError, match="to hash"):
        loads_restricted(make(_shared_tuple(34)), source="s.p")
    assert loader_calls == []


def test_hashing_work_counts_each_hashed_value_as_its_expanded_tree():
    # keys only (values are not hashed); a tuple counts itself and its members
    assert hashing_work(pickle.dumps({"a": [1, 2, 3], "b": {"c": 4}}, protocol=2), 10**6) == 3
    assert hashing_work(pickle.dumps({(1, 2): "x"}, protocol=2), 10**6) == 3
    assert hashing_work(pickle.dumps({_shared_tuple(3): 0}, protocol=2), 10**6) == 15  # 2**4 - 1 tuples
    assert hashing_work(pickle.dumps([1, (2, 3), "no hashing"], protocol=2), 10**6) == 0
    # the same memoised key hashed in three dicts counts three times
    t = _shared_tuple(3)
    assert hashing_work(pickle.dumps([{t: 1}, {t: 2}, {t: 3}], protocol=4), 10**6) == 45
    # past the limit the count stops at limit + 1
    assert hashing_work(_pickle_dict_key(_shared_tuple(50), 2), 1000) == 1001


def test_a_moderate_key_hashed_many_times_is_refused_on_the_total(loader_calls):
    key = _shared_tuple(10)  # 2047 objects per hash: fine once, not 30 times in a small file
    data = pickle.dumps([{key: i} for i in range(30)], protocol=2)
    assert 30 * 2047 > object_budget(len(data))
    with pytest.raises(PickleExpansionError, match="to hash"):
        loads_restricted(data, source="many.p")
    assert loader_calls == []
    assert loads_restricted(pickle.dumps([{key: 0}], protocol=2), source="once.p") == [{key: 0}]


def test_refcoco_like_refs_still_load(tmp_path, loader_calls):
    # the shape of refs(unc).p (perception_tokens/demo/refcoco_writer.py), with memo-shared strings
    refs = []
    for i in range(300):
        sentences = [{"tokens": ["man", "on", "the", "left"], "raw": "Man on the left", "sent_id": 3 * i + j,
                      "sent": "man on the left"} for j in range(3)]
        refs.append({"sent_ids": [s["sent_id"] for s in sentences], "file_name": f"COCO_train2014_{i:012d}_{i}.jpg",
                     "ann_id": i, "ref_id": i, "image_id": i, "split": ("train", "val", "testA")[i % 3],
                     "sentences": sentences, "category_id": 1 + i % 80})
    for protocol in (0, 2, 4, 5):
        path = tmp_path / f"refs_{protocol}.p"
        path.write_bytes(pickle.dumps(refs, protocol=protocol))
        assert load_restricted_pickle(path) == refs
    assert len(loader_calls) == 4
    # every dict key is a string: one object hashed per key
    n_keys = sum(len(r) + sum(len(s) for s in r["sentences"]) for r in refs)
    assert hashing_work(pickle.dumps(refs, protocol=2), 10**9) == n_keys


def test_a_truncated_pickle_is_malformed_naming_the_source(loader_calls):
    data = pickle.dumps({"a": [1, 2, 3]}, protocol=2)
    with pytest.raises(ValueError, match=r"^cut\.p: malformed pickle"):
        loads_restricted(data[:-3], source="cut.p")
