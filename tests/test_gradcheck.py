"""The numerical-gradient helpers catch wrong gradients and pass right ones."""

import numpy as np
import pytest

from d2lcnn.gradcheck import check_backward, numerical_gradient, numerical_gradient_array, rel_error


def test_rel_error():
    assert rel_error(np.ones(3), np.ones(3)) == 0.0
    assert rel_error([1.0, 2.0], [1.0, 2.2]) == pytest.approx(0.2 / 4.2)
    with pytest.raises(ValueError, match=r"shapes differ, got x \(2,\) and y \(3,\)"):
        rel_error(np.ones(2), np.ones(3))


def test_numerical_gradient_of_a_quadratic_and_x_is_restored():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4))
    x = rng.standard_normal(4)
    x0 = x.copy()
    grad = numerical_gradient(lambda: x @ a @ x, x)
    assert rel_error(grad, (a + a.T) @ x) < 1e-8
    np.testing.assert_array_equal(x, x0)


def test_numerical_gradient_array_is_a_vector_jacobian_product():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 5))
    x = rng.standard_normal(5)
    dout = rng.standard_normal(3)
    assert rel_error(numerical_gradient_array(lambda: np.tanh(w @ x), x, dout),
                     w.T @ (dout * (1 - np.tanh(w @ x) ** 2))) < 1e-8


def _affine_forward(x, w, b):
    return x @ w + (0 if b is None else b), (x, w, b)


def _affine_backward(dout, cache):
    x, w, b = cache
    return dout @ w.T, x.T @ dout, None if b is None else dout.sum(0)


def test_check_backward_accepts_a_correct_pair_and_rejects_a_wrong_one():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    assert max(check_backward(_affine_forward, _affine_backward, [x, w, b])) < 1e-8
    assert check_backward(_affine_forward, _affine_backward, [x, w, None])[2] is None

    def wrong_backward(dout, cache):
        dx, dw, db = _affine_backward(dout, cache)
        return dx, dw * 1.01, db

    errors = check_backward(_affine_forward, wrong_backward, [x, w, b])
    assert errors[0] < 1e-8 and errors[1] > 1e-3


def test_check_backward_reports_shape_and_count_mistakes():
    x, w = np.ones((2, 3)), np.ones((3, 2))
    with pytest.raises(ValueError, match="returned 2 gradients for 3 inputs"):
        check_backward(_affine_forward, lambda d, c: (d, d), [x, w, None])
    with pytest.raises(ValueError, match=r"gradient 1 has shape \(2, 3\), expected \(3, 2\)"):
        check_backward(_affine_forward, lambda d, c: (d @ w.T, x, None), [x, w, None])


def test_float32_is_refused():
    x = np.ones(3, dtype=np.float32)
    with pytest.raises(TypeError, match="x must be float64.*got float32"):
        numerical_gradient(lambda: float(x.sum()), x)
    with pytest.raises(TypeError, match="floating-point numpy array, got int64"):
        numerical_gradient(lambda: 0.0, np.ones(3, dtype=np.int64))


def test_check_backward_upstream_gradient_is_not_the_callers_first_draw():
    # BatchNorm's input gradient is orthogonal to x_hat; if dout were the same draw as x
    # (both from default_rng(0)), the analytic gradient would be ~0 and the check useless.
    from d2lcnn.numpy import batch_norm_backward, batch_norm_forward

    x = np.random.default_rng(0).standard_normal((8, 3))

    def forward(x):
        return batch_norm_forward(x, None, None, training=True)

    def backward(dout, cache):
        return batch_norm_backward(dout, cache)[0]

    (err,) = check_backward(forward, backward, [x], seed=0)
    assert err < 1e-7
