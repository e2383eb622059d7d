"""The report's paired comparisons: known cases, calibration where seeds share hard examples, Holm
applied to verdicts, filtered metrics under resampling, no p-value floor, compare_predictions."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from modalfuse.metrics import compute_metrics
from modalfuse.stats import Scores, compare_predictions, difference, metric_functions, model_scores
from modalfuse.stats.difference import example_weights, scores, weight_blocks
from modalfuse.stats.verdicts import family


def _classifier_seeds(rng, truth, skill, seeds, sd=0.02, shared=None, u=None) -> list[np.ndarray]:
    """Per-seed class ids of a 3-class model whose seed s is right with probability q_s = skill + N(0, sd);
    on ``shared`` examples every run is right exactly when the shared difficulty ``u < q_s``."""
    out = []
    for _ in range(seeds):
        q = skill + rng.normal(0, sd)
        right = rng.random(len(truth)) < q
        if shared is not None:
            right = np.where(shared, u < q, right)
        out.append(np.where(right, truth, (truth + rng.integers(1, 3, len(truth))) % 3))
    return out


def _acc_fns(truth, preds) -> list[dict]:
    return [{"accuracy": metric_functions("multiclass", {"scores": np.eye(3)[p], "labels": truth})["accuracy"]}
            for p in preds]


def test_the_same_runs_under_two_names_are_indistinguishable_with_p_1() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 400)
    same = _classifier_seeds(rng, truth, 0.7, 3)
    rows = compare_predictions({"a": same, "b": same}, truth, metric="accuracy")
    assert len(rows) == 1 and rows[0]["delta"] == 0 and rows[0]["p_value"] == 1.0
    assert rows[0]["verdict"] == "indistinguishable" and rows[0]["ci_low"] < 0 < rows[0]["ci_high"]
    assert rows[0]["mde"] > 0  # an indistinguishable carries what it could have found


def test_planted_differences_have_the_right_sign_and_no_p_value_floor() -> None:
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 3, 600)
    preds = {"ref": _classifier_seeds(rng, truth, 0.60, 3), "good": _classifier_seeds(rng, truth, 0.80, 3),
             "bad": _classifier_seeds(rng, truth, 0.45, 3)}
    rows = {(r["model"], r["reference"]): r for r in compare_predictions(preds, truth, metric="accuracy")}
    good, bad = rows["good", "ref"], rows["bad", "ref"]
    assert good["verdict"] == "better" and 0.1 < good["ci_low"] and good["p_adjusted"] >= good["p_value"]
    assert bad["verdict"] == "worse" and bad["ci_high"] < 0
    assert good["p_value"] < 2 / 2001  # the old bootstrap never went below 2 / (B + 1) with B = 2000
    # regression: lower MAE is better
    y = rng.normal(size=400)
    reg = {"blurry": [y + rng.normal(0, 1.0, 400) for _ in range(3)], "sharp": [y + rng.normal(0, 0.5, 400) for _ in range(3)]}
    row = compare_predictions(reg, y, metric="mae")[0]
    assert row["model"] == "sharp" and row["delta"] < 0 and row["verdict"] == "better"


def test_difference_exposes_estimate_interval_p_df_for_one_sided_tests() -> None:
    a = Scores(np.array([0.71, 0.73, 0.72]), np.zeros((50, 3)))
    b = Scores(np.array([0.70, 0.69, 0.71]), np.zeros((50, 3)))
    d = difference(a, b)
    assert d.estimate == pytest.approx(0.02)
    # no test-set variance: the classical Welch t-test on the per-seed values
    assert d.se == pytest.approx(math.sqrt(0.0001 / 3 + 0.0001 / 3)) and d.df == pytest.approx(4.0)
    lo, hi = d.interval(0.90)
    assert lo < d.estimate < hi and d.interval(0.95)[0] < lo
    assert d.p_value(alternative="greater") == pytest.approx(d.p_value() / 2)
    assert d.p_value(null=0.05, alternative="less") < 0.05 < d.p_value(null=0.01, alternative="less")


@pytest.mark.slow
def test_coverage_holds_at_3_seeds_when_seeds_share_hard_examples() -> None:
    """The regime where resampling 3 seeds with replacement covered only 86-90 %: identical skill,
    80 % of the examples share their difficulty, per-seed SD 0.03."""
    rng = np.random.default_rng(3)
    sims, n, covered, rejected = 200, 650, 0, 0
    for _ in range(sims):
        truth = rng.integers(0, 3, n)
        shared, u = rng.random(n) < 0.8, rng.random(n)
        fns = {k: _acc_fns(truth, _classifier_seeds(rng, truth, 0.7, 3, 0.03, shared, u)) for k in "ab"}
        W = example_weights(n, 200, rng)
        d = difference(scores(fns["a"], W)["accuracy"], scores(fns["b"], W)["accuracy"])
        lo, hi = d.interval(0.95)
        covered += lo <= 0 <= hi
        rejected += d.p_value() < 0.05
    # 200 draws at a true 0.95: the binomial 99.9 % range reaches down to about 0.90
    assert covered / sims >= 0.90 and rejected / sims <= 0.10, (covered, rejected)


def test_verdicts_use_the_holm_adjusted_p_value() -> None:
    """Three comparisons; two have a raw p of 0.038, which Holm lifts to 0.075: not a verdict."""
    def sc(center: float, spread: float) -> Scores:
        return Scores(center + np.array([-spread, 0.0, spread]), np.zeros((100, 3)))

    models = {"ref": sc(0.70, 0.008), "a": sc(0.72, 0.008), "b": sc(0.74, 0.008)}
    models = {k: {"accuracy": v} for k, v in models.items()}
    rows = family(models, "ref", "accuracy", role="primary", examples=100)
    assert len(rows) == 3 and any(r.p_value < 0.05 for r in rows)
    for r in rows:
        assert (r.verdict != "indistinguishable") == (r.p_adjusted < 0.05), r
    assert any(r.p_value < 0.05 <= r.p_adjusted for r in rows)


def test_filtered_metrics_drop_zero_labels_under_resampling() -> None:
    """acc2_non0 / f1_non0 leave out examples with a true score of exactly 0: the test data has zeros."""
    rng = np.random.default_rng(7)
    y = np.round(rng.normal(0, 1.5, 120) * 2) / 2  # steps of 0.5: about 1 in 8 labels is exactly 0
    p = y + rng.normal(0, 1.0, 120)
    assert (y == 0).sum() >= 5
    fns = metric_functions("regression", {"scores": p, "labels": y})
    for w in rng.integers(0, 3, size=(5, 120)):
        rows = np.repeat(np.arange(120), w)
        want = compute_metrics("regression", p[rows], y[rows], num_classes=1)
        for name in ("acc2_non0", "f1_non0", "acc2_has0", "f1_has0"):
            assert fns[name](w[None].astype(float))[0] == pytest.approx(want[name], abs=1e-9), name


def test_model_scores_share_the_example_resamples() -> None:
    rng = np.random.default_rng(8)
    truth = rng.integers(0, 3, 100)
    fns = _acc_fns(truth, _classifier_seeds(rng, truth, 0.7, 2))
    got = model_scores({"a": fns, "b": fns}, 100, resamples=30)
    np.testing.assert_array_equal(got["a"]["accuracy"].replicates, got["b"]["accuracy"].replicates)
    assert got["a"]["accuracy"].replicates.shape == (30, 2)


def test_compare_predictions_rejects_a_misaligned_seed_in_one_line() -> None:
    from modalfuse.errors import UserError

    y = np.array([0, 1, 2, 1])
    with pytest.raises(UserError, match=r"predictions\['b'\]\[1\]: 3 predictions, expected 4"):
        compare_predictions({"a": [y], "b": [y, y[:3]]}, y, metric="accuracy")
    with pytest.raises(UserError, match="metric 'nope': not a metric with an interval; known: accuracy"):
        compare_predictions({"a": [y]}, y, metric="nope")


def test_the_compare_predictions_example_in_docs_api_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    cell = next(c for c in re.findall(r"^```python\n(.*?)^```", page, flags=re.S | re.M) if "compare_predictions" in c)
    scope: dict = {}
    exec(compile(cell, "docs/api.md compare_predictions", "exec"), scope)
    (row,) = scope["rows"]
    assert row["model"] == "fusion" and row["reference"] == "baseline" and row["verdict"] in ("better", "indistinguishable")
    assert row["ci_low"] < row["delta"] < row["ci_high"] and "fusion vs baseline" in capsys.readouterr().out


@pytest.mark.slow
def test_second_opinion_adds_deepsig_almost_stochastic_order() -> None:
    pytest.importorskip("deepsig")
    rng = np.random.default_rng(9)
    truth = rng.integers(0, 3, 300)
    preds = {"ref": _classifier_seeds(rng, truth, 0.55, 3, 0.01), "good": _classifier_seeds(rng, truth, 0.85, 3, 0.01)}
    (row,) = compare_predictions(preds, truth, metric="accuracy", second_opinion=True)
    assert row["verdict"] == "better" and row["aso"] < 0.5  # both say: good is better than ref


def test_weight_blocks_are_the_rows_of_one_big_draw_for_any_block_size() -> None:
    n, b = 257, 23
    big = np.random.default_rng([4, 0]).integers(0, n, size=(b, n))  # one [B, n] draw
    want = np.stack([np.bincount(r, minlength=n) for r in big]).astype(np.float32)
    np.testing.assert_array_equal(example_weights(n, b, np.random.default_rng([4, 0])), want)
    for rows in (1, 5, b, 100):
        blocks = list(weight_blocks(n, b, np.random.default_rng([4, 0]), rows))
        assert max(len(w) for w in blocks) == min(rows, b) and all(w.shape[1] == n for w in blocks)
        np.testing.assert_array_equal(np.concatenate(blocks), want)


def test_report_scores_never_see_more_than_one_block_of_weights(monkeypatch) -> None:
    """model_scores feeds every metric blocks of at most BLOCK_ENTRIES weights, and the answer is the
    one from the whole [B, N] matrix: bit for bit where a metric's sums are exact (counts, GAP),
    to rounding where BLAS sums non-integer values (its order depends on the block's shape)."""
    from modalfuse.stats.predictions import compact

    diff = sys.modules["modalfuse.stats.difference"]  # the package exports a function of that name

    rng = np.random.default_rng(8)
    n, b = 300, 40
    monkeypatch.setattr(diff, "BLOCK_ENTRIES", 7 * n)  # 7 replicates per block
    labels = (rng.random((n, 30)) < 0.08).astype(np.float32)
    y = rng.normal(size=n)
    per_model = {
        "ml": [metric_functions("multilabel", compact("multilabel", {"scores": rng.random((n, 30)).astype(np.float32),
                                                                     "labels": labels, "ids": np.arange(n).astype(str)}))
               for _ in range(2)],
        "reg": [metric_functions("regression", {"scores": y + rng.normal(0, 1, n), "labels": y}) for _ in range(2)],
    }
    seen = []
    watched = {m: [{k: (lambda W, f=f: seen.append(W.shape) or f(W)) for k, f in fns.items()} for fns in seeds]
               for m, seeds in per_model.items()}
    got = model_scores(watched, n, resamples=b, seed=5)
    assert {rows for rows, _ in seen if rows > 1} == {7, 40 % 7} and all(cols == n for _, cols in seen)
    W = example_weights(n, b, np.random.default_rng([5, 0]))
    for model, seeds in per_model.items():
        whole = scores(seeds, W)
        for metric, s in whole.items():
            np.testing.assert_array_equal(got[model][metric].per_seed, s.per_seed)
            if metric in ("gap", "hit_at_1", "f1_micro", "acc2_has0", "acc5", "acc7", "f1_has0"):
                np.testing.assert_array_equal(got[model][metric].replicates, s.replicates, err_msg=metric)
            else:
                np.testing.assert_allclose(got[model][metric].replicates, s.replicates, rtol=1e-13, err_msg=metric)
