"""Homework 2-7, the questions added for issue 17: a plausible wrong answer to each
auto-graded question scores below full marks.

Each wrong answer is the solution notebook (``autograder/solution.ipynb`` of the session's
build of the assignment) with ONE function changed the way a student might get it wrong.
It earns exactly the stated score on its question, below full marks, and every other
question keeps its full marks (except those that call the wrong function, ``USED_BY``).
The same wrong answers are listed, with their scores, in a comment at the top of each
assignment's hidden tests. The hidden inputs change with every build (a random secret),
so these scores hold for any secret: each wrong answer fails its cases on every input the
cases draw (checked by hand over 20-30 seeds per case). Stubs scoring 0 on every question
is test_homework_integrity.py's job; this file adds the wrong-but-plausible answers.
"""

import csv
import json
from pathlib import Path

import nbformat
import pytest

from d2lcnn.grading.grade import grade_batch

# (label, cell id, text in the solution cell, its replacement, question, expected score):
# the expected score is what the wrong answer earns on that question (below full marks).
WRONG = {
    "hw2-batchnorm-dropout": [
        ("BatchNorm dx without the variance path", "q2-answer",
         "    dx = gamma * inv_std / n * (n * dout - dbeta - x_hat * dgamma)\n",
         "    dx = gamma * inv_std / n * (n * dout - dbeta)\n", "q2", 0),
        ("LayerNorm dgamma and dbeta summed over axis 0 only", "q5-answer",
         "    lead = tuple(range(dout.ndim - len(shape)))  # the axes gamma and beta are shared"
         " over\n",
         "    lead = 0\n", "q5", 4),
        ("GroupNorm backward without the scale", "q6-answer",
         "    g = (dout * weight.reshape(1, C, 1, 1)).reshape(N * num_groups, -1)  # dL/dx_hat\n",
         "    g = dout.reshape(N * num_groups, -1)  # dL/dx_hat\n", "q6", 0),
    ],
    "hw3-optimizers": [
        ("RMSProp's average without its (1 - alpha)", "q6-answer",
         "    s = alpha * s + (1 - alpha) * dw * dw\n",
         "    s = alpha * s + dw * dw\n", "q6", 0),
        ("Adam with an L2 penalty instead of decoupled weight decay", "q7-answer",
         "    w = w * (1 - lr * weight_decay)  # decoupled: the gradient does not see the decay\n"
         "    w, m, v = adam_step(w, dw, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=eps)\n",
         "    w, m, v = adam_step(w, dw + weight_decay * w, m, v, t, lr=lr, beta1=beta1,\n"
         "                        beta2=beta2, eps=eps)\n", "q7", 0),
    ],
    "hw4-resnet-unet": [
        # The images shuffled once and the labels not: every label belongs to another image,
        # so the network learns nothing (chance, 10%, far below the 60% floor on any secret).
        ("images shuffled without their labels", "q4-answer",
         "    x = torch.as_tensor(x_train, dtype=torch.float32)\n",
         "    x = torch.as_tensor(x_train, dtype=torch.float32)\n"
         "    x = x[torch.randperm(len(x))]\n", "q4", 0),
    ],
    "hw5-activations-init": [
        ("tanh from exponentials", "q1-answer",
         "        return np.tanh(x)\n",
         "        return (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))\n", "q1", 4),
        ("GELU derivative without the product rule", "q2-answer",
         "        local = 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * du\n",
         "        local = 0.5 * (1 + t)\n", "q2", 5),
        ("He with fan_out", "q3-answer",
         "        return float(np.sqrt(2.0 / fan_in))\n",
         "        return float(np.sqrt(2.0 / fan_out))\n", "q3", 0),
        ("std of the pre-activations", "q5-answer",
         "        h = activation_forward(h @ w.T, nonlinearity)  # (n, width)\n"
         "        stds.append(h.std())\n",
         "        z = h @ w.T\n        h = activation_forward(z, nonlinearity)\n"
         "        stds.append(z.std())\n", "q5", 0),
    ],
    "hw6-dropout-ensembles": [
        ("p taken as the keep probability", "q1-answer",
         "    keep = rng.random(np.shape(h)) >= p\n",
         "    keep = rng.random(np.shape(h)) < p\n", "q1", 0),
        ("vanilla scaling at evaluation", "q2-answer",
         "        h = inverted_dropout(h, p, rng)\n",
         "        h = inverted_dropout(h, p, rng)\n    else:\n        h = h * (1 - p)\n", "q2", 0),
        ("softmax of the averaged logits", "q3-answer",
         "    return probs.mean(axis=0), probs.var(axis=0)",
         "    logits = np.log(probs)  # the logits up to a constant per row\n"
         "    return softmax(logits.mean(axis=0)), probs.var(axis=0)", "q3", 0),
        ("identical members", "q4-answer",
         "        params = train_mlp(x_train[rows], y_train[rows], rng=rng)\n",
         "        params = train_mlp(x_train, y_train, rng=np.random.default_rng(0))\n", "q4",
         3.5),
    ],
    "hw7-hyperparameter-search": [
        ("uniform instead of log-uniform", "q1-answer",
         "    return 10.0 ** rng.uniform(np.log10(low), np.log10(high), size=size)\n",
         "    return rng.uniform(low, high, size=size)\n", "q1", 1),
        ("every hyperparameter sampled linearly", "q2-answer",
         '        if scale == "log":\n'
         '            config[name] = float(log_uniform(low, high, 1, rng)[0])\n'
         '        elif scale == "linear":\n',
         '        if scale in ("log", "linear"):\n', "q2", 2),
        ("a log range widened linearly", "q3-answer",
         '        to, back = (np.log10, lambda v: 10.0**v) if scale == "log" else (float, float)\n',
         "        to, back = float, float\n", "q3", 0),
        ("the first budget used for every stage", "q4-answer",
         "        history.extend(random_search(objective, current, budget, rng)[2])\n",
         "        history.extend(random_search(objective, current, budgets[0], rng)[2])\n", "q4",
         0),
    ],
}


