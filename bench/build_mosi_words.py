"""Rebuild the bundled ``src/modalfuse/data_files/mosi/mosi_words.npz`` from ``../shared/data/mosi``.

    python bench/build_mosi_words.py                 # float16 vectors (what ships)
    python bench/build_mosi_words.py --dtype float32 --out /tmp/mosi_words32.npz

Prints the counts (segments, tokens, GloVe coverage) and, as its last line, one JSON object that also
measures what storing the vectors as float16 changes: the largest absolute and relative error and
the lowest cosine similarity against the float32 GloVe rows.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from modalfuse.datasets.mosi_words import MOSI_WORDS, build_bundle, load_words

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data" / "mosi"))
    ap.add_argument("--out", default=str(ROOT / "src" / "modalfuse" / "data_files" / "mosi" / MOSI_WORDS))
    ap.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    a = ap.parse_args()
    src = Path(a.shared)
    stats = build_bundle(src / "transcripts.csv", src / "CMU_MOSI_Opinion_Labels.csd",
                         src / "glove840b_subset.npz", a.out, dtype=a.dtype)
    # What float16 storage costs: compare the stored rows with GloVe's float32 ones.
    _, _, vocab, in_glove, vectors = load_words(a.out)
    with np.load(src / "glove840b_subset.npz") as g:
        glove = dict(zip((str(w) for w in g["words"]), g["vectors"]))
    ref = np.stack([glove[w] for w, k in zip(vocab, in_glove) if k])
    got = vectors[in_glove]
    cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    stats.update(
        dtype=a.dtype, bytes=Path(a.out).stat().st_size,
        max_abs_err=float(np.abs(ref - got).max()),
        max_rel_err=float((np.abs(ref - got) / np.maximum(np.abs(ref), 1e-3)).max()),
        min_cosine=float(cos.min()),
    )
    print(f"{stats['segments']} segments, {stats['tokens']} tokens ({stats['distinct']} distinct); GloVe covers "
          f"{stats['covered_tokens'] / stats['tokens']:.1%} of tokens, {stats['covered_distinct'] / stats['distinct']:.1%} "
          f"of distinct tokens; wrote {a.out} ({stats['bytes']:,} bytes)")
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
