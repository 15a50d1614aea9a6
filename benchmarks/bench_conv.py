"""Time d2lcnn's NumPy convolution against ``torch.nn.functional.conv2d`` on the CPU.

Usage::

    python benchmarks/bench_conv.py                 # float32, full repeats
    python benchmarks/bench_conv.py --quick         # fewer repeats
    python benchmarks/bench_conv.py --dtype float64
    python benchmarks/bench_conv.py --unset-openblas-env

Both libraries run with the same dtype and the same number of threads (torch is set to
the BLAS thread count threadpoolctl reports for NumPy). For each shape the NumPy result is
first checked against torch (forward and all gradients), so a fast but wrong kernel cannot
report a good number. Repetitions of the four measurements are interleaved, so drifts in
machine load hit all of them alike; the table shows the median (and the minimum) over
repeats.

``--unset-openblas-env`` re-executes this script with ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` removed from its own environment (some machines pin OpenBLAS to an
older, slower kernel with them); by default the environment is left alone. The script
always says which it did and which BLAS kernel ran.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

_OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_REEXEC_MARK = "D2LCNN_BENCH_REEXECUTED"

# (name, x shape, (C_out, kH, kW), stride, padding)
SHAPES = [
    ("LeNet conv1", (64, 1, 28, 28), (6, 5, 5), 1, 0),
    ("14x14 3x3", (128, 16, 14, 14), (32, 3, 3), 1, 1),
    ("ResNet-CIFAR", (64, 64, 32, 32), (64, 3, 3), 1, 1),
    ("ResNet stem", (32, 3, 224, 224), (64, 7, 7), 2, 3),
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 9")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument(
        "--pause",
        type=float,
        default=0.2,
        help="seconds to sleep before each timed block (default 0.2), so the other "
        "library's idle worker threads stop spinning first",
    )
    parser.add_argument(
        "--block", type=int, default=3, help="back-to-back calls per timed block (default 3)"
    )
    parser.add_argument(
        "--unset-openblas-env",
        action="store_true",
        help="re-execute without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (this process only)",
    )
    return parser.parse_args(argv)


def maybe_reexec(args) -> str:
    """Re-execute without the OpenBLAS variables if asked; return what was done."""
    if os.environ.get(_REEXEC_MARK):
        return f"re-executed with {', '.join(_OPENBLAS_VARS)} unset for this process"
    present = [v for v in _OPENBLAS_VARS if v in os.environ]
    if not args.unset_openblas_env:
        shown = ", ".join(f"{v}={os.environ[v]}" for v in present) or "neither is set"
        return f"environment left alone ({shown})"
    if not present:
        return f"--unset-openblas-env: {', '.join(_OPENBLAS_VARS)} were not set; nothing to do"
    env = {k: v for k, v in os.environ.items() if k not in _OPENBLAS_VARS}
    env[_REEXEC_MARK] = "1"
    os.execve(sys.executable, [sys.executable, *sys.argv], env)
    raise AssertionError("unreachable")


def prepare(x_shape, w_shape, stride, padding, dtype, rng):
    """Inputs for one shape; returns (max error of NumPy vs torch per result, relative to
    the largest |torch value|) and the four functions to time."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from d2lcnn.numpy.conv import conv2d_backward, conv2d_forward

    x = rng.standard_normal(x_shape).astype(dtype)
    w = (rng.standard_normal(w_shape) * 0.1).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    kwargs = dict(stride=stride, padding=padding)
    out, cache = conv2d_forward(x, w, b, **kwargs)
    dout = rng.standard_normal(out.shape).astype(dtype)
    xt, wt, bt = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    dout_t = torch.from_numpy(dout)

    yt = F.conv2d(xt, wt, bt, **kwargs)
    yt.backward(dout_t)
    errors = {}
    for label, ours, ref in zip(
        ("out", "dx", "dw", "db"),
        (out, *conv2d_backward(dout, cache)),
        (yt, xt.grad, wt.grad, bt.grad),
        strict=True,
    ):
        ref = ref.detach().numpy()
        errors[label] = float(np.max(np.abs(ours - ref)) / max(np.max(np.abs(ref)), 1e-30))

    def np_fwd():
        conv2d_forward(x, w, b, **kwargs)

    def np_fwd_bwd():
        _, c = conv2d_forward(x, w, b, **kwargs)
        conv2d_backward(dout, c)

    def torch_fwd():
        with torch.no_grad():
            F.conv2d(xt, wt, bt, **kwargs)

    def torch_fwd_bwd():
        for t in (xt, wt, bt):
            t.grad = None
        F.conv2d(xt, wt, bt, **kwargs).backward(dout_t)

    fns = {"np_f": np_fwd, "t_f": torch_fwd, "np_fb": np_fwd_bwd, "t_fb": torch_fwd_bwd}
    return errors, fns