# Questions whose answers call an earlier one lose points with it: (assignment, question)
# -> the later questions a wrong answer to it may also cost.
USED_BY = {("hw2-batchnorm-dropout", "q2"): {"q4"},
           ("hw6-dropout-ensembles", "q1"): {"q2", "q3"},
           ("hw7-hyperparameter-search", "q1"): {"q2", "q4"},
           ("hw7-hyperparameter-search", "q2"): {"q4"},
           ("hw7-hyperparameter-search", "q3"): {"q4"}}


def _wrong_notebook(out: Path, cell_id: str, old: str, new: str):
    nb = nbformat.read(out / "autograder" / "solution.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.id == cell_id)
    source = cell.source + "\n"  # a cell's last line has no newline of its own
    assert old in source, f"{cell_id}: the solution no longer contains {old!r}"
    cell.source = source.replace(old, new, 1).removesuffix("\n")
    return nb


def _question_points(out: Path) -> dict:
    """Auto-graded question -> its points (the sum of its cases'), from the bundle."""
    bundle = json.loads((out / "autograder" / "bundle.json").read_text())
    points = {}
    for c in bundle["cases"]:
        points[c["question"]] = points.get(c["question"], 0.0) + c["points"]
    return points


@pytest.mark.parametrize("stem", sorted(WRONG))
def test_plausible_wrong_answers_lose_points_on_their_question_only(
        assignment_builds, tmp_path, stem):
    _, out, _ = assignment_builds(stem)
    maxima = _question_points(out)
    paths = []
    for i, (_, cell_id, old, new, _, _) in enumerate(WRONG[stem]):
        paths.append(tmp_path / f"wrong{i}.ipynb")
        nbformat.write(_wrong_notebook(out, cell_id, old, new), paths[-1])
    grade_batch(out / "autograder", paths, tmp_path / "grades", jobs=1, progress=False)
    with open(tmp_path / "grades" / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    for i, (label, _, _, _, question, expected) in enumerate(WRONG[stem]):
        row = rows[f"wrong{i}"]
        assert expected < maxima[question]
        assert float(row[question]) == expected, (stem, question, label, row)
        spared = set(maxima) - {question} - USED_BY.get((stem, question), set())
        for q, full in maxima.items():  # the change costs its own question (and users) only
            if q in spared:
                assert float(row[q]) == full, (stem, label, q, row)
