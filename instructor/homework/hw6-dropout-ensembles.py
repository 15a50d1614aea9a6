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
# # Homework 6: Dropout in a model, Monte Carlo dropout, and a bagged ensemble
#
# **Follows:** [chapter 6, Dropout, regularization and
# ensembles](../../06-dropout-and-ensembles.ipynb)
# **Estimated time:** 2–3 hours (a first draft, not yet timed on students: the reference
# solution is 18 lines, at about 3 minutes a line for a first encounter, plus reading the
# given network code, trying the ensemble in the demo cell, and about 15 minutes for the
# written answer)
#
# **Learning goals.** After this assignment you can
#
# - implement inverted dropout inside a network so that training and evaluation agree in
#   expectation, and test that claim statistically;
# - estimate a network's predictive mean and variance by Monte Carlo dropout, and say why
#   averaging probabilities differs from averaging logits;
# - build a bagged ensemble of small networks that beats its average member on held-out
#   data, and explain where the gain comes from.
#
# | question | what you do | points | difficulty |
# | --- | --- | --- | --- |
# | 1 | `inverted_dropout`: one dropout layer, in training | 4 | guided |
# | 2 | `mlp_forward`: dropout inside a two-layer network, train and eval | 6 | standard |
# | 3 | `mc_dropout_predict`: Monte Carlo dropout's mean and variance | 5 | standard |
# | 4 | `bagged_ensemble`: bootstrap, train, predict; graded on held-out digits | 8 | challenge |
# | 5 | written: why the ensemble wins | 3 | standard |
#
# **Rules.** Use NumPy only: `torch`, `scipy`, scikit-learn and the package's reference
# modules (`d2lcnn.numpy`, `d2lcnn.torch`, `d2lcnn.ensemble`, `d2lcnn.data`) are blocked
# when your notebook is graded; question 4's data come from the grader. Write your code
# where it says `# YOUR CODE HERE`; do not rename the functions or change their arguments.
# Run `check("qN")` after each answer: it runs the public tests. Dropout is random, so most
# tests are statistical: they run your function many times with a fixed seed and compare
# averages with tolerances, never your exact random draws. The grade also uses hidden tests.
# Question 5 is answered in words and graded by hand. When you are done, save the notebook
# and run `submit()`.

# %%
import numpy as np

# %% tags=["setup"]
from d2lcnn.grading import Checker

grader = Checker("hw6-dropout-ensembles", globals())
check, submit = grader.check, grader.submit


# %% [markdown]
# The model of this assignment is a two-layer perceptron for `C` classes: a hidden layer of
# ReLU units, then a linear layer giving the logits,
#
# $$h = \max(0, x W_1 + b_1), \qquad \text{logits} = h W_2 + b_2 ,$$
#
# with the parameters in a dict `{"W1": (D, H), "b1": (H,), "W2": (H, C), "b2": (C,)}`
# (inputs as rows, so `x @ W1`). The cell below gives you its initialization, a softmax, a
# minibatch SGD trainer (without dropout) and the predicted probabilities; question 4 uses
# them. Read them; do not change them.

# %%
def softmax(z):
    z = z - z.max(axis=-1, keepdims=True)  # no overflow
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def init_mlp(n_in, n_hidden, n_out, rng):
    return {"W1": rng.standard_normal((n_in, n_hidden)) * np.sqrt(2 / n_in),
            "b1": np.zeros(n_hidden),
            "W2": rng.standard_normal((n_hidden, n_out)) * np.sqrt(1 / n_hidden),
            "b2": np.zeros(n_out)}


def train_mlp(x, y, *, n_classes=10, hidden=64, epochs=40, lr=0.1, batch_size=32, rng):
    """Minibatch SGD on the cross-entropy; returns the trained parameters."""
    params = init_mlp(x.shape[1], hidden, n_classes, rng)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            xb, yb = x[idx], y[idx]
            z = xb @ params["W1"] + params["b1"]  # (B, H)
            h = np.maximum(z, 0)
            dlogits = softmax(h @ params["W2"] + params["b2"])  # (B, C)
            dlogits[np.arange(len(idx)), yb] -= 1
            dlogits /= len(idx)
            dz = dlogits @ params["W2"].T * (z > 0)
            grads = {"W1": xb.T @ dz, "b1": dz.sum(0), "W2": h.T @ dlogits,
                     "b2": dlogits.sum(0)}
            for name, g in grads.items():
                params[name] -= lr * g
    return params