def main(argv=None) -> int:
    args = parse_args(argv)
    env_note = maybe_reexec(args)  # before numpy loads OpenBLAS

    import numpy as np
    import torch
    from threadpoolctl import threadpool_info

    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    numpy_threads = blas[0]["num_threads"] if blas else 1
    torch.set_num_threads(numpy_threads)
    dtype = np.dtype(args.dtype)
    repeats = 3 if args.quick else 9

    print(f"OpenBLAS environment: {env_note}")
    for info in blas:
        print(
            f"NumPy BLAS: {info.get('internal_api')} {info.get('version')}, kernel "
            f"{info.get('architecture')}, {info['num_threads']} threads "
            f"({os.path.basename(info.get('filepath', ''))})"
        )
    print(
        f"torch {torch.__version__}: {torch.get_num_threads()} threads "
        f"(set to NumPy's BLAS thread count), MKL {torch.backends.mkl.is_available()}, "
        f"oneDNN {torch.backends.mkldnn.is_available()}"
    )
    print(
        f"dtype {dtype}; {repeats} interleaved repeats of a block of {args.block} calls after "
        f"a {args.pause:g} s pause; per-call ms: median (min) over repeats"
    )
    print("load average before: {:.2f} {:.2f} {:.2f}\n".format(*os.getloadavg()))

    rng = np.random.default_rng(0)
    rows = []
    for name, x_shape, (c_out, kh, kw), stride, padding in SHAPES:
        errors, fns = prepare(x_shape, (c_out, x_shape[1], kh, kw), stride, padding, dtype, rng)
        # Correctness gate, once per shape, before any timing.
        tol = 1e-4 if dtype == np.float32 else 1e-10
        for label, err in errors.items():
            if not err <= tol:
                print(f"{name}: NumPy {label} differs from torch: max error {err:.2e} "
                      f"relative to max |ref|, tolerance {tol:g}. Not timing a wrong kernel.")
                return 1

        for fn in fns.values():  # warm up: workspaces, oneDNN primitives, page faults
            fn()
        times = {k: [] for k in fns}
        for _ in range(repeats):
            for key, fn in fns.items():
                time.sleep(args.pause)
                t0 = time.perf_counter()
                for _ in range(args.block):
                    fn()
                times[key].append((time.perf_counter() - t0) / args.block)
        med = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
        low = {k: 1e3 * min(v) for k, v in times.items()}
        rows.append((name, x_shape, (c_out, kh, kw, stride, padding), med, low))

    header = (
        f"{'shape':<13} {'x (N,C,H,W)':<18} {'C_out,k,s,p':<13}"
        f"{'numpy fwd':>16} {'torch fwd':>16} {'ratio':>6}"
        f"{'numpy fwd+bwd':>18} {'torch fwd+bwd':>18} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, x_shape, geo, med, low in rows:
        c_out, kh, _, s, p = geo
        cell = {k: f"{med[k]:.2f} ({low[k]:.2f})" for k in med}
        print(
            f"{name:<13} {str(x_shape):<18} {f'{c_out},{kh}x{kh},{s},{p}':<13}"
            f"{cell['np_f']:>16} {cell['t_f']:>16} {med['np_f'] / med['t_f']:>6.2f}"
            f"{cell['np_fb']:>18} {cell['t_fb']:>18} {med['np_fb'] / med['t_fb']:>6.2f}"
        )
    print("\nratio = NumPy median / torch median (below 1: NumPy faster)")
    print("load average after: {:.2f} {:.2f} {:.2f} (other work on the machine skews "
          "timings)".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
