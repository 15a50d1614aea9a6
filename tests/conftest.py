"""Test-wide settings: a headless matplotlib and hypothesis profiles.

Locally hypothesis explores new random examples on every run; under CI (``CI=true``) it is
derandomized so a green build stays green, with the same number of examples.
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("dev", deadline=None)
settings.register_profile(
    "ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev")


import pytest  # noqa: E402


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    """Every torch test that takes ``device`` runs on the CPU and, where present, on CUDA."""
    import torch

    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA is not available on this machine")
    return torch.device(request.param)


@pytest.fixture
def one_thread_and_closed_figures():
    """Torch on one thread for the test (tiny models: on a shared machine more threads only
    wait), then every matplotlib figure closed."""
    import matplotlib.pyplot as plt
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    plt.close("all")
