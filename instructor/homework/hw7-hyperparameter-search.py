# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Homework 7: Random search with a budget
#
# **Follows:** [chapter 4, Optimizers, learning-rate schedules and hyperparameter
# search](../../04-optimization.ipynb)
# **Estimated time:** 2–3 hours (a first draft, not yet timed on students: the reference
# solution is 37 lines, at about 3 minutes a line for a first encounter, plus about 20
# minutes for the written answer)
#
# **Learning goals.** After this assignment you can
#
# - sample a scale parameter (a learning rate, a weight decay) log-uniformly, and check a
#   sampler statistically;
# - write a random-search driver that respects a budget of trials and reports the best one;
# - narrow a search coarse to fine, in the right scale for each hyperparameter;
# - explain why random search finds the important hyperparameter's good values where a grid
#   of the same budget does not.
#
# | question | what you do | points | difficulty |
# | --- | --- | --- | --- |
# | 1 | `log_uniform`: a log-uniform sampler | 4 | guided |
# | 2 | `random_search`: the driver, graded on the score it reaches | 6 | standard |
# | 3 | `refine_space`: coarse to fine | 6 | challenge |
# | 4 | `coarse_to_fine`: two or more stages within one budget | 4 | standard |
# | 5 | written: random search against grid search | 4 | standard |
#
# **Rules.** Use NumPy only: the package's search module (`d2lcnn.hparam`), `torch`,
# `scipy` and scikit-learn are blocked when your notebook is graded. Write your code where
# it says `# YOUR CODE HERE`; do not rename the functions or change their arguments. Run
# `check("qN")` after each answer: it runs the public tests. The grade also uses hidden
# tests, with objectives whose best values you do not know. Question 5 is answered in words
# and graded by hand. When you are done, save the notebook and run `submit()`.
#
# **The objective.** Training a network for every trial would make this homework slow, so
# the searches here run on a *synthetic validation score*: a cheap, deterministic function
# of the hyperparameters shaped like a real one. It is highest (about 1) at one learning
# rate, falls off within a decade or so on either side, and barely depends on the other
# hyperparameters, as in the chapter's searches. A search *maximizes* it.

# %%
import numpy as np

# %% tags=["setup"]
from d2lcnn.grading import Checker

grader = Checker("hw7-hyperparameter-search", globals())
check, submit = grader.check, grader.submit


# %% [markdown]
# A *space* maps each hyperparameter's name to `(low, high, scale)`, the scale being
# `"log"` (sample $\log_{10}$ of the value uniformly) or `"linear"` (sample the value
# uniformly). A *configuration* maps each name to one value. The cell below makes an
# objective like the graders' (the optimum `best_lr` is yours to change; the graders'
# objectives hide theirs) and counts its calls.

# %%
SPACE = {"lr": (1e-6, 1.0, "log"), "weight_decay": (1e-6, 1e-2, "log"),
         "momentum": (0.0, 0.99, "linear")}


def make_objective(best_lr=3e-3, width=0.6):
    """A synthetic validation score of a configuration, and a list that counts the calls."""
    calls = []

    def objective(config):
        calls.append(dict(config))
        gap = np.log10(config["lr"]) - np.log10(best_lr)  # in decades
        score = np.exp(-0.5 * (gap / width) ** 2)
        score -= 0.01 * abs(np.log10(config["weight_decay"]) + 4) / 2  # barely matters
        score -= 0.02 * abs(config["momentum"] - 0.9)  # barely matters
        return float(score)

    return objective, calls


# %% [markdown]
# ## Question 1 (4 points, guided): log-uniform sampling
#
# A learning rate of $10^{-5}$ and one of $10^{-4}$ are as different as $10^{-2}$ and
# $10^{-1}$: what matters is the ratio, so a search should spend as many trials in each
# decade. Sampling uniformly on $[10^{-6}, 1]$ does not: 90% of the draws land above 0.1.
# Write `log_uniform(low, high, size, rng)`: `size` independent draws whose base-10
# logarithms are uniform on $[\log_{10} \text{low}, \log_{10} \text{high})$, as a float
# array of shape `(size,)`. Raise `ValueError` unless $0 < \text{low} < \text{high}$. The
# tests draw many samples and compare the deciles of their logarithms with a uniform
# distribution's.

