"""NumPy linear and flatten: numerical gradients, parity with F.linear / torch.flatten in
float64 and float32, and bad inputs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from d2lcnn.gradcheck import check_backward
from d2lcnn.numpy.linear import flatten_backward, flatten_forward, linear_backward, linear_forward

GRAD_TOL = 1e-7  # linear in every input: only roundoff separates the two gradients
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-5)}


@pytest.mark.parametrize("x_shape", [(4, 3), (2, 3, 3), (3,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_numerical_gradient(x_shape, bias):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape), rng.standard_normal((5, 3))
    b = rng.standard_normal(5) if bias else None
    errors = check_backward(linear_forward, linear_backward, [x, w, b], h=1e-4)
    assert all(e is None or e <= GRAD_TOL for e in errors)
    assert (errors[2] is None) == (not bias)


@settings(max_examples=30, deadline=None)
@given(
    batch=st.lists(st.integers(1, 4), max_size=3).map(tuple),
    fin=st.integers(1, 6),
    fout=st.integers(1, 6),
    bias=st.booleans(),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 99),
)
def test_linear_matches_torch(batch, fin, fout, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*batch, fin)).astype(dtype)
    w = rng.standard_normal((fout, fin)).astype(dtype)
    b = rng.standard_normal(fout).astype(dtype) if bias else None
    out, cache = linear_forward(x, w, b)
    dout = rng.standard_normal(out.shape).astype(dtype)
    leaves = [None if a is None else torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    out_ref = F.linear(*leaves)
    out_ref.backward(torch.tensor(dout))
    assert out.shape == tuple(out_ref.shape) and out.dtype == dtype
    np.testing.assert_allclose(out, out_ref.detach().numpy(), **TOL[dtype])
    for g, leaf in zip(linear_backward(dout, cache), leaves, strict=True):
        if leaf is None:
            assert g is None
        else:
            assert g.dtype == dtype
            np.testing.assert_allclose(g, leaf.grad.numpy(), **TOL[dtype])


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=5).map(tuple), data=st.data())
def test_flatten_matches_torch(shape, data):
    start = data.draw(st.integers(-len(shape), len(shape) - 1))
    end = data.draw(st.integers(-len(shape), len(shape) - 1))
    if start % len(shape) > end % len(shape):
        start, end = end, start
    x = np.random.default_rng(0).standard_normal(shape)
    out, cache = flatten_forward(x, start_dim=start, end_dim=end)
    np.testing.assert_array_equal(out, torch.flatten(torch.tensor(x), start, end).numpy())
    dout = np.random.default_rng(1).standard_normal(out.shape)
    np.testing.assert_array_equal(flatten_backward(dout, cache), dout.reshape(shape))


def test_flatten_default_keeps_the_batch_dimension():
    x = np.zeros((2, 3, 4, 5))
    assert flatten_forward(x)[0].shape == (2, 60)
    (err,) = check_backward(
        flatten_forward, flatten_backward, [np.random.default_rng(0).standard_normal((2, 3, 4))]
    )
    assert err <= GRAD_TOL


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: linear_forward(np.zeros((2, 3)), np.zeros((4, 2))), ValueError, "weight"),
        (lambda: linear_forward(np.zeros((2, 3)), np.zeros(3)), ValueError, "weight"),
        (
            lambda: linear_forward(np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(3)),
            ValueError,
            "bias",
        ),
        (
            lambda: linear_forward(np.zeros((2, 3)), np.zeros((4, 3), np.float32)),
            TypeError,
            "weight",
        ),
        (lambda: linear_forward(np.zeros((2, 3), int), np.zeros((4, 3))), TypeError, "input"),
        (lambda: linear_forward(np.float64(1.0), np.zeros((4, 1))), TypeError, "input"),
        (lambda: flatten_forward(np.zeros((2, 3)), start_dim=2), ValueError, "start_dim"),
        (
            lambda: flatten_forward(np.zeros((2, 3)), start_dim=1, end_dim=0),
            ValueError,
            "start_dim must not come after end_dim",
        ),
        (lambda: flatten_forward(np.zeros((2, 3)), end_dim=1.0), TypeError, "end_dim"),
    ],
)
def test_bad_inputs_raise(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_flatten_names_itself_and_the_valid_dims():
    with pytest.raises(ValueError, match=r"^flatten_forward: start_dim must be in \[-3, 2\] for a "
                                         r"3-D input, got 5"):
        flatten_forward(np.ones((2, 3, 4)), start_dim=5)


def test_flatten_of_a_scalar_has_one_element_as_in_torch():
    out, cache = flatten_forward(np.array(3.0), start_dim=0)
    assert out.shape == tuple(torch.flatten(torch.tensor(3.0)).shape) == (1,)
    assert flatten_backward(np.array([2.0]), cache).shape == ()


def test_linear_shape_mismatch_names_the_function_and_both_shapes():
    with pytest.raises(ValueError, match=r"^linear_forward: weight must have in_features = "
                                         r"input\.shape\[-1\] = 3 columns, got weight of shape "
                                         r"\(4, 5\)$"):
        linear_forward(np.ones((2, 3)), np.ones((4, 5)))
