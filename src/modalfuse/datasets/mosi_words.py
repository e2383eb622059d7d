"""CMU-MOSI transcripts as GloVe word sequences (``mosi-words``), with Poria's audio/video vectors.

The sentiment paper runs one transformer per modality over word sequences, text as GloVe vectors.
This dataset gives it real ones: the 2,199 CMU-MOSI utterance transcripts (Zadeh et al. 2016),
tokenised and looked up in GloVe 840B 300-d (Pennington et al. 2014), bundled in the package as
``data_files/mosi/mosi_words.npz`` (built from ``../shared`` by ``bench/build_mosi_words.py``).

- **text**: ``[N, seq_len, 300]`` (301 with ``oov: flag``) GloVe vectors with a mask ``[N, seq_len]``
  (True = a real word); the first ``seq_len`` words are kept (``info["text"]`` counts the cut ones).
- **audio**, **video**: Poria's utterance vectors (openSMILE 73-d, 3D-CNN 100-d) of the bundled
  ``mosi`` dataset, one vector ``[N, D]`` per segment: the transformer sees a length-1 sequence. They
  are not broadcast over the words: a copy per word adds no information and costs ``seq_len`` times
  the attention.
- labels, folds (Poria's speaker-independent split by default) and the 2,198 segments are those of
  ``mosi``. The label file holds 2,199 segments; the SDK's alignment drops ``2WGyTLYerpo[43]``, whose
  interval has zero length, so it has no audio/video vector and its transcript ("SHES BEAUTIFUL") is
  left out too (counted in ``info["text"]["transcripts_without_features"]``).

Tokens: upper-case text without punctuation, split on spaces and lower-cased. The transcripts have
lost their apostrophes, so ``DIDNT`` or ``IM`` would all be out of GloVe's vocabulary; the words in
``CONTRACTIONS`` are split the way GloVe's tokenizer split them (``didnt`` -> ``did n't``, ``im`` ->
``i 'm``), which brings back the negation ``n't``. Only unambiguous forms are listed (not ``ill``,
``well``, ``wed``, ``id``, ``hell``, ``shell``, ``its``).

Out-of-vocabulary words (``data.oov``; GloVe covers 80 % of the tokens but only 28 % of the distinct
words, and misses "awesome", "terrible", "recommend"):

- ``zero``: a zero vector before normalisation (so after z-scoring all OOV words share one vector);
- ``flag``: a zero vector plus a 301st feature, 1 for an OOV word. Through the encoder's
  input projection this is one *learned* OOV embedding (the projection's column for the flag),
  trained on the training split only, shared by every OOV word;
- ``drop`` (default): OOV words removed from the sequence (a transcript with no known word keeps one
  zero step, so that no sequence is empty).

The three were compared on validation with the ``mosi-words/text`` preset (3 seeds, docs/words.md):
within noise of each other (validation accuracy 0.687 / 0.693 / 0.701 for flag / zero / drop, std
0.014-0.022); ``drop`` had the best mean and is the default.

Per-word learned OOV embeddings would need an embedding table inside the model (integer token inputs),
which the encoders do not take; they are not offered.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import DataError
from ..registry import DATASETS
from .base import DataBundle
from .folds import bundled_file
from .sentiment import MOSI_FOLDS, MOSI_PACKED, SentimentParams, SentimentTable, build_splits, table_from_packed

log = logging.getLogger(__name__)

MOSI_WORDS = "mosi_words.npz"
GLOVE_DIM = 300

OovMode = Literal["zero", "flag", "drop"]

# Apostrophe-less contractions in the transcripts -> GloVe 840B's tokens (its tokenizer splits
# "didn't" into "did" "n't"). Only forms that cannot be another word.
_NT = ("do", "did", "does", "is", "are", "was", "were", "could", "would", "should", "has", "have",
       "had", "must", "need", "ai")
CONTRACTIONS: dict[str, tuple[str, ...]] = {
    **{f"{w}nt": (w, "n't") for w in _NT},
    "cant": ("ca", "n't"), "wont": ("wo", "n't"),
    "im": ("i", "'m"),
    **{f"{w}ve": (w, "'ve") for w in ("i", "you", "we", "they", "could", "would", "should", "might", "must", "who")},
    **{f"{w}re": (w, "'re") for w in ("you", "they", "what", "who")},
    **{f"{w}ll": (w, "'ll") for w in ("you", "they", "it", "that", "there")},
    **{f"{w}s": (w, "'s") for w in ("that", "there", "he", "she", "what", "who", "here", "let", "where", "how")},
    "youd": ("you", "'d"), "theyd": ("they", "'d"),
}

_ID = re.compile(r"^(?P<video>[A-Za-z0-9_-]+)_(?P<k>[1-9][0-9]*)$")


def tokenize(text: str) -> list[str]:
    """A transcript (upper case, no punctuation) -> lower-case GloVe tokens, contractions split."""
    out: list[str] = []
    for word in text.lower().split():
        out.extend(CONTRACTIONS.get(word, (word,)))
    return out


def read_transcripts(path: str | Path) -> dict[str, tuple[str, int]]:
    """Read ``transcripts.csv`` rows ``"<video>_<k>","TEXT","<n>","<0/1>"``.

    Returns:
        ``{id: (text, binary label)}`` in file order.

    Raises:
        DataError: naming the file, the line and the id for a malformed or repeated row.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: transcripts file not found")
    rows: dict[str, tuple[str, int]] = {}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            for line, row in enumerate(csv.reader(f), 1):
                if len(row) != 4:
                    raise DataError(f"{path}:{line}: expected 4 fields \"<video>_<k>\",\"TEXT\",\"<n>\",\"<0/1>\", "
                                    f"found {len(row)}: {row[:4]}")
                sid, text, _, binary = row
                if not _ID.match(sid):
                    raise DataError(f"{path}:{line}: id '{sid}' is not '<video>_<k>' with k >= 1")
                if binary not in ("0", "1"):
                    raise DataError(f"{path}:{line}: id '{sid}': binary label must be 0 or 1, found '{binary}'")
                if not text.split():
                    raise DataError(f"{path}:{line}: id '{sid}': empty transcript")
                if sid in rows:
                    raise DataError(f"{path}:{line}: id '{sid}' appears twice")
                rows[sid] = (text, int(binary))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e})") from None
    return rows


