"""Plot what a trained mosi-words text transformer attends to over the words of a few test utterances.

    python bench/words_attention.py RUN_DIR --out docs/words_attention.png [--n 4]

``RUN_DIR``: a finished run whose model has a ``text`` transformer encoder over the ``mosi-words``
word sequences (e.g. ``mosi-words/text``, or a fusion run). For each of ``n`` correctly classified
test utterances of the most negative and ``n`` of the most positive scores it shows, per word, the
attention the word *receives* in the text encoder's last self-attention layer: the attention matrix
(averaged over heads) averaged over the real query words, so a row sums to 1 over the words. Words
GloVe lacks are marked ``*`` (``oov: flag``: the model sees their flag, not the word; ``oov: drop``,
the presets' default: they are not in the sequence and not shown). With mean
pooling every word's output state reaches the prediction; attention shows which words those states
were mixed from, not a causal attribution.

Prints the plotted utterances with their top-3 words and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from modalfuse.datasets.folds import bundled_file
from modalfuse.datasets.mosi_words import MOSI_WORDS, load_words
from modalfuse.datasets.sentiment import MOSI_PACKED, table_from_packed
from modalfuse.training.run import load_run


def last_layer_attention(model: nn.Module, encoder: nn.Module, batch: dict) -> torch.Tensor:
    """Run ``model`` on ``batch`` and capture ``encoder``'s last ``MultiheadAttention`` weights.

    Returns:
        ``[B, T, T]`` attention (queries x keys), averaged over heads.
    """
    attns = [m for m in encoder.modules() if isinstance(m, nn.MultiheadAttention)]
    if not attns:
        raise SystemExit("the run's text encoder has no self-attention layer (layers: 0?)")
    captured: list[torch.Tensor] = []

    def pre(_mod, args, kwargs):  # ask for the weights the layer normally skips
        kwargs["need_weights"], kwargs["average_attn_weights"] = True, True
        return args, kwargs

    handles = [attns[-1].register_forward_pre_hook(pre, with_kwargs=True),
               attns[-1].register_forward_hook(lambda _m, _a, out: captured.append(out[1]))]
    try:
        with torch.enable_grad():  # grad mode keeps PyTorch off the fused fast path, which skips the hooks
            model(batch["features"], batch["masks"])
    finally:
        for h in handles:
            h.remove()
    return captured[-1].detach()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--out", default="docs/words_attention.png")
    ap.add_argument("--n", type=int, default=4, help="utterances per polarity")
    ap.add_argument("--max-words", type=int, default=16)
    a = ap.parse_args()

    cfg, model, data = load_run(a.run_dir)
    if cfg.data.get("name") != "mosi-words":
        raise SystemExit(f"{a.run_dir}: trained on '{cfg.data.get('name')}', not mosi-words")
    model.eval()
    test = data.test
    ids, seqs, vocab, in_glove, _ = load_words(cfg.data.get("words") or bundled_file(MOSI_WORDS))
    words = dict(zip(ids, seqs))
    table = table_from_packed(str(bundled_file(MOSI_PACKED)), 1)
    scores = dict(zip(table.ids, table.scores))  # the continuous score of every segment

    idx = np.arange(len(test))
    batch = test.get_batch(idx)
    att = last_layer_attention(model, model.encoders["text"], batch)  # [N, T, T]
    with torch.no_grad():
        pred = model(batch["features"], batch["masks"])["logits"].argmax(-1).numpy()
    labels = test.labels
    mask = test.masks["text"]
    s = np.array([scores[i] for i in test.ids])
    correct = pred == labels
    n_words = mask.sum(1)
    ok = correct & (n_words >= 4) & (n_words <= a.max_words)
    neg = [i for i in np.argsort(s) if ok[i]][: a.n]
    pos = [i for i in np.argsort(-s) if ok[i]][: a.n]
    rows = []
    for i in [*neg, *pos]:
        t = int(n_words[i])
        recv = att[i, :t, :t].mean(0).numpy()  # attention each word receives, averaged over real queries
        seq = words[test.ids[i]]
        if cfg.data.get("oov") == "drop":  # the model saw only the words GloVe has
            seq = seq[in_glove[seq]]
        toks = [vocab[k] + ("" if in_glove[k] else "*") for k in seq[:t]]
        rows.append({"id": test.ids[i], "score": float(s[i]), "words": toks, "attention": recv.round(4).tolist()})
        top = [toks[j] for j in np.argsort(-recv)[:3]]
        print(f"{test.ids[i]:>18}  score {s[i]:+.2f}  {' '.join(toks)}  | top: {', '.join(top)}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = max(len(r["words"]) for r in rows)
    grid = np.full((len(rows), width), np.nan)
    for r, row in enumerate(rows):
        grid[r, : len(row["attention"])] = row["attention"]
    fig, ax = plt.subplots(figsize=(min(1.0 + 0.85 * width, 16), 0.55 * len(rows) + 1.2), dpi=80)
    im = ax.imshow(grid, cmap="Blues", aspect="auto", vmin=0)
    for r, row in enumerate(rows):
        for j, w in enumerate(row["words"]):
            ax.text(j, r, w, ha="center", va="center", fontsize=8,
                    color="white" if row["attention"][j] > 0.6 * np.nanmax(grid) else "black")
    ax.set_yticks(range(len(rows)), [f"{row['score']:+.1f}" for row in rows], fontsize=8)
    ax.set_xticks([])
    ax.set_ylabel("sentiment score")
    ax.set_title("mosi-words text transformer: attention each word receives (last layer, mean over "
                 "heads and queries; * = not in GloVe)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.02, pad=0.01)
    fig.tight_layout()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out)
    print(json.dumps({"run": str(a.run_dir), "out": a.out, "bytes": Path(a.out).stat().st_size,
                      "utterances": [{k: r[k] for k in ("id", "score")} for r in rows]}))


if __name__ == "__main__":
    main()
