"""How the Parquet layout of the YouTube-8M shards sets the ``features`` reader's decoding speed.

    python bench/parquet_layout.py [--data ../shared/data/yt8m/video] [--repeats 5]

The shards are written once by ``prepare features yt8m`` (feature columns plain, class names in
``_common_metadata``), then rewritten from those tables in other layouts:

- ``before``: what ``prepare features`` wrote before (pyarrow's defaults: dictionary encoding and
  Snappy on every column, the 3862 class names in every file's footer);
- ``defaults_no_names``: pyarrow's defaults, class names not in the footers;
- ``plain_names_in_footer``: feature columns plain, class names in every footer;
- ``one_file``: the current layout, all shards in one file (row groups of 4096 rows);
- ``one_file_binary``: one file, each vector a ``fixed_size_binary`` of float32 bytes instead of a
  fixed-size list (no repetition/definition levels; no longer a list column: not what the
  ``features`` dataset reads, shown as the bound of the list encoding).

Each is read as the streamed ``features`` dataset reads (``readers.feature_files.iter_files``: one
``pyarrow.dataset`` scan, one thread, 512-row batches, columns to numpy without copies). Layouts
alternate repeat by repeat; medians of examples/s and of each repeat's ratio to ``before``.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

COLUMNS = ["id", "rgb", "audio", "label"]


def _read(files: list[Path]) -> int:
    import numpy as np
    import pyarrow as pa

    from modalfuse.readers.feature_files import iter_files

    n = 0
    for _, batch in iter_files(files, COLUMNS, 512):
        for c in ("rgb", "audio"):
            col = batch.column(c)
            if pa.types.is_fixed_size_binary(col.type):
                np.frombuffer(col.buffers()[1], np.float32, len(col) * col.type.byte_width // 4, col.offset * col.type.byte_width)
            else:
                col.flatten().to_numpy().reshape(len(col), -1)
        n += batch.num_rows
    return n


def _binary(table):
    import pyarrow as pa

    cols = {}
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        if name in ("rgb", "audio"):
            x = col.flatten().to_numpy()
            col = pa.FixedSizeBinaryArray.from_buffers(pa.binary(col.type.list_size * 4), len(col),
                                                       [None, pa.py_buffer(x.tobytes())])
        cols[name] = col
    return pa.table(cols)


def layouts(tmp: Path, shards: list[str]) -> dict[str, list[Path]]:
    """Every layout's files (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from modalfuse.prepare.features import prepare_features

    prepare_features("yt8m", str(tmp / "current"), train=shards)
    current = sorted((tmp / "current").glob("*.parquet"))
    common = pq.read_schema(tmp / "current" / "_common_metadata").metadata
    plain = {"use_dictionary": ["id", "split"], "compression": {"id": "snappy", "rgb": "none", "audio": "none",
                                                                "label": "none", "split": "snappy"}}
    out = {"current": current}
    for name, names_in_footer, options in (("before", True, {}), ("defaults_no_names", False, {}),
                                           ("plain_names_in_footer", True, plain)):
        (tmp / name).mkdir()
        for p in current:
            table = pq.read_table(p)
            if names_in_footer:
                table = table.replace_schema_metadata(common)
            pq.write_table(table, tmp / name / p.name, **options)
        out[name] = sorted((tmp / name).glob("*.parquet"))
    whole = pa.concat_tables([pq.read_table(p) for p in current])
    pq.write_table(whole, tmp / "one.parquet", row_group_size=4096, **plain)
    pq.write_table(_binary(whole), tmp / "one_binary.parquet", row_group_size=4096, **plain)
    out["one_file"], out["one_file_binary"] = [tmp / "one.parquet"], [tmp / "one_binary.parquet"]
    return out


def main() -> int:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(here.parent / "shared" / "data" / "yt8m" / "video"))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    shards = sorted(str(p) for p in Path(args.data).glob("*.tfrecord"))
    if not shards:
        print(f"no *.tfrecord files in {args.data}")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="parquet-layout-"))
    try:
        files = layouts(tmp, shards)
        sizes = {k: sum(f.stat().st_size for f in v) / 1e6 for k, v in files.items()}
        for v in files.values():
            _read(v)  # warm the page cache
        rates: dict[str, list[float]] = {k: [] for k in files}
        for r in range(args.repeats):
            for name, v in files.items():
                t = time.perf_counter()
                n = _read(v)
                rates[name].append(n / (time.perf_counter() - t))
            print(f"repeat {r + 1}: " + ", ".join(f"{k} {x[-1]:,.0f}/s" for k, x in rates.items()), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = {k: {"examples_per_s": statistics.median(v), "mb": round(sizes[k], 1),
               "over_before": statistics.median(a / b for a, b in zip(v, rates["before"]))} for k, v in rates.items()}
    for k, v in out.items():
        print(f"{k:24s} {v['mb']:7.1f} MB  {v['examples_per_s']:10,.0f} examples/s  {v['over_before']:.2f}x before")
    print(json.dumps({"layouts": out, "examples": n, "load_average": os.getloadavg()[0]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
