"""Lineage and resume keys see the version of every input partition (issue 12.3).

Before the fix an unpartitioned asset reading a partitioned one (depth_vqvae over pseudo_depth)
recorded only the latest-materialized partition's data version, so a change in another
partition left its resume key unchanged and the finished checkpoint was "resumed".
"""

from __future__ import annotations

import dagster as dg
import pytest

from pipeline_lib.lineage import input_data_versions

PARTS = dg.StaticPartitionsDefinition(["s0", "s1", "s2"])
CONTENT = {"s0": "a", "s1": "b", "s2": "c"}
SEEN: dict[str, dict] = {}


@dg.asset(partitions_def=PARTS, code_version="1")
def maps(context):
    value = CONTENT[context.partition_key]
    return dg.Output(value, data_version=dg.DataVersion(f"v-{value}"))


@dg.asset(code_version="1", deps=[maps])  # deps, not ins: the test stores no values
def tokenizer(context):
    SEEN["tokenizer"] = input_data_versions(context, context.asset_key)
    return 1


@dg.asset(partitions_def=PARTS, code_version="1", deps=[maps, tokenizer])
def tokens(context):
    SEEN["tokens"] = input_data_versions(context, context.asset_key)
    return 1


ALL = [maps, tokenizer, tokens]


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


def _run(instance, selection, pk=None):
    res = dg.materialize(ALL, instance=instance, selection=selection, partition_key=pk, resources={"io_manager": dg.mem_io_manager})
    assert res.success


def test_whole_read_partitioned_input_records_every_partition(instance, monkeypatch):
    for pk in CONTENT:
        _run(instance, "maps", pk)
    _run(instance, "tokenizer")
    assert SEEN["tokenizer"] == {"maps": {"s0": "v-a", "s1": "v-b", "s2": "v-c"}}
    monkeypatch.setitem(CONTENT, "s0", "changed")
    _run(instance, "maps", "s0")
    _run(instance, "maps", "s2")  # s2 re-materialized unchanged: the latest partition is again an unchanged one
    _run(instance, "tokenizer")
    assert SEEN["tokenizer"] == {"maps": {"s0": "v-changed", "s1": "v-b", "s2": "v-c"}}


def test_partition_read_partition_by_partition_records_its_own(instance, monkeypatch):
    for pk in CONTENT:
        _run(instance, "maps", pk)
    _run(instance, "tokenizer")
    _run(instance, "tokens", "s1")
    assert SEEN["tokens"]["maps"] == "v-b"  # not the latest-materialized partition's (s2: v-c)
    assert SEEN["tokens"]["tokenizer"] is not None
