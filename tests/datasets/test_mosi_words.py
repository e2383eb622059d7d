"""mosi-words: transcripts -> label segments (exact, one to one), tokens, GloVe lookup, OOV modes,
masks and truncation, the bundled file against a rebuild from ../shared, and the presets."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from modalfuse import plugins
from modalfuse.config import entry_params, validate_entry
from modalfuse.datasets.folds import bundled_file
from modalfuse.datasets.mosi_words import (
    MOSI_WORDS, build_bundle, load_words, map_to_segments, read_transcripts, tokenize, word_features,
)
from modalfuse.errors import ConfigError, DataError
from modalfuse.registry import DATASETS


def build(**kw):
    plugins.load()
    section = validate_entry("data", {"name": "mosi-words", **kw}, DATASETS)
    return DATASETS.get("mosi-words")(entry_params(section, DATASETS))


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows(rows)
    return path


# ----------------------------------------------------------------------------- tokens and mapping


def test_tokenize_splits_apostrophe_less_contractions_as_glove():
    assert tokenize("I DIDNT LIKE IT") == ["i", "did", "n't", "like", "it"]
    assert tokenize("IM SURE THATS  CANT") == ["i", "'m", "sure", "that", "'s", "ca", "n't"]
    # ambiguous forms stay whole: "ill", "well", "its" are words
    assert tokenize("WELL ITS ILL") == ["well", "its", "ill"]


def test_read_transcripts_errors_name_line_and_id(tmp_path):
    ok = ["vidA_1", "GOOD MOVIE", "5", "1"]
    assert read_transcripts(write_csv(tmp_path / "a.csv", [ok])) == {"vidA_1": ("GOOD MOVIE", 1)}
    cases = {
        "dup": ([ok, ok], "line 2|:2: id 'vidA_1' appears twice"),
        "fields": ([["vidA_1", "GOOD", "1"]], "expected 4 fields"),
        "id": ([["vidA_0", "GOOD", "5", "1"]], "id 'vidA_0' is not '<video>_<k>'"),
        "binary": ([["vidA_2", "GOOD", "5", "x"]], "id 'vidA_2': binary label must be 0 or 1"),
        "empty": ([["vidA_3", "  ", "5", "1"]], "id 'vidA_3': empty transcript"),
    }
    for name, (rows, message) in cases.items():
        with pytest.raises(DataError, match=message):
            read_transcripts(write_csv(tmp_path / f"{name}.csv", rows))


def test_map_to_segments_is_one_to_one_and_names_the_bad_id():
    labels = {"vidA": np.array([1.0, -0.5]), "vidB": np.array([0.0])}
    tr = {"vidA_1": ("GOOD", 1), "vidA_2": ("BAD", 0), "vidB_1": ("OK", 1)}
    assert map_to_segments(tr, labels) == {"vidA[0]": "GOOD", "vidA[1]": "BAD", "vidB[0]": "OK"}
    with pytest.raises(DataError, match="labelled segments have no transcript, e.g. id 'vidA_2'"):
        map_to_segments({k: v for k, v in tr.items() if k != "vidA_2"}, labels)
    with pytest.raises(DataError, match="id 'vidA_3': video 'vidA' has 2 labelled segments"):
        map_to_segments({**tr, "vidA_3": ("X", 1)}, labels)
    with pytest.raises(DataError, match="id 'vidC_1': video 'vidC' is not in the label file"):
        map_to_segments({**tr, "vidC_1": ("X", 1)}, labels)
    with pytest.raises(DataError, match="id 'vidA_2': binary label 1 disagrees"):
        map_to_segments({**tr, "vidA_2": ("BAD", 1)}, labels)


def test_word_features_oov_modes_masks_and_truncation():
    in_glove = np.array([True, False, True])
    vectors = np.zeros((3, 300), np.float32)
    vectors[0], vectors[2] = 1.0, 2.0
    seqs = [np.array([0, 1, 2, 0]), np.array([1]), np.array([2, 2])]
    x, mask, st = word_features(seqs, in_glove, vectors, seq_len=3, oov="flag")
    assert x.shape == (3, 3, 301) and mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert x[0, :, 300].tolist() == [0, 1, 0] and x[0, :, 0].tolist() == [1, 0, 2]  # OOV: zero + flag
    assert st["truncated_segments"] == 1 and st["truncated_tokens"] == 1 and st["oov_tokens"] == 2
    x, mask, st = word_features(seqs, in_glove, vectors, seq_len=3, oov="drop")
    assert x.shape == (3, 3, 300) and x[0, :, 0].tolist() == [1, 2, 1] and st["truncated_segments"] == 0
    assert mask[1].tolist() == [True, False, False] and not x[1].any()  # no known word: one zero step
    assert st["segments_without_known_word"] == 1
    x, _, _ = word_features(seqs, in_glove, vectors, seq_len=5, oov="zero")
    assert x.shape == (3, 5, 300) and x[0, 1].sum() == 0


# ----------------------------------------------------------------------------- real data


def test_rebuild_from_shared_matches_the_bundle(shared_data, tmp_path):
    src = shared_data / "mosi"
    out = tmp_path / MOSI_WORDS
    stats = build_bundle(src / "transcripts.csv", src / "CMU_MOSI_Opinion_Labels.csd", src / "glove840b_subset.npz", out)
    assert stats["segments"] == 2199  # every labelled segment has exactly one transcript
    ids, seqs, vocab, in_glove, vectors = load_words(out)
    b_ids, b_seqs, b_vocab, b_in, b_vec = load_words(bundled_file(MOSI_WORDS))
    assert ids == b_ids and vocab == b_vocab and np.array_equal(in_glove, b_in)
    assert all(np.array_equal(a, b) for a, b in zip(seqs, b_seqs))
    np.testing.assert_allclose(vectors, b_vec, atol=1e-3)  # float16 storage
    # hand-checked rows of transcripts.csv: "<video>_<k>" is row k-1 of that video in the label file
    text = dict(zip(ids, (" ".join(vocab[t] for t in s) for s in seqs)))
    assert text["03bSnISJMiM[0]"] == "anyhow it was really good"  # 03bSnISJMiM_1
    assert text["03bSnISJMiM[9]"] == "there is sad part"  # 03bSnISJMiM_10
    assert text["2WGyTLYerpo[43]"] == "she 's beautiful"  # 2WGyTLYerpo_44: the zero-length segment
    glove = np.load(src / "glove840b_subset.npz")
    g = dict(zip(map(str, glove["words"]), glove["vectors"]))
    assert "awesome" not in g and not in_glove[vocab.index("awesome")]
    np.testing.assert_allclose(vectors[vocab.index("good")], g["good"], atol=1e-3)


def test_bundled_dataset_segments_labels_and_words():
    b = build(normalize=False, oov="flag")
    assert {m: (s.dim, s.seq_len) for m, s in b.modalities.items()} == {
        "audio": (73, None), "text": (301, 50), "video": (100, None)}
    assert b.info["segments"] == {"train": 1283, "valid": 164, "test": 751}  # as mosi: 2198 segments
    assert b.info["text"]["transcripts_without_features"] == ["2WGyTLYerpo[43]"]
    assert build().modalities["text"].dim == 300  # default oov: drop
    mosi = DATASETS.get("mosi")(entry_params(validate_entry("data", {"name": "mosi", "normalize": False}, DATASETS),
                                             DATASETS))
    for split in ("train", "valid", "test"):  # same segments, labels, audio and video as `mosi`
        a, m = getattr(b, split), getattr(mosi, split)
        assert a.ids == m.ids and np.array_equal(a.labels, m.labels)
        assert np.array_equal(a.features["audio"], m.features["audio"])
    ids, seqs, vocab, in_glove, vectors = load_words(bundled_file(MOSI_WORDS))
    words = dict(zip(ids, seqs))
    for split in (b.train, b.test):
        for i in (0, 7, len(split) - 1):
            toks = words[split.ids[i]]
            n = min(len(toks), 50)
            assert split.masks["text"][i].sum() == n and split.masks["text"][i, :n].all()
            np.testing.assert_array_equal(split.features["text"][i, :n, :300], vectors[toks[:n]])
            np.testing.assert_array_equal(split.features["text"][i, :n, 300], ~in_glove[toks[:n]])
            assert not split.features["text"][i, n:].any()  # padding is zero


def test_truncation_statistics_and_context_refused():
    b = build(seq_len=8, oov="zero", label_scheme="2class_non0")
    _, seqs, _, _, _ = load_words(bundled_file(MOSI_WORDS))
    kept_ids = set(b.train.ids) | set(b.valid.ids) | set(b.test.ids)
    st = b.info["text"]
    assert st["seq_len"] == 8 and b.modalities["text"] == type(b.modalities["text"])(300, 8)
    assert st["truncated_segments"] > 100 and st["truncated_tokens"] > st["truncated_segments"]
    assert len(kept_ids) == 2198 - b.info["dropped_by_label_scheme"]
    np.testing.assert_allclose(b.train.features["text"][b.train.masks["text"]].mean(0), 0, atol=1e-3)  # z-scored
    assert len(seqs) == 2199
    with pytest.raises(ConfigError, match="context"):
        build(context=1)


def test_bad_bundle_is_one_error(tmp_path):
    bad = tmp_path / "words.npz"
    np.savez(bad, ids=np.array(["a[0]"]))
    with pytest.raises(DataError, match="not a mosi-words bundle"):
        build(words=str(bad))


# ----------------------------------------------------------------------------- presets

from modalfuse.training.run import PRESET_DIR  # noqa: E402

WORD_PRESETS = sorted(p.stem for p in (PRESET_DIR / "mosi-words").glob("*.yaml"))


def test_every_word_preset_exists_with_its_command():
    assert set(WORD_PRESETS) >= {"text", "audio", "video", "late", "early", "attention", "early-video"}
    for name in WORD_PRESETS:
        first = (PRESET_DIR / "mosi-words" / f"{name}.yaml").read_text().splitlines()[0]
        assert first == f"# modalfuse train mosi-words/{name}"
    compare = (PRESET_DIR / "compare" / "mosi-words.yaml").read_text()
    assert compare.splitlines()[0] == "# modalfuse compare mosi-words"
    assert all(f"mosi-words/{n}" in compare for n in ("text", "audio", "video", "late", "early", "attention",
                                                      "early-video"))


@pytest.mark.parametrize("name", WORD_PRESETS)
def test_word_presets_build_and_select_on_validation(name):
    import torch

    from modalfuse.config import build_config, load_yaml
    from modalfuse.datasets.base import ModalitySpec, TaskSpec
    from modalfuse.models import build_model

    cfg = build_config(load_yaml(PRESET_DIR / "mosi-words" / f"{name}.yaml"))
    assert cfg.data["name"] == "mosi-words"
    if "video" in cfg.model["modalities"]:  # Poria's video vectors were fit to the train videos
        assert cfg.train.select == "last" and cfg.train.patience is None
    else:  # GloVe and openSMILE were not: validation selects the epoch and stops early
        assert cfg.train.select == "best" and cfg.train.patience
    mods = {"text": ModalitySpec(301, 50), "audio": ModalitySpec(73, None), "video": ModalitySpec(100, None)}
    model = build_model(cfg.model, mods, TaskSpec("multiclass", 3))
    mask = torch.zeros(2, 50, dtype=torch.bool)
    mask[:, :7] = True
    out = model({"text": torch.randn(2, 50, 301), "audio": torch.randn(2, 73), "video": torch.randn(2, 100)},
                {"text": mask})
    assert out["logits"].shape == (2, 3) and torch.isfinite(out["logits"]).all()


@pytest.mark.slow
def test_attention_preset_trains_on_words(tmp_path):
    import json

    from modalfuse.training.run import train

    folder = tmp_path / "run"
    train("mosi-words/attention", run_dir=folder, quiet=True,
          overrides=["train.epochs=1", "train.progress=none", "data.seq_len=12", "model.encoder.d_model=8",
                     "model.encoder.heads=2", "model.encoder.ff_dim=8", "model.fusion.d_model=8",
                     "model.fusion.heads=2", "model.head.hidden_dims=[8]"])
    metrics = json.loads((folder / "metrics.json").read_text())
    assert 0 <= metrics["test"]["accuracy"] <= 1
    info = json.loads((folder / "data.json").read_text())["info"]
    assert info["text"]["seq_len"] == 12 and info["text"]["truncated_segments"] > 0