def predict_proba(params, x):
    """Class probabilities ``(N, C)`` of the network without dropout."""
    return softmax(np.maximum(x @ params["W1"] + params["b1"], 0) @ params["W2"] + params["b2"])


# %% [markdown]
# ## Question 1 (4 points, guided): inverted dropout
#
# `p` is the probability of DROPPING a unit (PyTorch's convention). Write
# `inverted_dropout(h, p, rng)` for training: zero each element of `h` independently with
# probability `p` (draw the mask with `rng`), and scale the survivors by $1/(1-p)$, so that
# $E[\text{out}] = h$ element by element. Return an array of the shape of `h`. Raise
# `ValueError` unless $0 \le p < 1$. The tests draw large arrays and check the fraction of
# zeros, the value of the survivors and the mean.

# %% tags=["answer", "q1"]
def inverted_dropout(h, p, rng):
    """Training-time inverted dropout of ``h`` with drop probability ``p``."""
    ### BEGIN SOLUTION
    if not 0 <= p < 1:
        raise ValueError(f"inverted_dropout: p must be in [0, 1), got {p}")
    keep = rng.random(np.shape(h)) >= p
    return h * keep / (1 - p)
    ### END SOLUTION


# %% tags=["check", "q1"]
check("q1")

# %% [markdown]
# ## Question 2 (6 points, standard): dropout inside the network
#
# Write `mlp_forward(x, params, *, p, training, rng)`, the logits `(N, C)` of the network
# above with inverted dropout (your question 1) on the hidden layer $h$:
#
# - `training=True`: drop hidden units with probability `p` (a fresh mask at every call);
# - `training=False`: no dropout and no rescaling at all (that is the point of the inverted
#   form); `rng` may be `None` then.
#
# The tests check evaluation exactly, and training statistically: over thousands of calls,
# the average of the training logits must match the evaluation logits (why exactly, here?)
# and their variance must match ours.

# %% tags=["answer", "q2"]
def mlp_forward(x, params, *, p=0.5, training=False, rng=None):
    """Logits of the two-layer network with inverted dropout on its hidden layer."""
    ### BEGIN SOLUTION
    h = np.maximum(x @ params["W1"] + params["b1"], 0)  # (N, H)
    if training:
        h = inverted_dropout(h, p, rng)
    return h @ params["W2"] + params["b2"]  # (N, C)
    ### END SOLUTION


# %% tags=["check", "q2"]
check("q2")

# %% [markdown]
# ## Question 3 (5 points, standard): Monte Carlo dropout
#
# Keeping dropout on at test time and averaging many stochastic passes estimates the
# prediction of the ensemble of thinned networks, and the spread of the passes says how
# unsure that ensemble is. Write `mc_dropout_predict(x, params, *, p, T, rng)`: run `T`
# training-mode passes of `mlp_forward`, turn each pass's logits into probabilities with
# `softmax`, and return `(mean, var)`, each `(N, C)`: the mean and the (population,
# `ddof=0`) variance of the probabilities over the `T` passes. Average the
# *probabilities*, not the logits: the softmax is not linear, so the two differ (the hidden
# tests use a network where they differ a lot).

# %% tags=["answer", "q3"]
def mc_dropout_predict(x, params, *, p=0.5, T=100, rng):
    """Mean and variance over ``T`` dropout passes of the predicted probabilities."""
    ### BEGIN SOLUTION
    probs = np.stack([softmax(mlp_forward(x, params, p=p, training=True, rng=rng))
                      for _ in range(T)])  # (T, N, C)
    return probs.mean(axis=0), probs.var(axis=0)
    ### END SOLUTION


# %% tags=["check", "q3"]
check("q3")

# %% [markdown]
# ## Question 4 (8 points, challenge): a bagged ensemble
#
# Bagging trains each member on a *bootstrap sample*: `n` rows drawn with replacement from
# the `n` training rows, so each member sees about 63% of the distinct rows, some of them
# twice. Write `bagged_ensemble(x_train, y_train, x_test, *, k, rng)`: train `k` members with
# the given `train_mlp` (its defaults are fine), each on its own bootstrap sample, and
# return their predicted probabilities on `x_test` as one array of shape
# `(k, len(x_test), 10)` (use `predict_proba`).
#
# **What is graded.** The grader splits the 1,797 real 8x8 digits (as 64 features in
# $[0, 1]$) with a seed you do not have into 300 training and about 1,500 test digits,
# calls your function with `k=9` and averages the members' probabilities itself. Half of
# the points: the ensemble's test accuracy is at least 0.90. The other half: the ensemble
# beats its average member, its accuracy at least 0.005 above the mean accuracy of the
# members. Measured on 30 such splits, the reference ensemble reached 0.91–0.95 and beat
# its average member by 0.014–0.028; an "ensemble" of identical members beats it by 0. The
# call must finish within 60 s; nine members take about a second.