# %% tags=["answer", "q1"]
def log_uniform(low, high, size, rng):
    """``size`` log-uniform draws on ``[low, high)``."""
    ### BEGIN SOLUTION
    if not 0 < low < high:
        raise ValueError(f"log_uniform: need 0 < low < high, got low={low}, high={high}")
    return 10.0 ** rng.uniform(np.log10(low), np.log10(high), size=size)
    ### END SOLUTION


# %% tags=["check", "q1"]
check("q1")

# %% [markdown]
# ## Question 2 (6 points, standard): random search with a budget
#
# First write `sample_config(space, rng)`, which draws one configuration: each
# hyperparameter independently in its own scale (`log_uniform` for `"log"`, `rng.uniform`
# for `"linear"`; a plain `float` per name). Then write
# `random_search(objective, space, budget, rng)`: draw `budget` configurations, call
# `objective(config)` exactly once per configuration (every call costs a training run:
# never more than `budget`), and return `(best_config, best_score, history)`, where
# `history` is the list of `(config, score)` pairs in the order they were tried, and
# `best_config`, `best_score` is the pair with the highest score. The hidden tests check the
# budget, the distribution of the configurations the objective receives, and the best score
# your search reaches on five objectives with hidden optima: with a budget of 100, at least
# 0.8 on each (the reference reaches it on every seed; a search that samples the learning
# rate uniformly almost never does).

# %% tags=["answer", "q2"]
def sample_config(space, rng):
    """One configuration drawn from ``space``."""
    ### BEGIN SOLUTION
    config = {}
    for name, (low, high, scale) in space.items():
        if scale == "log":
            config[name] = float(log_uniform(low, high, 1, rng)[0])
        elif scale == "linear":
            config[name] = float(rng.uniform(low, high))
        else:
            raise ValueError(f"sample_config: unknown scale {scale!r} for {name!r}")
    return config
    ### END SOLUTION


def random_search(objective, space, budget, rng):
    """``best_config, best_score, history`` after ``budget`` random trials."""
    ### BEGIN SOLUTION
    history = []
    for _ in range(budget):
        config = sample_config(space, rng)
        history.append((config, objective(config)))
    best_config, best_score = max(history, key=lambda pair: pair[1])
    return best_config, best_score, history
    ### END SOLUTION


# %% tags=["check", "q2"]
check("q2")

# %% [markdown]
# ## Question 3 (6 points, challenge): coarse to fine
#
# After a coarse search, narrow the space around the best trials and search again. Write
# `refine_space(history, space, *, top_k=5, margin=0.25)`, which returns a new space with
# the same names and scales:
#
# 1. take the `top_k` trials of `history` with the highest scores (all of them if there are
#    fewer);
# 2. for each hyperparameter, the new range spans the smallest to the largest value among
#    them, widened on each side by `margin` times that span: **in $\log_{10}$ for a `"log"`
#    hyperparameter** (a learning rate's range is widened by a fraction of its decades),
#    linearly for a `"linear"` one;
# 3. clip the new range to the old one, `(low, high)`.
#
# Return the bounds as plain floats, `{name: (new_low, new_high, scale)}`.

# %% tags=["answer", "q3"]
def refine_space(history, space, *, top_k=5, margin=0.25):
    """A narrower space around the ``top_k`` best configurations of ``history``."""
    ### BEGIN SOLUTION
    best = sorted(history, key=lambda pair: pair[1], reverse=True)[:top_k]
    new = {}
    for name, (low, high, scale) in space.items():
        values = np.array([config[name] for config, _ in best], dtype=np.float64)
        to, back = (np.log10, lambda v: 10.0**v) if scale == "log" else (float, float)
        lo, hi = to(values.min()), to(values.max())
        pad = margin * (hi - lo)
        new_low = max(float(back(lo - pad)), float(low))
        new_high = min(float(back(hi + pad)), float(high))
        new[name] = (new_low, new_high, scale)
    return new
    ### END SOLUTION