def map_to_segments(transcripts: dict[str, tuple[str, int]], labels: dict[str, np.ndarray],
                    source: str = "transcripts") -> dict[str, str]:
    """Map every transcript id ``<video>_<k>`` to label segment ``<video>[k-1]``, one to one.

    Args:
        transcripts: from ``read_transcripts``.
        labels: ``{video: scores [n]}`` of the label file (row ``k-1`` is segment ``k``).
        source: the transcripts' file name, for messages.

    Returns:
        ``{segment id "video[row]": text}`` for every labelled segment.

    Raises:
        DataError: naming the id of a transcript without a labelled segment, of a labelled segment
            without a transcript, or of a binary label that disagrees with ``score >= 0``.
    """
    out: dict[str, str] = {}
    for sid, (text, binary) in transcripts.items():
        m = _ID.match(sid)
        assert m is not None  # read_transcripts checked the form
        video, row = m["video"], int(m["k"]) - 1
        if video not in labels:
            raise DataError(f"{source}: id '{sid}': video '{video}' is not in the label file")
        if row >= len(labels[video]):
            raise DataError(f"{source}: id '{sid}': video '{video}' has {len(labels[video])} labelled segments, "
                            f"not {row + 1}")
        score = float(labels[video][row])
        if binary != int(score >= 0):
            raise DataError(f"{source}: id '{sid}': binary label {binary} disagrees with the label file's "
                            f"score {score:+.3f} (expected score >= 0 -> 1)")
        out[f"{video}[{row}]"] = text
    missing = [f"{v}_{k + 1}" for v, s in labels.items() for k in range(len(s)) if f"{v}[{k}]" not in out]
    if missing:
        raise DataError(f"{source}: {len(missing)} labelled segments have no transcript, e.g. id '{missing[0]}'")
    return out


