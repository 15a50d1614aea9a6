"""Device selection: 'auto' never fails, respects float64, and unavailable devices are
refused clearly."""

import pytest
import torch

from d2lcnn import torch as td


def _mps():
    return torch.backends.mps.is_available()


def test_auto_prefers_cuda_then_mps_then_cpu():
    expected = "cuda" if torch.cuda.is_available() else "mps" if _mps() else "cpu"
    assert td.device("auto").type == expected
    assert td.device().type == expected


def test_auto_with_float64_never_picks_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert td.device("auto").type == "mps"
    assert td.device("auto", dtype=torch.float32).type == "mps"
    assert td.device("auto", dtype=torch.float64).type == "cpu"
    with pytest.raises(ValueError, match="'mps' cannot compute in torch.float64"):
        td.device("mps", dtype=torch.float64)


def test_explicit_cpu_and_errors(monkeypatch):
    assert td.device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"expected 'auto', 'cpu', 'cuda\[:N\]' or 'mps'"):
        td.device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="'cuda:1' requested but CUDA is not available"):
        td.device("cuda:1")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="'mps' requested but MPS is not available"):
        td.device("mps")
