"""Hyperparameter search: dimensions map [0, 1] onto their ranges, samples are reproducible
from a seed and log-uniform in log space, grids cover the corners, refine narrows around the
best trials, aborted trials are kept and shown, and bad arguments raise clear errors."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from d2lcnn.hparam import (
    Choice,
    IntUniform,
    LogUniform,
    Outcome,
    SearchResults,
    Trial,
    Uniform,
    grid,
    grid_search,
    random_samples,
    random_search,
    refine,
)
from d2lcnn.train import EpochRecord, History, StepRecord

SPACE = {
    "lr": LogUniform(1e-6, 1e-3),
    "reg": LogUniform(1e-5, 1e5),
    "p": Uniform(0.0, 0.5),
    "width": IntUniform(8, 64),
    "opt": Choice(["sgd", "adam"]),
}


def bowl(params):
    """A smooth score, best at lr = 1e-4 and reg = 1e-2 (in log space)."""
    return -((math.log10(params["lr"]) + 4) ** 2) - 0.1 * (math.log10(params["reg"]) + 2) ** 2


# --------------------------------------------------------------------------- sampling


def test_random_samples_are_reproducible_from_the_seed():
    a = random_samples(SPACE, 50, seed=3)
    b = random_samples(SPACE, 50, seed=3)
    c = random_samples(SPACE, 50, seed=4)
    assert a == b and a != c
    assert random_samples(SPACE, 10, seed=3) == a[:10]  # a prefix of a longer search
    rng = np.random.default_rng(3)
    assert random_samples(SPACE, 50, seed=rng) == a


def test_random_search_is_reproducible_from_the_seed():
    r1 = random_search(bowl, SPACE, 30, seed=7)
    r2 = random_search(bowl, SPACE, 30, seed=7)
    assert [(t.index, t.params, t.score) for t in r1] == [(t.index, t.params, t.score) for t in r2]
    assert str(r1) == str(r2)


def test_samples_lie_in_their_ranges_and_have_the_right_types():
    for s in random_samples(SPACE, 500, seed=0):
        assert 1e-6 <= s["lr"] <= 1e-3 and 1e-5 <= s["reg"] <= 1e5
        assert 0.0 <= s["p"] <= 0.5
        assert isinstance(s["width"], int) and 8 <= s["width"] <= 64
        assert s["opt"] in ("sgd", "adam")


def test_log_uniform_is_uniform_in_log10():
    """Kolmogorov-Smirnov: log10 of the samples against U(-6, -3); and one decade in three."""
    lr = np.array([s["lr"] for s in random_samples({"lr": LogUniform(1e-6, 1e-3)}, 4000, 0)])
    assert stats.kstest(np.log10(lr), stats.uniform(-6, 3).cdf).pvalue > 1e-3
    assert np.mean(lr < 1e-5) == pytest.approx(1 / 3, abs=0.03)
    # plain Uniform on the same range almost never goes below 1e-4
    u = np.array([s["lr"] for s in random_samples({"lr": Uniform(1e-6, 1e-3)}, 4000, 0)])
    assert np.mean(u < 1e-4) == pytest.approx((1e-4 - 1e-6) / (1e-3 - 1e-6), abs=0.02)


def test_int_uniform_and_choice_are_equally_likely():
    draws = random_samples({"k": IntUniform(1, 4), "c": Choice(list("abc"))}, 6000, seed=1)
    ks = np.bincount([d["k"] for d in draws], minlength=5)[1:]
    cs = [sum(d["c"] == c for d in draws) for c in "abc"]
    assert stats.chisquare(ks).pvalue > 1e-3 and stats.chisquare(cs).pvalue > 1e-3


@given(
    low=st.floats(-30, 30),
    log_low=st.floats(-12, 6),
    width=st.floats(1e-3, 10),
    u=st.floats(0, 1),
)
def test_from_unit_and_to_unit_are_inverse(low, log_low, width, u):
    for dim in (Uniform(low, low + width), LogUniform(10**log_low, 10 ** (log_low + width))):
        v = dim.from_unit(u)
        assert dim.low <= v <= dim.high
        assert dim.to_unit(v) == pytest.approx(u, abs=1e-9)


def test_log_uniform_never_leaves_its_range_by_rounding():
    # 10 ** log10(low) rounds below low for some floats (both are off by an ulp):
    low = next(x for x in (10 ** (k / 7) for k in range(-84, 42)) if 10.0 ** math.log10(x) < x)
    dim = LogUniform(low, 10 * low)
    assert dim.from_unit(0.0) == low and dim.from_unit(1e-300) >= low
    assert dim.from_unit(1.0) == 10 * low


# --------------------------------------------------------------------------- grid


def test_grid_covers_the_corners_and_has_the_product_size():
    space = {"lr": LogUniform(1e-6, 1e-3), "reg": LogUniform(1e-5, 1e5), "p": Uniform(0, 0.5)}
    points = grid(space, 4)
    assert len(points) == 4**3
    lrs = sorted({p["lr"] for p in points})
    assert lrs[0] == 1e-6 and lrs[-1] == 1e-3
    assert np.allclose(np.log10(lrs), [-6, -5, -4, -3])  # even in log space
    corners = {(p["lr"], p["reg"], p["p"]) for p in points}
    for lr in (1e-6, 1e-3):
        for reg in (1e-5, 1e5):
            for p in (0.0, 0.5):
                assert (lr, reg, p) in corners


def test_grid_with_counts_per_dimension_ints_and_choices():
    points = grid({"w": IntUniform(1, 3), "opt": Choice(["sgd", "adam"]), "p": Uniform(0, 1)},
                  {"w": 10, "opt": 1, "p": 3})
    assert len(points) == 3 * 2 * 3  # 3 distinct ints, every option, 3 values
    assert sorted({p["w"] for p in points}) == [1, 2, 3]
    assert points[0] == {"w": 1, "opt": "sgd", "p": 0.0}  # first name varies slowest
    assert grid({"p": Uniform(0, 1)}, 1) == [{"p": 0.5}]


def test_grid_search_visits_every_point_once():
    seen = []
    results = grid_search(lambda p: seen.append(p) or -abs(p["x"] - 0.3), {"x": Uniform(0, 1)}, 11)
    assert len(seen) == len(results) == 11
    assert results.best.params["x"] == pytest.approx(0.3)


# --------------------------------------------------------------------------- results


def test_results_are_sorted_best_first_in_both_modes():
    space = {"x": Uniform(-1, 1)}
    up = random_search(lambda p: p["x"], space, 20, seed=0)
    down = random_search(lambda p: p["x"], space, 20, seed=0, mode="min")
    xs = sorted(t.params["x"] for t in up)
    assert [t.score for t in up] == xs[::-1] and [t.score for t in down] == xs
    assert up.best.params["x"] == xs[-1] and down.best.params["x"] == xs[0]


def exploding(params):
    if params["reg"] > 1e3:
        return Outcome(0.1, aborted="loss exploded: too much regularization")
    if params["lr"] < 1e-5:
        return math.nan  # a nan score counts as an aborted trial too
    return Outcome(bowl(params), metrics={"epochs": 5})


def test_aborted_trials_are_kept_listed_last_and_shown():
    results = random_search(exploding, SPACE, 40, seed=0, score_name="val_acc")
    assert len(results) == 40 and results.n_trials == 40
    assert results.aborted and results.finished
    assert all(t.finished for t in results[: len(results.finished)])
    assert [t.index for t in results.aborted] == sorted(t.index for t in results.aborted)
    reasons = {t.aborted for t in results.aborted}
    assert reasons == {"loss exploded: too much regularization", "score is nan"}
    assert results.best.metrics == {"epochs": 5}
    lines = str(results).splitlines()
    assert len(lines) == 40
    assert lines[0].startswith("val_acc: ") and "lr: " in lines[0] and "/ 40)" in lines[0]
    assert lines[-1].startswith("aborted") and lines[-1].endswith(results.aborted[-1].aborted)
    assert len(results.table(3).splitlines()) == 3
    assert "40 trials" in repr(results)


def test_table_format_matches_the_slides():
    results = SearchResults(
        [Trial(2, {"lr": 1.405206e-04, "reg": 4.793564e-01, "k": 3, "opt": "adam"}, 0.412)],
        {"lr": LogUniform(1e-6, 1e-3), "reg": LogUniform(1e-5, 1e5),
         "k": IntUniform(1, 5), "opt": Choice(["sgd", "adam"])},
        score_name="val_acc",
    )
    line = "val_acc: 0.4120  lr: 1.405e-04  reg: 4.794e-01  k: 3  opt: adam  (3 / 1)"
    assert str(results) == line


def test_outcome_from_history():
    steps = [StepRecord(1, 1, 2.3, 0.1, 1.0, 0.0), StepRecord(2, 1, 9.0, 0.1, 1.0, 0.0)]
    exploded = History(steps, [], "loss exploded: 9 > 3 x the initial loss 2.3 at step 2")
    out = Outcome.from_history(exploded)
    assert math.isnan(out.score) and out.aborted.startswith("loss exploded")
    assert out.metrics == {"epochs": 0, "steps": 2}
    epochs = [EpochRecord(1, 2.0, 0.5, 1.9, 0.6, 0.1, 0.0),
              EpochRecord(2, 1.0, 0.7, 1.1, 0.8, 0.1, 0.0)]
    assert Outcome.from_history(History(steps, epochs)).score == 0.8
    assert Outcome.from_history(History(steps, epochs)).aborted is None
    stopped = Outcome.from_history(History(steps, epochs, "early stopping: ..."), "val_loss")
    assert stopped.aborted is None and stopped.score == 1.1


def test_all_aborted_has_no_best():
    results = random_search(lambda p: Outcome(math.nan, "boom"), SPACE, 3, seed=0)
    with pytest.raises(ValueError, match="all 3 trials were aborted"):
        _ = results.best
    with pytest.raises(ValueError, match="aborted; nothing to refine"):
        refine(SPACE, results)


# --------------------------------------------------------------------------- refine


def test_refine_narrows_every_range_around_the_best_trials():
    results = random_search(bowl, SPACE, 60, seed=0)
    finer = refine(SPACE, results, top_k=5, margin=0.1)
    assert set(finer) == set(SPACE)
    best = results.finished[:5]
    for name in ("lr", "reg", "p", "width"):
        old, new = SPACE[name], finer[name]
        assert type(new) is type(old)
        assert old.low <= new.low and new.high <= old.high  # clipped to the old range
        if name in ("lr", "reg"):  # the score depends on these: their ranges shrink
            assert (new.low, new.high) != (old.low, old.high)
        assert all(new.low <= t.params[name] <= new.high for t in best)  # keeps the best
    assert finer["lr"].low <= 1e-4 <= finer["lr"].high  # the optimum is inside
    # in decades: the span of the best five plus 10% of the old 3 decades on each side
    span = np.ptp([math.log10(t.params["lr"]) for t in best])
    width = math.log10(finer["lr"].high) - math.log10(finer["lr"].low)
    assert width <= span + 2 * 0.3 + 1e-9
    assert set(finer["opt"].options) == {t.params["opt"] for t in best}


def test_refine_then_search_again_improves():
    coarse = random_search(bowl, SPACE, 30, seed=0)
    fine = random_search(bowl, refine(SPACE, coarse, top_k=3), 30, seed=1)
    assert fine.best.score >= coarse.best.score - 1e-3
    assert np.median([t.score for t in fine]) > np.median([t.score for t in coarse])


def test_narrow_edge_cases():
    assert IntUniform(1, 10).narrow([4, 4], margin=0) == IntUniform(4, 5)
    assert IntUniform(1, 10).narrow([10], margin=0) == IntUniform(9, 10)
    assert Choice(["a", "b", "c"]).narrow(["c", "a"]) == Choice(["a", "c"])
    assert LogUniform(1e-6, 1e-3).narrow([1e-4], margin=1.0) == LogUniform(1e-6, 1e-3)
    with pytest.raises(ValueError, match="margin > 0"):
        LogUniform(1e-6, 1e-3).narrow([1e-4], margin=0)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: LogUniform(0, 1), "LogUniform: low must be > 0, got 0"),
        (lambda: LogUniform(1e-3, 1e-6), "need low < high"),
        (lambda: Uniform(1, 1), "Uniform: need low < high, got low=1, high=1"),
        (lambda: Uniform(0, math.inf), "high must be finite"),
        (lambda: IntUniform(3, 2), "IntUniform: need low < high"),
        (lambda: Choice([]), "Choice: options must be a non-empty list"),
        (lambda: Choice([1, 1]), "must be distinct"),
        (lambda: random_samples(SPACE, 0, 0), "random_samples: n must be an int >= 1, got 0"),
        (lambda: random_samples(SPACE, 2, -1), "seed must be an int >= 0, got -1"),
        (lambda: random_samples({}, 2, 0), "space must be a non-empty dict"),
        (lambda: grid(SPACE, {"lr": 2}), "n must have one entry per dimension"),
        (lambda: random_search(bowl, SPACE, 2, mode="best"), "mode must be 'max' or 'min'"),
        (lambda: refine(SPACE, random_search(bowl, SPACE, 3), top_k=0), "top_k must be an int"),
        (lambda: refine(SPACE, random_search(bowl, SPACE, 3), margin=-1), "margin must be >= 0"),
        (lambda: refine({"x": Uniform(0, 1)}, random_search(bowl, SPACE, 3)), "names"),
    ],
)
def test_bad_arguments_raise_value_errors(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        make()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Uniform("0", 1), "Uniform: low must be a real number, got '0'"),
        (lambda: random_samples({"lr": (1e-6, 1e-3)}, 2, 0), r"space\['lr'\] must be a Dim"),
        (lambda: random_samples(SPACE, 2.0, 0), "n must be an int, got 2.0"),
        (lambda: random_search("f", SPACE, 2), "objective must be a function"),
        (lambda: random_search(lambda p: "good", SPACE, 2), "must return a number or an Outcome"),
        (lambda: refine(SPACE, [1, 2]), "results must be SearchResults"),
    ],
)
def test_bad_types_raise_type_errors(make, message):
    with pytest.raises(TypeError, match=message):
        make()
