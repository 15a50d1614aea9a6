"""The NumPy layers' shared argument checks (d2lcnn.numpy._checks): one message per mistake,
naming the function and the argument."""

from __future__ import annotations

import numpy as np
import pytest

from d2lcnn.numpy._checks import check_array, check_array_dict, check_dout, check_generator


@pytest.mark.parametrize(
    "a, kwargs, error, match",
    [
        ([1.0], {}, TypeError, r"^f: x must be a numpy array, got list$"),
        (np.arange(3), {}, TypeError, r"^f: x must be a floating-point array, got dtype int64$"),
        (np.zeros(3), dict(ndim=4, layout="(N, C, H, W)"), ValueError,
         r"^f: x must be 4-D \(N, C, H, W\), got 1-D shape \(3,\)$"),
        (np.zeros(3), dict(min_ndim=2), ValueError, r"^f: x must be at least 2-D, got 1-D"),
        (np.zeros(3), dict(dtype=np.float32), TypeError,
         r"^f: x must have input's dtype float32, got float64$"),
        (np.zeros(3), dict(shape=(4,), shape_formula="(C,)"), ValueError,
         r"^f: x must have shape \(C,\) = \(4,\), got \(3,\)$"),
    ],
)
def test_check_array_messages(a, kwargs, error, match):
    with pytest.raises(error, match=match):
        check_array(a, "x", "f", **kwargs)


def test_check_array_may_let_none_through():
    assert check_array(None, "weight", "f", optional=True, shape=(3,)) is None
    with pytest.raises(TypeError, match=r"^f: weight must be a numpy array or None, got list$"):
        check_array([1.0], "weight", "f", optional=True)
    with pytest.raises(TypeError, match=r"^f: weight must be a numpy array, got NoneType$"):
        check_array(None, "weight", "f")


def test_check_array_returns_the_array_and_may_allow_any_dtype():
    a = np.arange(6).reshape(2, 3)
    assert check_array(a, "x", "f", floating=False, ndim=2) is a


def test_check_dout_converts_unless_a_dtype_is_required():
    assert isinstance(check_dout([[1.0, 2.0]], (1, 2), "f"), np.ndarray)
    with pytest.raises(TypeError, match="f: dout must be a numpy array"):
        check_dout([[1.0, 2.0]], (1, 2), "f", dtype=np.float64)
    with pytest.raises(ValueError, match=r"^f: dout must have the forward output's shape \(N, C\)"):
        check_dout(np.zeros((2, 2)), (1, 2), "f", layout="(N, C)")
    with pytest.raises(TypeError, match="dout must have the forward pass's dtype float64"):
        check_dout(np.zeros((1, 2), np.float32), (1, 2), "f", dtype=np.float64)


def test_generators_and_dicts_of_arrays():
    with pytest.raises(TypeError, match=r"^f: generator must be a np.random.Generator"):
        check_generator(np.random.RandomState(0), "f")
    with pytest.raises(TypeError, match=r"^f: params must be a non-empty dict"):
        check_array_dict({}, "params", "f", nonempty=True)
    with pytest.raises(TypeError, match=r"^f: grads\['w'\] must be a floating-point numpy array"):
        check_array_dict({"w": [1.0]}, "grads", "f")
