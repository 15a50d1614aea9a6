"""Training on the CPU: LeNet-5 on the embedded digits (accuracy and wall time against the
targets), and one ResNet-20 training step against an independent reference ResNet-20.

    python benchmarks/bench_training.py [--quick]

(a) LeNet-5 (``d2lcnn.torch.models.LeNet5``) trained with ``d2lcnn.train.fit`` on the 1,797
    scikit-learn digits upsampled to 32x32 (``load_dataset("digits", size=32)``: stratified
    70/10/20 split), seeded, ``num_workers=0``. Targets: test accuracy >= 98% in <= 20 s of
    wall time (data loading included); each is printed as PASS or MISS.
(b) ``d2lcnn.torch.models.resnet20`` vs a plain torchvision-style ResNet-20 written below
    (same option-A shortcut): one training step (forward, cross-entropy, backward, SGD
    step) on a batch of 128 random 3x32x32 images. The repeats are interleaved (ours,
    reference, ours, ...) so that load from other processes hits both alike; median and min
    per step and the ratio ours / reference of the medians, which should be ~1.00.
(c) The environment: versions and torch threads.

No network access; the digits ship with scikit-learn.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import sklearn
import torch
import torch.nn.functional as F
from torch import nn

from d2lcnn.data import load_dataset, make_loader
from d2lcnn.data.transforms import random_translate
from d2lcnn.torch.models import LeNet5, resnet20
from d2lcnn.train import evaluate, fit, seed_everything

TARGET_ACCURACY = 0.98
TARGET_SECONDS = 20.0


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


# --------------------------------------------------------------------------- (a) LeNet-5


def train_lenet(epochs: int, seed: int = 0) -> dict:
    """The recipe: ReLU + max pooling, random shifts of up to 2 px, AdamW with weight decay
    and a one-cycle learning-rate schedule stepped every batch."""
    start = time.perf_counter()
    gens = seed_everything(seed)
    data = load_dataset("digits", size=32, seed=seed)  # (N, 1, 32, 32) in [0, 1]
    # Shifts of +-2 px: the digits are upsampled 4x, so this is half an original pixel.
    train_loader = make_loader(
        data.x_train, data.y_train, batch_size=64, shuffle=True, seed=seed, num_workers=0,
        transform=lambda x: random_translate(x, 2, generator=gens.torch),
    )
    val_loader = make_loader(data.x_val, data.y_val, batch_size=512, shuffle=False)
    test_loader = make_loader(data.x_test, data.y_test, batch_size=512, shuffle=False)
    model = LeNet5(data.num_classes, activation=nn.ReLU, pool="max")
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=5e-3, total_steps=epochs * len(train_loader)
    )
    history = fit(
        model, train_loader, val_loader, epochs=epochs, optimizer=optimizer,
        scheduler=scheduler, scheduler_step="step", device="cpu", progress=False,
        live_plot=False,
    )
    _, test_acc = evaluate(model, test_loader)
    return {
        "seconds": time.perf_counter() - start,
        "test_accuracy": test_acc,
        "val_accuracy": history.epochs[-1].val_accuracy,
        "train_loss": history.epochs[-1].train_loss,
        "sizes": (len(data.y_train), len(data.y_val), len(data.y_test)),
        "stop": history.stop_reason,
    }


def report_lenet(epochs: int, seeds: list[int]) -> None:
    print(f"(a) LeNet-5 on digits 32x32, {epochs} epochs, d2lcnn.train.fit, CPU")
    head = f"{'seed':>4} {'train/val/test':>15} {'loss':>7} {'val acc':>8} {'test acc':>9} " \
           f"{'time s':>7}  accuracy  time"
    print(head)
    print("-" * len(head))
    for seed in seeds:
        r = train_lenet(epochs, seed)
        acc_ok = r["test_accuracy"] >= TARGET_ACCURACY
        time_ok = r["seconds"] <= TARGET_SECONDS
        sizes = "/".join(str(n) for n in r["sizes"])
        print(
            f"{seed:>4} {sizes:>15} {r['train_loss']:7.4f} {r['val_accuracy']:8.2%} "
            f"{r['test_accuracy']:9.2%} {r['seconds']:7.2f}  "
            f"{'PASS' if acc_ok else 'MISS':<8}  {'PASS' if time_ok else 'MISS'}"
            + (f"  (stopped: {r['stop']})" if r["stop"] else "")
        )
    print(f"targets: test accuracy >= {TARGET_ACCURACY:.0%}, wall time <= {TARGET_SECONDS:g} s "
          f"(data loading, training and evaluation)\n")


# --------------------------------------------------------------------------- (b) ResNet-20


class RefBlock(nn.Module):
    """torchvision-style BasicBlock with the CIFAR option-A (subsample + zero-pad) shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride, self.pad = stride, planes - in_planes

    def forward(self, x):
        identity = x
        if self.stride != 1 or self.pad:
            identity = x[:, :, :: self.stride, :: self.stride]
            identity = F.pad(identity, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)


class RefResNet20(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                layers.append(RefBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def report_resnet(repeats: int, batch: int = 128) -> None:
    torch.manual_seed(0)
    x = torch.rand(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    ours, ref = resnet20(), RefResNet20()
    if n_params(ours) != n_params(ref):
        raise RuntimeError(f"parameter counts differ: {n_params(ours)} vs {n_params(ref)}")

    def step_fn(model):
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        model.train()

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()

        return step

    t = interleaved({"ours": step_fn(ours), "reference": step_fn(ref)}, repeats)
    med_o, med_r = np.median(t["ours"]) * 1e3, np.median(t["reference"]) * 1e3
    print(f"(b) ResNet-20 training step, batch {batch}x3x32x32, {n_params(ours):,} parameters "
          f"each, {repeats} interleaved repeats; ms per step")
    head = f"{'model':<34} {'median':>8} {'min':>8}"
    print(head)
    print("-" * len(head))
    print(f"{'d2lcnn.torch.models.resnet20':<34} {med_o:8.1f} {t['ours'].min() * 1e3:8.1f}")
    print(f"{'reference (torchvision-style)':<34} {med_r:8.1f} "
          f"{t['reference'].min() * 1e3:8.1f}")
    print(f"ratio ours / reference (medians): {med_o / med_r:.3f}\n")


# --------------------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one LeNet run, fewer repeats")
    args = parser.parse_args()
    print(f"(c) python {platform.python_version()}, torch {torch.__version__}, "
          f"numpy {np.__version__}, scikit-learn {sklearn.__version__}")
    print(f"    torch threads {torch.get_num_threads()} (interop "
          f"{torch.get_num_interop_threads()}), {platform.machine()}, "
          f"{platform.system()}\n")
    report_lenet(epochs=50, seeds=[0] if args.quick else [0, 1, 2])
    report_resnet(repeats=5 if args.quick else 15)


if __name__ == "__main__":
    main()