# %% tags=["answer", "q4"]
def bagged_ensemble(x_train, y_train, x_test, *, k=9, rng):
    """``(k, len(x_test), 10)``: the test probabilities of ``k`` bootstrap-trained members."""
    ### BEGIN SOLUTION
    n = len(x_train)
    members = []
    for _ in range(k):
        rows = rng.integers(0, n, size=n)  # a bootstrap sample
        params = train_mlp(x_train[rows], y_train[rows], rng=rng)
        members.append(predict_proba(params, x_test))
    return np.stack(members)
    ### END SOLUTION


# %% tags=["check", "q4"]
check("q4")

# %% [markdown]
# Try it on a split of your own (a demo cell: the grader never runs it, and `d2lcnn.data`
# is blocked there). Compare with `k` copies of one model trained on all 300 rows.

# %% tags=["demo"]
from d2lcnn.data import load_digits  # noqa: E402

try:
    digits_x, digits_y = load_digits()
    digits_x = digits_x.reshape(len(digits_x), -1).astype(np.float64)  # (1797, 64)
    order = np.random.default_rng(1).permutation(len(digits_y))
    tr, te = order[:300], order[300:]
    members = bagged_ensemble(digits_x[tr], digits_y[tr], digits_x[te], k=9,
                              rng=np.random.default_rng(2))
    member_acc = [(m.argmax(1) == digits_y[te]).mean() for m in members]
    ensemble_acc = (members.mean(0).argmax(1) == digits_y[te]).mean()
    print(f"members {np.mean(member_acc):.3f} on average, ensemble {ensemble_acc:.3f}")
except NotImplementedError:
    print("finish question 4 first")

# %% [markdown]
# ## Question 5 (3 points, standard): why the ensemble wins
#
# In four to eight sentences: (a) why can the average of the members' probabilities be more
# accurate than the average member, and what property of the members' errors does that
# need? (b) Why would nine copies of one model trained on all the data gain nothing, and
# what makes bagging's members differ? (c) What does the Monte Carlo dropout variance of a
# prediction (question 3) tell you, and name one use of it.

# %% [markdown] tags=["written", "q5"]
# _Write your answer here._
# ### BEGIN SOLUTION
# (a) Each member is right on most test digits and wrong on a scattered few; where the
# members' mistakes fall on different digits, the others outvote the one that errs, so the
# average is wrong only where many members err together. That needs errors that are not
# perfectly correlated: averaging $k$ predictions with pairwise error correlation $\rho$ cuts
# the variance part of the error to about $\rho + (1 - \rho)/k$ of a member's, and does
# nothing to the shared (bias) part. (b) Identical copies make identical mistakes
# ($\rho = 1$), so their average is the model itself. Bagging decorrelates the members by
# training each on a different bootstrap sample (about 63% of the distinct rows, with
# different rows repeated), and here also from a different initialization and minibatch
# order; each member is a little worse than one trained on all rows, but their average is
# better. (c) The variance over dropout masks measures how much the prediction depends on
# which thinned network is asked: the model's uncertainty about that input (epistemic
# uncertainty). Uses: flag or abstain on inputs with high variance (send them to a human),
# detect inputs unlike the training data, or pick which examples to label next (active
# learning).
# ### END SOLUTION

# %% [markdown] tags=["rubric", "q5"]
# points: 3
# - 1 point: (a) the average is wrong only where many members are wrong together; needs
#   errors that are not (perfectly) correlated / diverse members. Half a point for "variance
#   reduction" without saying what it needs.
# - 1 point: (b) identical members make the same errors (no diversity); bootstrap samples
#   (and random initializations and orders) make them differ.
# - 1 point: (c) the spread over masks is the model's uncertainty for that input, with one
#   sensible use (abstaining, out-of-distribution detection, active learning, calibration).

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
def _within(**tolerances):
    """Checker for dicts: key -> (rtol, atol); every key must match within its own."""

    def check(got, expected):
        if not isinstance(got, dict):
            return False, "expected a dict"
        for key, (rtol, atol) in tolerances.items():
            msg = checks.compare(got.get(key), expected[key], rtol=rtol, atol=atol, where=key)
            if msg:
                return False, msg
        return True, ""

    check.__name__ = f"within({tolerances})"
    return check