# %% tags=["check", "q3"]
check("q3")

# %% [markdown]
# ## Question 4 (4 points, standard): coarse to fine within one budget
#
# Write `coarse_to_fine(objective, space, budgets, rng, *, top_k=5, margin=0.25)`: a
# `random_search` with `budgets[0]` trials on `space`, then, for each later budget, a
# `random_search` with that many trials on `refine_space` of *everything tried so far*.
# Return `(best_config, best_score, history)` over all the stages, `history` in the order
# the trials were made; the objective is called exactly `sum(budgets)` times. The hidden
# tests give budgets `(40, 30, 30)` on five objectives with hidden optima and expect the
# median of the five best scores to be at least 0.97 (the reference falls below 0.97 on
# about one objective in 200, so a median of five is safe).

# %% tags=["answer", "q4"]
def coarse_to_fine(objective, space, budgets, rng, *, top_k=5, margin=0.25):
    """Random search in stages, each on a space refined around the best trials so far."""
    ### BEGIN SOLUTION
    history = []
    current = space
    for stage, budget in enumerate(budgets):
        if stage > 0:
            current = refine_space(history, space, top_k=top_k, margin=margin)
        history.extend(random_search(objective, current, budget, rng)[2])
    best_config, best_score = max(history, key=lambda pair: pair[1])
    return best_config, best_score, history
    ### END SOLUTION


# %% tags=["check", "q4"]
check("q4")

# %% [markdown]
# Compare the searches on your own objective (a demo cell: the grader never runs it): 27
# trials of random search, coarse to fine `(9, 9, 9)`, and a 3 x 3 x 3 grid, log-spaced
# where the scale is `"log"`.

# %% tags=["demo"]
try:
    rng = np.random.default_rng(0)
    objective, calls = make_objective(best_lr=3e-3)
    _, best_random, _ = random_search(objective, SPACE, 27, rng)
    _, best_c2f, _ = coarse_to_fine(objective, SPACE, (9, 9, 9), rng)
    axes_ = [np.geomspace(lo, hi, 3) if scale == "log" else np.linspace(lo, hi, 3)
             for lo, hi, scale in SPACE.values()]
    grid = [dict(zip(SPACE, values, strict=True))
            for values in np.stack(np.meshgrid(*axes_), -1).reshape(-1, len(SPACE))]
    best_grid = max(objective(c) for c in grid)
    distinct = sorted({float(c["lr"]) for c in grid})
    print(f"best of 27: random {best_random:.3f}, coarse to fine {best_c2f:.3f}, "
          f"grid {best_grid:.3f} (the grid tried only the learning rates {distinct})")
except NotImplementedError:
    print("finish questions 1-4 first")

# %% [markdown]
# ## Question 5 (4 points, standard): random search against grid search
#
# With the same budget of 27 trials over the three hyperparameters above, a 3 x 3 x 3 grid
# and random search try very different sets of learning rates. In five to eight sentences:
# (a) how many distinct learning rates does each try, and why does that matter when one
# hyperparameter matters much more than the others (as here, and as Bergstra and Bengio
# found for real networks)? (b) When could a grid still be a reasonable choice? (c) Why
# should the learning rate be searched on a log scale, and what would coarse to fine
# refinement do wrong if it widened a log-scale range linearly?

# %% [markdown] tags=["written", "q5"]
# _Write your answer here._
# ### BEGIN SOLUTION
# (a) The grid tries only 3 distinct learning rates, each 9 times with different values of
# the unimportant hyperparameters, so 18 of its 27 trials tell us nothing new about the
# one that matters; the spacing between its learning rates (3 decades here) can step right
# over the good region. Random search tries 27 distinct learning rates (and 27 distinct
# values of every other hyperparameter), so its projection onto the important dimension is
# as dense as the whole budget allows; we need not know in advance which dimension is the
# important one. (b) A grid is reasonable with one or two hyperparameters that all matter,
# or with few discrete choices, when reproducibility and an exhaustive table are wanted, or
# to plot a slice. (c) The effect of a learning rate depends on ratios (a factor of 10
# matters as much at 1e-5 as at 1e-1), so each decade deserves the same number of trials;
# uniform sampling would put almost all of them in the top decade. Widening linearly would
# push the upper bound up by far more decades than the lower bound down (and the lower
# bound could become negative or be clipped), so the refined range would be lopsided toward
# large values.
# ### END SOLUTION