def build_bundle(transcripts_csv: str | Path, labels_csd: str | Path, glove_npz: str | Path,
                 out: str | Path, dtype: str = "float16") -> dict[str, Any]:
    """Write the bundled ``mosi_words.npz`` from the shared CMU-MOSI files.

    Holds ``ids`` ``[S]`` (segment ids ``video[row]``, every labelled segment), ``vocab`` ``[V]`` (every
    token of the transcripts), ``token_ids`` (concatenated, int32) with ``offsets`` ``[S + 1]``,
    ``in_glove`` ``[V]`` bool and ``vectors`` ``[sum(in_glove), 300]`` (the GloVe rows of the known
    tokens, in vocab order, ``dtype``).

    Returns:
        counts: segments, tokens, distinct tokens, and how many of each GloVe covers.
    """
    from ..readers.csd import CsdFile

    transcripts = read_transcripts(transcripts_csv)
    with CsdFile(labels_csd) as f:
        labels = {v: f.read(v)[1].reshape(-1) for v in f.videos()}  # read -> (intervals, features)
    texts = map_to_segments(transcripts, labels, source=str(transcripts_csv))
    with np.load(glove_npz) as g:
        glove = dict(zip((str(w) for w in g["words"]), g["vectors"].astype(np.float32)))
    ids = sorted(texts)
    tokens = [tokenize(texts[i]) for i in ids]
    counts = Counter(t for seq in tokens for t in seq)
    vocab = sorted(counts)
    index = {w: i for i, w in enumerate(vocab)}
    in_glove = np.array([w in glove for w in vocab])
    vectors = np.stack([glove[w] for w in vocab if w in glove]).astype(dtype)
    flat = np.array([index[t] for seq in tokens for t in seq], np.int32)
    offsets = np.cumsum([0, *(len(s) for s in tokens)]).astype(np.int64)
    from ..training.runfolder import atomic_write

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: given a name, numpy would append ".npz" to it
            np.savez_compressed(f, ids=np.array(ids), vocab=np.array(vocab), token_ids=flat, offsets=offsets,
                                in_glove=in_glove, vectors=vectors)

    atomic_write(out, write)
    return {
        "segments": len(ids), "tokens": int(len(flat)), "distinct": len(vocab),
        "covered_tokens": int(sum(c for w, c in counts.items() if w in glove)),
        "covered_distinct": int(in_glove.sum()),
    }


def load_words(path: str | Path) -> tuple[list[str], list[np.ndarray], list[str], np.ndarray, np.ndarray]:
    """Read a ``mosi_words.npz``.

    Returns:
        ``(ids, token id arrays per segment, vocab, in_glove [V], vectors [V, 300] float32)``,
        ``vectors`` zero for the words GloVe lacks.
    """
    try:
        with np.load(path) as z:
            ids = [str(i) for i in z["ids"]]
            vocab = [str(w) for w in z["vocab"]]
            flat, offsets, in_glove = z["token_ids"], z["offsets"], z["in_glove"].astype(bool)
            known = z["vectors"].astype(np.float32)
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"{path}: not a mosi-words bundle (ids, vocab, token_ids, offsets, in_glove, "
                        f"vectors): {e}") from None
    if len(offsets) != len(ids) + 1 or known.shape != (int(in_glove.sum()), GLOVE_DIM):
        raise DataError(f"{path}: inconsistent bundle: {len(ids)} ids, {len(offsets)} offsets, "
                        f"vectors {known.shape} for {int(in_glove.sum())} known words")
    vectors = np.zeros((len(vocab), GLOVE_DIM), np.float32)
    vectors[in_glove] = known
    seqs = [flat[offsets[i]:offsets[i + 1]] for i in range(len(ids))]
    return ids, seqs, vocab, in_glove, vectors


