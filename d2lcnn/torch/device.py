"""Pick the compute device once per notebook or script."""

import torch

__all__ = ["device"]


def device(name: str = "auto", *, dtype: torch.dtype | None = None) -> torch.device:
    """Return a ``torch.device``.

    Args:
        name: ``"auto"`` picks CUDA if available, then Apple's MPS, then the CPU; anything
            else (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) is passed to
            ``torch.device`` after checking that it is available.
        dtype: the floating-point type the caller will compute in. MPS has no float64, so
            ``device("auto", dtype=torch.float64)`` skips it (the chapters compare their
            implementations in float64 this way), and asking for ``"mps"`` with float64
            is an error. Default None (no constraint).

    Raises:
        ValueError: if the named device is not available on this machine or cannot compute
            in ``dtype``.

    Example:
        >>> device("auto", dtype=torch.float64).type in ("cuda", "cpu")
        True
    """
    needs_float64 = dtype == torch.float64
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if not needs_float64 and _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device: expected 'auto', 'cpu', 'cuda[:N]' or 'mps', got {name!r}"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r} requested but CUDA is not available on this machine")
    if dev.type == "mps":
        if not _mps_available():
            raise ValueError(f"device: {name!r} requested but MPS is not available on this machine")
        if needs_float64:
            raise ValueError("device: 'mps' cannot compute in torch.float64; use 'cpu' or 'cuda'")
    return dev


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()
