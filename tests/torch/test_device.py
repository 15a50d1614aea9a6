"""Device selection: 'auto' never fails, and unavailable devices are refused clearly."""

import pytest
import torch

from d2lcnn import torch as td


def test_auto_is_cuda_when_available_else_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert td.device("auto").type == expected
    assert td.device().type == expected


def test_explicit_cpu_and_errors():
    assert td.device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"expected 'auto', 'cpu', 'cuda\[:N\]' or 'mps'"):
        td.device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda:1' requested but CUDA is not available"):
            td.device("cuda:1")
