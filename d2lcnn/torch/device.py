"""Pick the compute device once per notebook or script."""

import torch

__all__ = ["device"]


def device(name: str = "auto") -> torch.device:
    """Return a ``torch.device``.

    Args:
        name: ``"auto"`` picks CUDA if available, then Apple's MPS, then the CPU;
            anything else (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) is passed to
            ``torch.device`` after checking that it is available.

    Raises:
        ValueError: if the named device is not available on this machine.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: expected 'auto', 'cpu', 'cuda[:N]' or 'mps', got {name!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r} requested but CUDA is not available on this machine")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device: {name!r} requested but MPS is not available on this machine")
    return dev