def _sample_stats(n, *, exact=(), var_rtol=0.25, var_atol=1e-6):
    """Checker for sample statistics over ``n`` random draws: the keys in ``exact`` must
    match to 1e-9; ``mean`` within 5 standard errors of the difference of two independent
    estimates (computed from the expected ``var``), ``var`` within ``var_rtol``."""

    def check(got, expected):
        if not isinstance(got, dict):
            return False, "expected a dict"
        for key in exact:
            msg = checks.compare(got.get(key), expected[key], rtol=1e-9, atol=1e-9, where=key)
            if msg:
                return False, msg
        var = np.asarray(expected["var"], dtype=np.float64)
        em = np.asarray(expected["mean"], dtype=np.float64)
        try:
            gm, gv = (np.asarray(got[k], dtype=np.float64) for k in ("mean", "var"))
        except (KeyError, TypeError, ValueError):
            return False, "expected numeric arrays 'mean' and 'var'"
        if gm.shape != em.shape or gv.shape != var.shape:
            return False, f"expected shape {em.shape}, got {gm.shape} and {gv.shape}"
        if not (np.all(np.isfinite(gm)) and np.all(np.isfinite(gv))):
            return False, "the statistics must be finite"
        mean_ok = np.abs(gm - em) <= 5 * np.sqrt(2 * var / n) + 1e-6
        if not mean_ok.all():
            i = np.unravel_index(np.argmin(mean_ok), em.shape)
            return False, f"mean at {i}: expected about {em[i]:.4g}, got {gm[i]:.4g}"
        var_ok = np.abs(gv - var) <= var_rtol * var + var_atol
        if not var_ok.all():
            i = np.unravel_index(np.argmin(var_ok), var.shape)
            return False, f"variance at {i}: expected about {var[i]:.4g}, got {gv[i]:.4g}"
        return True, ""

    check.__name__ = f"sample_stats({n})"
    return check


def _random_mlp(rng, d=6, hidden=40, c=4, scale=1.0):
    return {"W1": rng.standard_normal((d, hidden)) * scale, "b1": rng.standard_normal(hidden),
            "W2": rng.standard_normal((hidden, c)) * scale, "b2": rng.standard_normal(c)}


def _dropout_stats(ns, p, shape=(400, 500), value=3.0, seed=0):
    out = np.asarray(ns.inverted_dropout(np.full(shape, value), p, np.random.default_rng(seed)),
                     dtype=np.float64)
    kept = out[out != 0]
    return {"shape": [int(s) for s in out.shape], "dropped": float(np.mean(out == 0)),
            "survivor": float(kept.mean()) if kept.size else 0.0,
            "survivors_equal": bool(kept.size and np.ptp(kept) < 1e-9),
            "mean": float(out.mean())}


def _forward_stats(ns, rng, *, p, n_calls=3000, n=5):
    params = _random_mlp(rng)
    x = rng.standard_normal((n, 6))
    ev = np.asarray(ns.mlp_forward(x, params, p=p, training=False, rng=None), dtype=np.float64)
    g = np.random.default_rng(int(rng.integers(2**31)))
    runs = np.stack([np.asarray(ns.mlp_forward(x, params, p=p, training=True, rng=g),
                                dtype=np.float64) for _ in range(n_calls)])
    return {"eval": ev, "mean": runs.mean(0), "var": runs.var(0),
            "changes": bool(np.ptp(runs, axis=0).max() > 0)}


def _blobs(rng, n, centres, spread=1.0):
    y = rng.integers(0, len(centres), size=n)
    return centres[y] + spread * rng.standard_normal((n, centres.shape[1])), y