# %% [markdown] tags=["rubric", "q5"]
# points: 4
# - 1 point: (a) counts: 3 distinct learning rates for the grid, 27 for random search.
# - 1 point: (a) why it matters: with one important hyperparameter, the grid's repeated
#   values are wasted and its coarse spacing can miss the good region; random search's
#   projection onto every dimension is dense, without knowing which one matters.
# - 1 point: (b) a sensible case for a grid (few hyperparameters that all matter, discrete
#   choices, an exhaustive table or plot).
# - 1 point: (c) ratios matter / equal trials per decade; linear widening of a log range is
#   lopsided toward large values (or goes negative). Half a point for only one of the two.

# %% [markdown]
# ## Submit
#
# Save the notebook (Ctrl+S), then run the next cell. It copies the saved notebook into
# `<assignment>.submission.ipynb` next to it and prints that file's name: upload that
# file. (If it cannot tell which notebook is yours, it says so: pass the name, as in
# `submit("my-copy.ipynb")`.)

# %%
submit()


# %% tags=["tests", "public"]
DECILES = np.linspace(0.1, 0.9, 9)


def _objective(best_lr, width=0.6):
    """The notebook's synthetic score (re-made here: the tests never use the student's)."""
    calls = []

    def objective(config):
        calls.append(dict(config))
        gap = np.log10(config["lr"]) - np.log10(best_lr)
        score = np.exp(-0.5 * (gap / width) ** 2)
        score -= 0.01 * abs(np.log10(config["weight_decay"]) + 4) / 2
        score -= 0.02 * abs(config["momentum"] - 0.9)
        return float(score)

    return objective, calls


_SPACE = {"lr": (1e-6, 1.0, "log"), "weight_decay": (1e-6, 1e-2, "log"),
          "momentum": (0.0, 0.99, "linear")}


def _search_summary(calls, result, space):
    """Plain data about a search: its budget use, whether what it returned is consistent
    with the calls the objective really received, and whether they stayed in the space."""
    best_config, best_score, history = result
    scores = [float(s) for _, s in history]
    in_space = all(low <= c[name] <= high for c in calls
                   for name, (low, high, _) in space.items())
    return {"calls": len(calls), "history": len(history),
            "best_is_max": bool(scores) and float(best_score) == max(scores),
            "best_config_matches": any(dict(c) == dict(best_config) and float(s) == best_score
                                       for c, s in history),
            "history_is_calls": [dict(c) for c, _ in history] == calls,
            "in_space": bool(in_space)}


def _at_least(threshold):
    """Checker: a best score (recomputed by the probe from the objective) >= threshold, and
    the budget respected."""

    def check(got, expected):
        if not isinstance(got, dict) or not isinstance(got.get("best"), float):
            return False, "expected a dict with the best score"
        if got.get("calls") != expected["calls"]:
            return False, f"expected {expected['calls']} objective calls, got {got.get('calls')}"
        ok = got["best"] >= threshold
        return ok, "" if ok else f"best score {got['best']:.3f} (needs {threshold})"

    check.__name__ = f"at_least({threshold})"
    return check


@case("q1", "20,000 draws on [1e-6, 1e-2): range, shape and deciles of log10", points=1,
      checker=checks.close(rtol=0.0, atol=0.1),
      hint="10 ** rng.uniform(log10(low), log10(high), size)")
