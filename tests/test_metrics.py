"""d2lcnn.metrics: IoU and pixel accuracy agree with a set-based loop and with scikit-learn."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn import metrics as skm

from d2lcnn.metrics import confusion_matrix, iou, mean_iou, pixel_accuracy


def iou_loop(pred, target, k):
    """Teaching version: |P ∩ T| / |P ∪ T| per class, from boolean masks."""
    out = []
    for c in range(k):
        p, t = pred == c, target == c
        union = (p | t).sum()
        out.append((p & t).sum() / union if union else np.nan)
    return np.array(out)


def test_worked_example():
    target = np.array([[0, 0, 1], [0, 1, 1], [2, 2, 2]])
    pred = np.array([[0, 1, 1], [0, 1, 1], [2, 2, 0]])
    m = confusion_matrix(pred, target, 3)
    assert m.tolist() == [[2, 1, 0], [0, 3, 0], [1, 0, 2]]
    # class 0: TP 2, FP 1, FN 1 -> 2/4; class 1: 3/4; class 2: 2/3
    assert np.allclose(iou(pred, target, 3), [2 / 4, 3 / 4, 2 / 3])
    assert mean_iou(pred, target, 3) == pytest.approx((0.5 + 0.75 + 2 / 3) / 3)
    assert pixel_accuracy(pred, target) == pytest.approx(7 / 9)


@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 4, 6)])
@pytest.mark.parametrize("k", [2, 3, 5])
def test_matches_loop_and_sklearn(shape, k):
    rng = np.random.default_rng(k * 100 + len(shape))
    pred, target = rng.integers(0, k, shape), rng.integers(0, k, shape)
    got = iou(pred, target, k)
    assert np.allclose(got, iou_loop(pred, target, k), equal_nan=True)
    labels = list(range(k))
    m = skm.confusion_matrix(target.ravel(), pred.ravel(), labels=labels)
    assert np.array_equal(confusion_matrix(pred, target, k), m)
    present = ~np.isnan(got)
    ref = skm.jaccard_score(target.ravel(), pred.ravel(), labels=labels, average=None,
                            zero_division=0)
    assert np.allclose(got[present], ref[present])
    assert pixel_accuracy(pred, target) == pytest.approx(skm.accuracy_score(
        target.ravel(), pred.ravel()))


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=60))
def test_properties(pairs):
    pred, target = np.array(pairs).T
    m = confusion_matrix(pred, target, 4)
    assert m.sum() == len(pairs)
    values = iou(pred, target, 4)
    assert np.allclose(values, iou_loop(pred, target, 4), equal_nan=True)
    assert np.all((values[~np.isnan(values)] >= 0) & (values[~np.isnan(values)] <= 1))
    assert np.allclose(iou(target, pred, 4), values, equal_nan=True)  # symmetric in P, T
    assert mean_iou(target, target, 4) == 1.0


def test_absent_class_is_nan_and_left_out_of_the_mean():
    target = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    values = iou(pred, target, 3)
    assert np.isnan(values[2])
    assert mean_iou(pred, target, 3) == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_torch_tensors():
    pred = torch.tensor([[0, 1], [2, 2]])
    target = torch.tensor([[0, 1], [1, 2]])
    assert np.allclose(iou(pred, target, 3), [1, 1 / 2, 1 / 2])
    assert pixel_accuracy(pred, target) == 0.75


def test_boolean_masks_are_labels_0_and_1():
    pred = np.array([[True, False], [True, True]])
    target = np.array([[True, False], [False, True]])
    assert np.allclose(iou(pred, target, 2), [1 / 2, 2 / 3])
    assert np.array_equal(iou(pred, target, 2), iou(pred.astype(int), target.astype(int), 2))


def test_errors():
    with pytest.raises(ValueError, match="same shape"):
        iou(np.zeros(3, int), np.zeros(4, int), 2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        iou(np.array([0, 2]), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match=r"target labels"):
        confusion_matrix(np.array([0, 1]), np.array([-1, 1]), 2)
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix(np.array([0]), np.array([0]), 0)
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix(np.array([0]), np.array([0]), 2.0)
    with pytest.raises(TypeError, match="integer"):
        iou(np.array([0.0, 1.0]), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="empty"):
        pixel_accuracy(np.zeros(0, int), np.zeros(0, int))