def _members_valid(got, expected):
    """Checker for the public bagging case: the shape, probabilities, members that differ,
    and an ensemble that learned the easy task (at least 90% agreement with ours)."""
    g, e = np.asarray(got), np.asarray(expected)
    if g.shape != e.shape:
        return False, f"expected shape {e.shape} (k, n_test, classes), got {g.shape}"
    if g.dtype.kind != "f" or not np.allclose(g.sum(-1), 1, atol=1e-6) or g.min() < 0:
        return False, "every member's rows must be probabilities (non-negative, summing to 1)"
    if all(np.array_equal(g[0], m) for m in g[1:]):
        return False, "all members are identical: an ensemble of copies gains nothing"
    agree = float(np.mean(g.mean(0).argmax(-1) == e.mean(0).argmax(-1)))
    return agree >= 0.9, f"the ensemble agrees with ours on {agree:.0%} of the points"


@case("q1", "p = 0.3 on 200,000 units: zeros, survivors, mean", points=1,
      checker=_within(shape=(0, 0), dropped=(0, 0.01), survivor=(1e-9, 0),
                      survivors_equal=(0, 0), mean=(0, 0.05)),
      hint="keep where rng.random(shape) >= p; multiply the survivors by 1 / (1 - p)")
def _(ns, rng):
    return _dropout_stats(ns, 0.3)


@case("q2", "evaluation exactly, training on average over 3,000 calls, p = 0.5", points=2,
      checker=_sample_stats(3000, exact=("eval", "changes")),
      hint="training=False: no dropout and no scaling; training=True: inverted_dropout(h)")
def _(ns, rng):
    return _forward_stats(ns, rng, p=0.5)


@case("q3", "mean and variance over 2,000 passes, p = 0.5", points=1,
      checker=_sample_stats(2000, var_atol=0.002),
      hint="stack softmax(mlp_forward(..., training=True)) over T passes; mean and var "
           "over that axis")
def _(ns, rng):
    params = _random_mlp(rng)
    mean, var = ns.mc_dropout_predict(rng.standard_normal((6, 6)), params, p=0.5, T=2000,
                                      rng=np.random.default_rng(5))
    return {"mean": np.asarray(mean, dtype=np.float64), "var": np.asarray(var, dtype=np.float64)}


@case("q4", "ten well-separated blobs: shape, probabilities, diverse members", points=1,
      checker=_members_valid, timeout=60,
      hint="rows = rng.integers(0, n, size=n) for each member; np.stack the k predictions")
def _(ns, rng):
    centres = 5.0 * np.eye(10)  # ten classes in 10-D, like the digits' ten
    x_train, y_train = _blobs(rng, 200, centres)
    x_test, _ = _blobs(rng, 100, centres)
    return np.asarray(ns.bagged_ensemble(x_train, y_train, x_test, k=4,
                                         rng=np.random.default_rng(3)))


# %% tags=["tests", "hidden"]
# Plausible wrong answers, and what they score (tests/grading/test_new_homework.py):
# q1: p taken as the KEEP probability (keep where rng.random() < p): 0 of 4.
# q2: vanilla dropout mixed up with inverted: the evaluation logits scaled by (1 - p): 0 of 6.
# q3: softmax of the averaged logits instead of the average of the softmaxes: 0 of 5.
# q4: the members all trained on the full training set with the same seed: 3.5 of 8 (the
#     identical members lose the public case and the "beats its members" half).
@case("q1", "p = 0.75: zeros, survivors, mean", points=1,
      checker=_within(shape=(0, 0), dropped=(0, 0.01), survivor=(1e-9, 0),
                      survivors_equal=(0, 0), mean=(0, 0.1)))
def _(ns, rng):
    return _dropout_stats(ns, 0.75, shape=(300, 700), value=2.0, seed=int(rng.integers(99)))


@case("q1", "p = 0.05, negative values, 3-D input", points=1,
      checker=_within(shape=(0, 0), dropped=(0, 0.01), survivor=(1e-9, 0),
                      survivors_equal=(0, 0), mean=(0, 0.1)))
def _(ns, rng):
    return _dropout_stats(ns, 0.05, shape=(30, 70, 100), value=-1.5,
                          seed=int(rng.integers(99)))


@case("q1", "p = 0 is the identity, p = 1 and p = -0.2 are refused", points=1)
def _(ns, rng):
    h = rng.standard_normal((5, 7))
    same = np.asarray(ns.inverted_dropout(h, 0.0, np.random.default_rng(0)), dtype=np.float64)
    stats = _dropout_stats(ns, 0.5, shape=(50, 50))
    return [same, round(stats["dropped"], 1),
            checks.raised(lambda: ns.inverted_dropout(h, 1.0, np.random.default_rng(0))),
            checks.raised(lambda: ns.inverted_dropout(h, -0.2, np.random.default_rng(0)))]