def _(ns, rng):
    x = np.asarray(ns.log_uniform(1e-6, 1e-2, 20_000, np.random.default_rng(0)),
                   dtype=np.float64)
    return {"shape": [int(s) for s in x.shape], "in_range": bool(np.all((x >= 1e-6) & (x < 1e-2))),
            "deciles": np.quantile(np.log10(x), DECILES)}


@case("q2", "budget 30: calls, history and best are consistent", points=2,
      hint="call objective(config) exactly budget times; best = max over history by score")
def _(ns, rng):
    objective, calls = _objective(1e-3)
    result = ns.random_search(objective, _SPACE, 30, np.random.default_rng(1))
    return _search_summary(calls, result, _SPACE)


@case("q3", "top 3 of 6 trials, one log and one linear hyperparameter", points=2,
      checker=checks.close(rtol=1e-9, atol=1e-12),
      hint="for a log hyperparameter, take log10 of the values, widen, then 10 ** back")
def _(ns, rng):
    space = {"lr": (1e-6, 1.0, "log"), "momentum": (0.0, 0.99, "linear")}
    history = [({"lr": 1e-3, "momentum": 0.5}, 0.9), ({"lr": 1e-5, "momentum": 0.2}, 0.1),
               ({"lr": 1e-2, "momentum": 0.8}, 0.8), ({"lr": 3e-1, "momentum": 0.1}, 0.2),
               ({"lr": 3e-4, "momentum": 0.6}, 0.85), ({"lr": 1e-6, "momentum": 0.9}, 0.0)]
    new = ns.refine_space(history, space, top_k=3, margin=0.25)
    return {name: [float(lo), float(hi), str(scale)] for name, (lo, hi, scale) in new.items()}


@case("q4", "budgets (10, 5, 5): calls, history and best are consistent", points=1,
      hint="refine_space(history_so_far, space, ...) before each later stage")
def _(ns, rng):
    objective, calls = _objective(1e-3)
    result = ns.coarse_to_fine(objective, _SPACE, (10, 5, 5), np.random.default_rng(2))
    return _search_summary(calls, result, _SPACE)


# %% tags=["tests", "hidden"]
# Plausible wrong answers, and what they score (tests/grading/test_new_homework.py):
# q1: uniform sampling, rng.uniform(low, high, size): 1 of 4 (the refusals case).
# q2: every hyperparameter sampled uniformly, whatever its scale: 2 of 6 (the public case).
# q3: a log range widened linearly (margin times the span of the values): 0 of 6.
# q4: budgets[0] trials in every stage (the budget overrun): 0 of 4.
@case("q1", "200,000 draws on [1e-3, 1e3): deciles of log10", points=1,
      checker=checks.close(rtol=0.0, atol=0.05))
def _(ns, rng):
    x = np.asarray(ns.log_uniform(1e-3, 1e3, 200_000, rng), dtype=np.float64)
    return {"in_range": bool(np.all((x >= 1e-3) & (x < 1e3))),
            "deciles": np.quantile(np.log10(x), DECILES),
            "below_1": round(float(np.mean(x < 1)), 1)}


@case("q1", "a narrow range and size 1; low <= 0 and low >= high are refused", points=1)
def _(ns, rng):
    x = np.asarray(ns.log_uniform(2.0, 2.5, 5000, rng), dtype=np.float64)
    one = np.asarray(ns.log_uniform(1e-4, 1e-1, 1, rng))
    return [bool(np.all((x >= 2.0) & (x < 2.5))), round(float(np.median(np.log10(x))), 2),
            [int(s) for s in one.shape],
            checks.raised(lambda: ns.log_uniform(0.0, 1.0, 3, rng)),
            checks.raised(lambda: ns.log_uniform(1e-2, 1e-3, 3, rng))]


@case("q1", "the log-uniform mean of log10 and the fraction in each decade", points=1,
      checker=checks.close(rtol=0.0, atol=0.03))
def _(ns, rng):
    x = np.asarray(ns.log_uniform(1e-6, 1e-1, 100_000, rng), dtype=np.float64)
    decades = np.histogram(np.log10(x), bins=np.arange(-6, 0))[0] / x.size
    return {"mean_log10": float(np.mean(np.log10(x))), "decades": decades}