def word_features(seqs: list[np.ndarray], in_glove: np.ndarray, vectors: np.ndarray, seq_len: int,
                  oov: OovMode) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Token ids per segment -> padded GloVe sequences.

    Args:
        seqs: ``[n_i]`` token ids per segment; in_glove ``[V]``; vectors ``[V, 300]``.
        seq_len: steps kept (the first ones); oov: see the module docstring.

    Returns:
        ``(x [N, seq_len, 300 or 301] float32, mask [N, seq_len] bool, statistics)``.
    """
    dim = GLOVE_DIM + (oov == "flag")
    x = np.zeros((len(seqs), seq_len, dim), np.float32)
    mask = np.zeros((len(seqs), seq_len), bool)
    lengths, cut, empty = [], 0, 0
    for i, ids in enumerate(seqs):
        if oov == "drop":
            ids = ids[in_glove[ids]]
        lengths.append(len(ids))
        cut += max(0, len(ids) - seq_len)
        if not len(ids):
            empty += 1
            mask[i, 0] = True  # one zero step: no sequence is empty
            continue
        ids = ids[:seq_len]
        x[i, : len(ids), :GLOVE_DIM] = vectors[ids]
        if oov == "flag":
            x[i, : len(ids), GLOVE_DIM] = ~in_glove[ids]
        mask[i, : len(ids)] = True
    n = np.asarray(lengths)
    all_ids = np.concatenate(seqs) if seqs else np.zeros(0, np.int64)
    stats = {
        "oov": oov, "seq_len": seq_len,
        "tokens": int(sum(len(s) for s in seqs)),
        "oov_tokens": int((~in_glove[all_ids]).sum()),
        "length_median": float(np.median(n)), "length_p95": float(np.percentile(n, 95)),
        "length_max": int(n.max()),
        "truncated_segments": int((n > seq_len).sum()), "truncated_tokens": int(cut),
        "segments_without_known_word": int(empty) if oov == "drop" else 0,
    }
    return x, mask, stats


class MosiWordsParams(SentimentParams):
    oov: OovMode = "drop"  # out-of-vocabulary words: dropped | zero vector | zero + OOV flag feature
    words: str | None = None  # a mosi_words.npz (None: the bundled one)


@DATASETS.register(
    "mosi-words",
    params=MosiWordsParams,
    task="sentiment",  # `list --task` (listing.TASKS)
    description="CMU-MOSI transcripts as GloVe 300-d word sequences + Poria's audio/video vectors, bundled",
)
def build_mosi_words(params: MosiWordsParams) -> DataBundle:
    words_path = params.words or str(bundled_file(MOSI_WORDS))
    ids, seqs, _, in_glove, vectors = load_words(words_path)
    table: SentimentTable = table_from_packed(str(bundled_file(MOSI_PACKED)), params.seq_len)
    table.source = "mosi-words (bundled)" if params.words is None else words_path
    by_id = dict(zip(ids, seqs))
    missing = [i for i in table.ids if i not in by_id]
    if missing:
        raise DataError(f"{words_path}: no transcript for segment '{missing[0]}' ({len(missing)} missing)")
    x, mask, stats = word_features([by_id[i] for i in table.ids], in_glove, vectors, params.seq_len, params.oov)
    stats["transcripts_without_features"] = sorted(set(ids) - set(table.ids))
    if stats["truncated_segments"]:
        log.info("mosi-words: %d of %d transcripts longer than seq_len=%d (%d words cut)",
                 stats["truncated_segments"], len(x), params.seq_len, stats["truncated_tokens"])
    table.features["text"] = x
    table.masks["text"] = mask
    table.utterance_level = False  # text is a sequence now: data.context is refused
    table.extra_info["text"] = stats
    return build_splits(table, params, default_folds=str(bundled_file(MOSI_FOLDS)))
