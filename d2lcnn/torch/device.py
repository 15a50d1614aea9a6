"""Pick the compute device once per notebook or script."""

import torch

__all__ = ["device"]


def device(name: str = "auto") -> torch.device:
    """Return a ``torch.device``.

    Args:
        name: ``"auto"`` picks CUDA if available, else the CPU. Apple's MPS must be asked
            for by name (``"mps"``): it has no float64, which the book uses to compare its
            implementations exactly, so choosing it silently would break those cells.
            Anything else (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) is passed to
            ``torch.device`` after checking that it is available.

    Raises:
        ValueError: if the named device is not available on this machine.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device: expected 'auto', 'cpu', 'cuda[:N]' or 'mps', got {name!r}"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r} requested but CUDA is not available on this machine")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device: {name!r} requested but MPS is not available on this machine")
    return dev
