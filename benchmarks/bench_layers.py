"""NumPy layers vs torch on the CPU, float32, same thread count: max pooling, batch norm, and
one full LeNet training step (forward, loss, backward, SGD step).

    python benchmarks/bench_layers.py [--quick]

torch gets as many threads as NumPy's BLAS (threadpoolctl). Each case checks the two agree
before timing, then interleaves the repeats (numpy, torch, numpy, ...) so that load from
other processes hits both alike, and prints median and min per call and the ratio
NumPy / torch of the medians. The BLAS environment is left as it is.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_info
from torch import nn as tnn

from d2lcnn.numpy import nn
from d2lcnn.numpy.losses import cross_entropy_backward, cross_entropy_forward
from d2lcnn.numpy.norm import batch_norm_backward, batch_norm_forward
from d2lcnn.numpy.optim import SGD
from d2lcnn.numpy.pool import max_pool2d_backward, max_pool2d_forward


def blas_threads() -> tuple[int, str]:
    """Threads and kernel of numpy's OpenBLAS (the first BLAS found)."""
    for lib in threadpool_info():
        if lib["user_api"] == "blas" and "numpy" in lib["filepath"]:
            return lib["num_threads"], f"{lib['internal_api']} {lib.get('architecture')}"
    return 1, "unknown"


def interleaved(fns: dict, repeats: int, warmup: int = 2) -> dict[str, np.ndarray]:
    for f in fns.values():
        for _ in range(warmup):
            f()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: np.array(v) for k, v in times.items()}


# --------------------------------------------------------------------------- cases


def case_max_pool(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)  # (N, C, H, W)
    dout = rng.standard_normal((*shape[:2], shape[2] // 2, shape[3] // 2), dtype=np.float32)
    xt, doutt = torch.tensor(x, requires_grad=True), torch.tensor(dout)

    def run_numpy():
        out, cache = max_pool2d_forward(x, kernel_size=2, stride=2)
        return out, max_pool2d_backward(dout, cache)

    def run_torch():
        xt.grad = None
        out = F.max_pool2d(xt, 2, 2)
        out.backward(doutt)
        return out, xt.grad

    (o, dx), (ot, dxt) = run_numpy(), run_torch()
    np.testing.assert_array_equal(o, ot.detach().numpy())
    np.testing.assert_array_equal(dx, dxt.numpy())
    return run_numpy, run_torch


def case_batch_norm(shape):
    rng = np.random.default_rng(1)
    c = shape[1]
    x = rng.standard_normal(shape, dtype=np.float32)
    dout = rng.standard_normal(shape, dtype=np.float32)
    gamma, beta = np.ones(c, np.float32), np.zeros(c, np.float32)
    rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.ones(c, requires_grad=True)
    bt = torch.zeros(c, requires_grad=True)
    rmt, rvt, doutt = torch.zeros(c), torch.ones(c), torch.tensor(dout)

    def run_numpy():
        out, cache = batch_norm_forward(x, rm, rv, gamma, beta, training=True)
        return out, batch_norm_backward(dout, cache)[0]

    def run_torch():
        xt.grad = gt.grad = bt.grad = None
        out = F.batch_norm(xt, rmt, rvt, gt, bt, training=True)
        out.backward(doutt)
        return out, xt.grad

    (o, dx), (ot, dxt) = run_numpy(), run_torch()
    np.testing.assert_allclose(o, ot.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, dxt.numpy(), rtol=1e-3, atol=1e-4)
    return run_numpy, run_torch


def lenet_pair():
    rng = np.random.default_rng(2)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120, rng=rng),
        nn.ReLU(),
        nn.Linear(120, 84, rng=rng),
        nn.ReLU(),
        nn.Linear(84, 10, rng=rng),
    )
    tmodel = tnn.Sequential(
        tnn.Conv2d(1, 6, 5),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(6, 16, 5),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Linear(400, 120),
        tnn.ReLU(),
        tnn.Linear(120, 84),
        tnn.ReLU(),
        tnn.Linear(84, 10),
    )
    model.load_state_dict(tmodel.state_dict())
    return model, tmodel


def case_lenet_step(batch):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.kron(digits.images[:batch] / 16.0, np.ones((4, 4)))[:, None].astype(np.float32)
    y = digits.target[:batch]
    xt, yt = torch.tensor(x), torch.tensor(y)
    model, tmodel = lenet_pair()
    opt = SGD(model.parameters(), lr=0.02, momentum=0.9)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.02, momentum=0.9)

    def run_numpy():
        logits = model.forward(x, training=True)  # (B, 10)
        loss, cache = cross_entropy_forward(logits, y)
        model.backward(cross_entropy_backward(np.float32(1), cache))
        opt.step(model.gradients())
        return loss

    def run_torch():
        topt.zero_grad()
        loss = F.cross_entropy(tmodel(xt), yt)
        loss.backward()
        topt.step()
        return loss

    # Correctness: same loss on the first step, same weights after three.
    for _ in range(3):
        np.testing.assert_allclose(run_numpy(), run_torch().item(), rtol=1e-4)
    for name, p in tmodel.state_dict().items():
        np.testing.assert_allclose(
            model.state_dict()[name], p.numpy(), rtol=1e-3, atol=1e-5, err_msg=name
        )
    return run_numpy, run_torch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller shapes")
    args = parser.parse_args()
    threads, kernel = blas_threads()
    torch.set_num_threads(threads)
    repeats = 7 if args.quick else 25
    big = (16, 64, 32, 32) if args.quick else (64, 64, 32, 32)
    print(f"numpy {np.__version__} ({kernel}), torch {torch.__version__}; {threads} threads")
    print(f"float32, {repeats} interleaved repeats; times per call in ms\n")
    cases = [
        (f"max_pool2d 2x2 s2 fwd+bwd {big}", case_max_pool, big),
        (f"batch_norm train fwd+bwd {big}", case_batch_norm, big),
        ("LeNet train step, batch 32", case_lenet_step, 32),
        ("LeNet train step, batch 64", case_lenet_step, 64),
    ]
    head = f"{'case':<46} {'numpy med':>9} {'min':>7} {'torch med':>9} {'min':>7} {'ratio':>6}"
    print(head)
    print("-" * len(head))
    for label, make, arg in cases:
        run_numpy, run_torch = make(arg)
        t = interleaved({"numpy": run_numpy, "torch": run_torch}, repeats)
        med_n, med_t = np.median(t["numpy"]) * 1e3, np.median(t["torch"]) * 1e3
        print(
            f"{label:<46} {med_n:9.2f} {t['numpy'].min() * 1e3:7.2f} {med_t:9.2f} "
            f"{t['torch'].min() * 1e3:7.2f} {med_n / med_t:6.2f}"
        )


if __name__ == "__main__":
    main()
