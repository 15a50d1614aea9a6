"""A per-layer table of a model: output shapes, parameters, activation memory and MACs.

:func:`summary` runs one forward pass with a forward hook on every leaf module (a module with
no children) and records, per call:

- ``output_shape``: the shape of the tensor the module returned;
- ``params``: the parameters the module owns directly;
- ``activation_bytes``: output elements x bytes per element of ``dtype``, the memory the
  forward pass must keep for that output;
- ``macs``: multiply-adds, counted only for convolutions and linear layers::

      Conv2d:           N * C_out * H_out * W_out * (C_in / groups) * kH * kW
      ConvTranspose2d:  N * C_in * H_in * W_in * (C_out / groups) * kH * kW
      Linear:           (number of input rows) * in_features * out_features

  Bias additions, normalization, activations and pooling count as zero, the convention of
  the VGG, GoogLeNet and ResNet papers' "FLOPs" columns (which count multiply-adds).

By default the pass runs on the ``meta`` device: a parameter-free copy of the model sees
tensors that have shapes but no storage, so summarizing VGG-16 or ResNet-152 at 224x224 costs
no memory and almost no time. The model you pass in is never modified.

Example::

    >>> import torch
    >>> from d2lcnn.summary import summary
    >>> from d2lcnn.torch.models import vgg16
    >>> with torch.device("meta"):  # build without allocating the weights
    ...     net = vgg16()
    >>> table = summary(net, (1, 3, 224, 224))  # or (3, 224, 224): one image
    >>> table.total_params
    138357544
"""

from __future__ import annotations

import copy
import html
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["LayerRow", "Summary", "summary", "count_macs"]


@dataclass(frozen=True)
class LayerRow:
    """One leaf-module call of the forward pass."""

    name: str  # qualified module name, e.g. "features.0"; "#2" is appended on a repeat call
    type: str  # the module's class name, e.g. "Conv2d"
    output_shape: tuple[int, ...]  # shape of the (first) tensor the module returned
    params: int  # parameters owned by this module itself (not its children)
    activation_bytes: int  # output elements x bytes per element
    macs: int  # multiply-adds (conv / transposed conv / linear only; 0 otherwise)

    @property
    def output_numel(self) -> int:
        """Number of elements in the output."""
        n = 1
        for s in self.output_shape:
            n *= s
        return n


class Summary(list):
    """A list of :class:`LayerRow` with totals and a printable table.

    Totals: ``total_params`` / ``trainable_params`` count every parameter of the model once
    (shared parameters are not double counted, parameters of non-leaf modules are included);
    ``total_macs`` and ``total_activation_bytes`` sum the rows.
    """

    def __init__(
        self,
        rows: Sequence[LayerRow],
        *,
        input_shape: tuple[int, ...],
        dtype: torch.dtype,
        total_params: int,
        trainable_params: int,
    ):
        super().__init__(rows)
        self.input_shape = tuple(input_shape)
        self.dtype = dtype
        self.total_params = total_params
        self.trainable_params = trainable_params

    @property
    def total_macs(self) -> int:
        """Multiply-adds of the whole forward pass (for the whole batch)."""
        return sum(r.macs for r in self)

    @property
    def total_activation_bytes(self) -> int:
        """Bytes of all leaf-module outputs of the forward pass (for the whole batch)."""
        return sum(r.activation_bytes for r in self)

    @property
    def input_bytes(self) -> int:
        """Bytes of the input tensor."""
        n = 1
        for s in self.input_shape:
            n *= s
        return n * _itemsize(self.dtype)

    @property
    def param_bytes(self) -> int:
        """Bytes to store the parameters in ``dtype``."""
        return self.total_params * _itemsize(self.dtype)

    def _table(self) -> tuple[list[str], list[list[str]], list[str]]:
        header = ["Layer", "Type", "Output shape", "Params", "Act. bytes", "MACs"]
        body = [
            [
                r.name,
                r.type,
                str(list(r.output_shape)),
                f"{r.params:,}",
                f"{r.activation_bytes:,}",
                f"{r.macs:,}",
            ]
            for r in self
        ]
        footer = [
            "Total",
            "",
            f"input {list(self.input_shape)}",
            f"{self.total_params:,}",
            f"{self.total_activation_bytes:,}",
            f"{self.total_macs:,}",
        ]
        return header, body, footer

    def __str__(self) -> str:
        header, body, footer = self._table()
        rows = [header, *body, footer]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        right = {3, 4, 5}  # numbers are right-aligned

        def fmt(row: list[str]) -> str:
            cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
                     enumerate(zip(row, widths, strict=True))]
            return "  ".join(cells).rstrip()

        rule = "-" * len(fmt(header))
        lines = [fmt(header), rule, *(fmt(r) for r in body), rule, fmt(footer)]
        lines.append(
            f"Trainable params: {self.trainable_params:,}   "
            f"Activations: {self.total_activation_bytes / 2**20:,.2f} MiB   "
            f"MACs: {self.total_macs / 1e9:,.3f} G   ({self.dtype})"
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"Summary({len(self)} rows, total_params={self.total_params:,}, "
            f"total_macs={self.total_macs:,}, "
            f"total_activation_bytes={self.total_activation_bytes:,})"
        )

    def _repr_html_(self) -> str:
        header, body, footer = self._table()
        esc = html.escape

        def tr(cells: list[str], tag: str) -> str:
            tds = "".join(
                f'<{tag} style="text-align:{"right" if i >= 3 else "left"}">{esc(c)}</{tag}>'
                for i, c in enumerate(cells)
            )
            return f"<tr>{tds}</tr>"

        return (
            "<table>"
            f"<thead>{tr(header, 'th')}</thead>"
            f"<tbody>{''.join(tr(r, 'td') for r in body)}</tbody>"
            f"<tfoot>{tr(footer, 'th')}</tfoot>"
            "</table>"
        )


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def count_macs(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    """Multiply-adds of one call of ``module`` (conv, transposed conv, linear; else 0)."""
    if isinstance(module, nn.Conv2d):
        # torch also takes an unbatched (C, H, W) input: then N = 1
        n = output.shape[0] if output.dim() == 4 else 1
        c_out, h_out, w_out = output.shape[-3:]
        kh, kw = module.kernel_size
        return n * c_out * h_out * w_out * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.ConvTranspose2d):
        x = inputs[0]
        n = x.shape[0] if x.dim() == 4 else 1
        c_in, h_in, w_in = x.shape[-3:]
        kh, kw = module.kernel_size
        # every input pixel scatters a (C_out/groups, kH, kW) block
        return n * c_in * h_in * w_in * (module.out_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        rows = output.numel() // module.out_features
        return rows * module.in_features * module.out_features
    return 0


def _first_tensor(out) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (list, tuple)):
        for o in out:
            t = _first_tensor(o)
            if t is not None:
                return t
    return None


