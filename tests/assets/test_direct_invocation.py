"""Assets called directly with ``dg.build_asset_context`` (no job, no run): the unit-test style of
Dagster's project_ml example. The asset streams its table to a staged file and returns an Output
whose value is that staged table and whose data version is its content hash; nothing is committed
until an IO manager handles the Output, so a directly invoked asset leaves the storage untouched."""

from __future__ import annotations

import dagster as dg
import pyarrow.parquet as pq

from asset_unit_helpers import make_settings, table_path, write_input
from perception_tokens.schemas import LVIS_INSTANCE_SCHEMA, REFCOCO_REF_SCHEMA
from pipeline_lib.tables import TableHandle
from pipelines.definitions import build_definitions
from test_box_tokens import _lvis, _ref


def _outputs(result) -> dict[str, dg.Output]:
    outputs = list(result) if not isinstance(result, dg.Output) else [result]
    return {o.output_name: o for o in outputs}


def test_box_tokens_invoked_with_build_asset_context(tmp_path):
    settings = make_settings(tmp_path)
    defs = build_definitions(settings)
    box_tokens = defs.get_assets_def("box_tokens")
    lvis = [_lvis(11, (100.0, 20.0, 200.0, 40.0)), _lvis(13, (10.0, 10.0, 0.0, 5.0))]
    refs = [_ref(7, 70, 1, (10.0, 100.0, 20.0, 50.0))]
    write_input(settings, "lvis_instances", LVIS_INSTANCE_SCHEMA, lvis)
    write_input(settings, "refcoco_refs", REFCOCO_REF_SCHEMA, refs)

    with dg.instance_for_test() as instance:
        context = dg.build_asset_context(resources={"storage": defs.resources["storage"]}, instance=instance)
        outputs = _outputs(box_tokens(context, lvis_instances=TableHandle([table_path(settings, "lvis_instances")]),
                                      refcoco_refs=TableHandle([table_path(settings, "refcoco_refs")])))

    assert set(outputs) == {"box_tokens", "box_tokens_rejects"}
    staged = outputs["box_tokens"].value
    rows = pq.read_table(str(staged.staging_path)).to_pylist()
    assert [(r["annotation_id"], r["ref_id"], r["box_tokens"]) for r in rows] == [
        (11, None, "(<PIXEL_50>,<PIXEL_20>,<PIXEL_150>,<PIXEL_60>)"),
        (70, 7, "(<PIXEL_10>,<PIXEL_50>,<PIXEL_30>,<PIXEL_75>)"),
    ]
    assert outputs["box_tokens"].data_version == dg.DataVersion(staged.content_hash)
    rejects = pq.read_table(str(outputs["box_tokens_rejects"].value.staging_path)).to_pylist()
    assert [(r["record_id"], r["reason"]) for r in rejects] == [("13", "box [10.0, 10.0, 0.0, 5.0] has non-positive width or height")]
    # the lineage names the inputs; with nothing recorded in this instance their versions are unknown
    lineage = staged.lineage
    assert lineage["asset_key"] == "box_tokens" and lineage["partition"] is None
    assert lineage["input_data_versions"] == {"lvis_instances": None, "refcoco_refs": None}
    assert not table_path(settings, "box_tokens").exists()  # nothing committed without an IO manager