@case("q2", "3,000 trials: the configurations the objective receives", points=2,
      checker=checks.close(rtol=0.0, atol=0.25))
def _(ns, rng):
    objective, calls = _objective(1e-3)
    ns.random_search(objective, _SPACE, 3000, rng)
    return {"lr": np.quantile(np.log10([c["lr"] for c in calls]), DECILES),
            "weight_decay": np.quantile(np.log10([c["weight_decay"] for c in calls]), DECILES),
            "momentum x 5": 5 * np.quantile([c["momentum"] for c in calls], DECILES),
            "number of calls": len(calls)}


# The reference reaches 0.8 within 100 trials whatever the optimum: a trial within 0.38
# decades of it (a window of 0.76 of the 6 decades) scores >= 0.8 - 0.03, and 100 trials all
# miss it with probability 0.874**100 = 1.4e-6.
@case("q2", "budget 100 on five objectives with hidden optima: best score >= 0.8", points=2,
      checker=_at_least(0.8))
def _(ns, rng):
    worst, calls_total = np.inf, 0
    for best_lr in 10.0 ** rng.uniform(-5, -1.5, size=5):
        objective, calls = _objective(best_lr)
        best_config, _, _ = ns.random_search(objective, _SPACE, 100, rng)
        calls_total += len(calls)
        worst = min(worst, objective(dict(best_config)))  # recomputed, not trusted
    return {"best": float(worst), "calls": calls_total}


@case("q3", "clipped to the old bounds; top_k larger than the history", points=2,
      checker=checks.close(rtol=1e-9, atol=1e-12))
def _(ns, rng):
    space = {"lr": (1e-4, 1e-1, "log"), "dropout": (0.0, 0.8, "linear")}
    history = [({"lr": 5e-4, "dropout": 0.05}, 0.5), ({"lr": 5e-2, "dropout": 0.7}, 0.6),
               ({"lr": 2e-3, "dropout": 0.3}, 0.4)]  # lr: clipped above only, in decades
    new = ns.refine_space(history, space, top_k=10, margin=0.25)
    return {name: [float(lo), float(hi), str(scale)] for name, (lo, hi, scale) in new.items()}


@case("q3", "top 4 of 40 random trials, three hyperparameters, margin 0.1", points=2,
      checker=checks.close(rtol=1e-9, atol=1e-12))
def _(ns, rng):
    history = []
    for _ in range(40):
        config = {"lr": float(10 ** rng.uniform(-6, 0)),
                  "weight_decay": float(10 ** rng.uniform(-6, -2)),
                  "momentum": float(rng.uniform(0, 0.99))}
        history.append((config, float(rng.random())))
    new = ns.refine_space(history, _SPACE, top_k=4, margin=0.1)
    return {name: [float(lo), float(hi), str(scale)] for name, (lo, hi, scale) in new.items()}


# Measured over 3,000 objectives, the reference's best score is below 0.97 for about 0.5% of
# them (coarse to fine occasionally narrows onto the wrong side; its worst was 0.70), so the
# median of five falls below 0.97 with probability about 10 * 0.005**3, about 1e-6.
@case("q4", "budgets (40, 30, 30) on five hidden optima: median best score >= 0.97",
      points=3, checker=_at_least(0.97))
def _(ns, rng):
    bests, calls_total = [], 0
    for best_lr in 10.0 ** rng.uniform(-5, -1.5, size=5):
        objective, calls = _objective(best_lr)
        best_config, _, history = ns.coarse_to_fine(objective, _SPACE, (40, 30, 30), rng)
        calls_total += len(calls) + (0 if len(history) == len(calls) else 10**6)
        bests.append(objective(dict(best_config)))  # recomputed, not trusted
    return {"best": float(np.median(bests)), "calls": calls_total}


# %% tags=["autograder"]
settings(
    forbid=["d2lcnn.hparam", "torch", "scipy", "sklearn"],
    case_timeout=30,
    cell_timeout=60,
    memory_mb=2048,
)
