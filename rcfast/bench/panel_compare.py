"""Do two weekly panel files agree? Counts and nulls exactly, floats to a relative 1e-9; on big
inputs on a deterministic sample of products (:func:`product_sample`).

Used by ``python -m rcfast.bench weekly`` to check every contender's output against the
reference tool's.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: Floats agree within this relative (and absolute, near zero) difference.
RTOL = 1e-9
ATOL = 1e-12


def product_sample(reference: Path, max_products: int) -> pa.Array:
    """About ``max_products`` product ids to compare on: every k-th of the reference's, in byte
    order."""
    ids = pq.read_table(reference, columns=["product_id"])["product_id"]
    uniq = pc.unique(ids.combine_chunks().cast(pa.string()))
    uniq = uniq.take(pc.array_sort_indices(uniq))
    step = max(1, math.ceil(len(uniq) / max_products))
    return uniq.take(pa.array(np.arange(0, len(uniq), step)))


def _read_panel(path: Path, sample: pa.Array | None) -> pa.Table:
    import pyarrow.dataset as ds

    dset = ds.dataset(str(path), format="parquet")
    if sample is None:
        t = dset.to_table()
    else:
        t = dset.to_table(filter=ds.field("product_id").isin(sample))
    return t.replace_schema_metadata(None)


def _plain_strings(arr: pa.Array) -> pa.Array:
    if pa.types.is_large_string(arr.type) or str(arr.type) == "string_view":
        return arr.cast(pa.string())
    return arr


def compare_panels(a: Path, b: Path, sample: pa.Array | None) -> str | None:
    """None if the two panel files agree (counts exact, floats rtol 1e-9), else the first gap."""
    ta, tb = _read_panel(a, sample), _read_panel(b, sample)
    # a *-noewm peer's panel lacks only the EWM column: compare the others
    ewm = "n_reviews_ewm"
    if (ewm in ta.column_names) != (ewm in tb.column_names):
        ta, tb = (t.drop_columns([ewm]) if ewm in t.column_names else t for t in (ta, tb))
    if ta.column_names != tb.column_names:
        return f"columns differ: {ta.column_names} vs {tb.column_names}"
    if ta.num_rows != tb.num_rows:
        return f"row counts differ: {ta.num_rows} vs {tb.num_rows}"
    for name in ta.column_names:
        x, y = ta[name].combine_chunks(), tb[name].combine_chunks()
        x, y = _plain_strings(x), _plain_strings(y)
        if x.type != y.type:
            return f"{name}: types differ: {x.type} vs {y.type}"
        if not pc.equal(x.is_null(), y.is_null()).to_numpy(zero_copy_only=False).all():
            return f"{name}: nulls differ"
        if pa.types.is_floating(x.type):
            xv = x.to_numpy(zero_copy_only=False)
            yv = y.to_numpy(zero_copy_only=False)
            ok = np.isnan(xv) | np.isclose(xv, yv, rtol=RTOL, atol=ATOL)
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                return f"{name}: row {i}: {xv[i]!r} vs {yv[i]!r}"
        elif not x.equals(y):
            neq = pc.fill_null(pc.not_equal(x, y), False).to_numpy(zero_copy_only=False)
            i = int(np.flatnonzero(neq)[0]) if neq.any() else -1
            return f"{name}: row {i}: {x[i].as_py()!r} vs {y[i].as_py()!r}"
    return None
