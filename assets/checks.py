"""Reusable asset checks: unique ids, boxes inside images, reject rate under a threshold.

They read only the columns they need, through the same lazy table handles the assets use.
"""


from typing import Sequence

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from pipeline_lib.tables import TableHandle


def unique_ids_check(asset: str, id_columns: Sequence[str]) -> dg.AssetChecksDefinition:
    cols = list(id_columns)

    @dg.asset_check(asset=asset, name=f"{asset}_ids_unique", description=f"({', '.join(cols)}) is unique in {asset}.", blocking=True)
    def _check(table: TableHandle) -> dg.AssetCheckResult:
        t = table.read(columns=cols)
        n = t.num_rows
        distinct = t.group_by(cols).aggregate([]).num_rows if n else 0
        return dg.AssetCheckResult(
            passed=distinct == n,
            metadata={"rows": n, "duplicates": n - distinct},
        )

    return _check


def boxes_inside_check(asset: str) -> dg.AssetChecksDefinition:
    cols = ["bbox_x", "bbox_y", "bbox_w", "bbox_h", "image_width", "image_height"]

    @dg.asset_check(asset=asset, name=f"{asset}_boxes_inside", description=f"Every box of {asset} has positive size and lies inside its image.")
    def _check(table: TableHandle) -> dg.AssetCheckResult:
        t = table.read(columns=cols)
        if t.num_rows == 0:
            return dg.AssetCheckResult(passed=True, metadata={"rows": 0, "outside": 0})
        x, y, w, h = (t[c] for c in cols[:4])
        W, H = pc.cast(t["image_width"], pa.float64()), pc.cast(t["image_height"], pa.float64())
        tol = 1.0  # annotation tools round to whole pixels
        bad = pc.or_(
            pc.or_(pc.less_equal(w, 0), pc.less_equal(h, 0)),
            pc.or_(
                pc.or_(pc.less(x, -tol), pc.less(y, -tol)),
                pc.or_(pc.greater(pc.add(x, w), pc.add(W, tol)), pc.greater(pc.add(y, h), pc.add(H, tol))),
            ),
        )
        outside = int(pc.sum(pc.cast(bad, pa.int64())).as_py() or 0)
        return dg.AssetCheckResult(passed=outside == 0, metadata={"rows": t.num_rows, "outside": outside})

    return _check


def reject_rate_check(asset: str, max_fraction: float) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset,
        name=f"{asset}_reject_rate",
        description=f"Rejected records of {asset} stay below {max_fraction:.0%} of all records read.",
        additional_ins={"rejects": dg.AssetIn(key=f"{asset}_rejects")},
    )
    def _check(table: TableHandle, rejects: TableHandle) -> dg.AssetCheckResult:
        kept, rejected = table.num_rows, rejects.num_rows
        total = kept + rejected
        rate = rejected / total if total else 0.0
        return dg.AssetCheckResult(
            passed=rate <= max_fraction and kept > 0,
            metadata={"kept": kept, "rejected": rejected, "reject_rate": float(rate), "threshold": max_fraction},
            description=None if kept else "no rows were read at all",
        )

    return _check