def _all_tensors(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _all_tensors(o)]
    return []


def _meta_copy(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A deep copy of ``model`` whose parameters and buffers live on the meta device.

    The memo maps every tensor to its storage-free twin before ``deepcopy`` runs, so the real
    weights are never copied.
    """
    memo: dict[int, object] = {}
    for p in model.parameters():
        d = dtype if p.is_floating_point() else p.dtype
        memo[id(p)] = nn.Parameter(
            torch.empty(p.shape, dtype=d, device="meta"), requires_grad=p.requires_grad
        )
    for b in model.buffers():
        d = dtype if b.is_floating_point() else b.dtype
        memo[id(b)] = torch.empty(b.shape, dtype=d, device="meta")
    return copy.deepcopy(model, memo)


def summary(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "meta",
) -> Summary:
    """Run one forward pass of ``model`` and tabulate every leaf-module call.

    Args:
        model: any ``nn.Module``; it is not modified (on ``meta`` a storage-free copy runs;
            on another device the model itself runs in eval mode under ``torch.no_grad`` and
            its training flags are restored afterwards).
        input_shape: the input shape including the batch dimension, e.g.
            ``(1, 3, 224, 224)``. A 3-tuple ``(C, H, W)`` (torchsummary's habit) is read as
            one image and becomes ``(1, C, H, W)``: the rows and ``Summary.input_shape``
            then show a batch of 1. Other lengths are used as given (``(N, D)`` for an MLP);
            a model whose batched input has 3 dimensions (``(N, C, L)``) is out of scope.
        dtype: element type of the input (and of the meta copy's parameters); sets the bytes
            per element in ``activation_bytes``.
        device: ``"meta"`` (default: shapes only, no memory) or a real device, in which case
            the model must already live there with parameters of ``dtype``.

    Returns:
        A :class:`Summary`: a list of :class:`LayerRow` (in call order) with totals.
    """
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) < 1 or any(s <= 0 for s in input_shape):
        raise ValueError(f"summary: input_shape must be positive sizes, got {input_shape}")
    given = input_shape
    if len(input_shape) == 3:  # (C, H, W): one image, as torchsummary reads it
        input_shape = (1, *input_shape)
    if not dtype.is_floating_point:
        raise TypeError(f"summary: dtype must be a floating dtype, got {dtype}")
    device = torch.device(device)
    total_params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    if device.type == "meta":
        net = _meta_copy(model, dtype)
    else:
        net = model
    modes = {m: m.training for m in net.modules()}
    net.eval()  # BatchNorm on a batch of one and dropout must not depend on the mode

    itemsize = _itemsize(dtype)
    rows: list[LayerRow] = []
    calls: dict[str, int] = {}
    handles = []

    def make_hook(name: str):
        def hook(module: nn.Module, inputs: tuple, output) -> None:
            calls[name] = calls.get(name, 0) + 1
            label = name if calls[name] == 1 else f"{name}#{calls[name]}"
            first = _first_tensor(output)
            shape = tuple(first.shape) if first is not None else ()
            numel = sum(t.numel() for t in _all_tensors(output))
            rows.append(
                LayerRow(
                    name=label,
                    type=type(module).__name__,
                    output_shape=shape,
                    params=sum(p.numel() for p in module.parameters(recurse=False)),
                    activation_bytes=numel * itemsize,
                    macs=count_macs(module, inputs, first) if first is not None else 0,
                )
            )

        return hook

    for name, module in net.named_modules():
        if next(module.children(), None) is None:  # a leaf: no child modules
            handles.append(module.register_forward_hook(make_hook(name or type(net).__name__)))
    try:
        x = torch.zeros(input_shape, dtype=dtype, device=device)
        with torch.no_grad():
            net(x)
    except Exception as e:
        if given != input_shape:
            e.add_note(f"summary read input_shape {given} as one (C, H, W) image, "
                       f"{input_shape}, as it reads every 3-tuple (it is made for image models)")
        raise
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.training = training
    return Summary(
        rows,
        input_shape=input_shape,
        dtype=dtype,
        total_params=total_params,
        trainable_params=trainable,
    )