@case("q2", "p = 0.2: evaluation exact, training on average", points=2,
      checker=_sample_stats(3000, exact=("eval", "changes")))
def _(ns, rng):
    return _forward_stats(ns, rng, p=0.2)


@case("q2", "p = 0.8: evaluation exact, training on average", points=2,
      checker=_sample_stats(3000, exact=("eval", "changes")))
def _(ns, rng):
    return _forward_stats(ns, rng, p=0.8)


@case("q3", "a confident network: probabilities averaged, not logits", points=2,
      checker=_sample_stats(2000, var_atol=0.002))
def _(ns, rng):
    params = _random_mlp(rng, scale=2.0)
    mean, var = ns.mc_dropout_predict(rng.standard_normal((8, 6)), params, p=0.5, T=2000,
                                      rng=np.random.default_rng(int(rng.integers(99))))
    return {"mean": np.asarray(mean, dtype=np.float64), "var": np.asarray(var, dtype=np.float64)}


@case("q3", "p = 0.1, T = 1,500", points=2, checker=_sample_stats(1500, var_atol=0.002))
def _(ns, rng):
    params = _random_mlp(rng, c=3)
    mean, var = ns.mc_dropout_predict(rng.standard_normal((10, 6)), params, p=0.1, T=1500,
                                      rng=np.random.default_rng(int(rng.integers(99))))
    return {"mean": np.asarray(mean, dtype=np.float64), "var": np.asarray(var, dtype=np.float64)}


@case("q4", "ensemble of 9 on the grader's digits: accuracy and gain over its members",
      points=7, timeout=60, checker="ensemble_accuracy", inputs="graded_digits")
def _(ns, rng, sent):
    return np.asarray(ns.bagged_ensemble(sent["x_train"], sent["y_train"], sent["x_test"],
                                         k=9, rng=np.random.default_rng(int(rng.integers(99)))),
                      dtype=np.float64)


# %% tags=["autograder"]
settings(
    # d2lcnn.data and sklearn hold the digits: q4's data come only from graded_digits below.
    forbid=["torch", "scipy", "sklearn", "d2lcnn.numpy", "d2lcnn.torch", "d2lcnn.ensemble",
            "d2lcnn.data"],
    case_timeout=30,
    cell_timeout=60,
    memory_mb=2048,
)

N_TRAIN, K_MEMBERS = 300, 9  # q4: training digits, members
ACCURACY_FLOOR, MIN_GAIN = 0.90, 0.005  # q4: each is half of the points


def graded_digits(rng):
    """q4's data, made in the grader from the bundle's secret: ``(sent, kept)``; the test
    labels never enter the sandbox."""
    from d2lcnn import data

    x, y = data.load_digits()
    x = x.reshape(len(x), -1).astype(np.float64)  # (1797, 64) in [0, 1]
    order = rng.permutation(len(y))
    train, test = order[:N_TRAIN], order[N_TRAIN:]
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test]}, y[test]


# Measured for 30 secrets (graded_digits' rng seeded 0-29) with the reference solution: the
# ensemble's accuracy 0.912-0.947, its gain over the mean member 0.014-0.028 (0.2 s of CPU).
def ensemble_accuracy(got, expected, kept):
    """Half the points for the averaged ensemble's accuracy >= ACCURACY_FLOOR, half for
    beating the mean accuracy of its members by MIN_GAIN; nothing for malformed output."""
    y = kept
    probs = np.asarray(got)
    if probs.shape != (K_MEMBERS, len(y), 10):
        return False, f"expected shape {(K_MEMBERS, len(y), 10)}, got {probs.shape}"
    if probs.dtype.kind != "f" or not np.all(np.isfinite(probs)) or probs.min() < 0 \
            or not np.allclose(probs.sum(-1), 1, atol=1e-6):
        return False, "every member's rows must be probabilities"
    members = np.array([np.mean(m.argmax(-1) == y) for m in probs])
    ensemble = float(np.mean(probs.mean(0).argmax(-1) == y))
    gain = ensemble - float(members.mean())
    score = 0.5 * (ensemble >= ACCURACY_FLOOR) + 0.5 * (gain >= MIN_GAIN)
    return score, (f"ensemble accuracy {ensemble:.3f} (needs {ACCURACY_FLOOR}), members "
                   f"{members.mean():.3f} on average: gain {gain:+.3f} (needs {MIN_GAIN})")
