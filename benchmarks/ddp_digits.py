"""Data-parallel LeNet-5 on the digits, on the CPU: 2 processes equal 1 at the same global batch.

    GLOO_SOCKET_IFNAME=lo torchrun --standalone --nproc_per_node=2 benchmarks/ddp_digits.py
    python benchmarks/ddp_digits.py                      # the single-process reference

(``make ddp-demo`` runs both.) The script is the same for both: ``fit`` finds torchrun's
environment, joins the ranks in a gloo group on the loopback interface, wraps the model in
``DistributedDataParallel``, gives each rank half of every global batch of 64 and sums the
metrics across ranks. The single process draws its batches in the same order (a
``DistributedSampler`` of one replica: the permutation of seed + epoch, as every rank
draws it), so the two runs print the same global numbers up to float32 round-off: the
gradient of a batch of 64 equals the mean of the gradients of its two halves of 32.

Recipe: LeNet-5 (ReLU, max pooling) on ``load_dataset("digits", size=32)`` (1,259 training
images; ``drop_last`` keeps 19 full global batches per epoch on 1 or 2 ranks alike), AdamW,
no augmentation (a random transform would draw its numbers per rank). No network access.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from d2lcnn.data import load_dataset, make_loader
from d2lcnn.torch.models import LeNet5
from d2lcnn.train import evaluate, fit, seed_everything

GLOBAL_BATCH = 64


def main(epochs: int, seed: int = 0) -> None:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    launched = "RANK" in os.environ  # by torchrun: fit makes the process group from this
    data = load_dataset("digits", size=32, seed=seed)
    if launched:
        # what any script does: fit shards it with a DistributedSampler (seed = this seed)
        train = make_loader(
            data.x_train,
            data.y_train,
            batch_size=GLOBAL_BATCH // world_size,
            shuffle=True,
            seed=seed,
            drop_last=True,
        )
    else:
        # the reference: one replica of the same sampler, so the same batches in the same order
        dataset = make_loader(data.x_train, data.y_train, batch_size=1, shuffle=False).dataset
        sampler = DistributedSampler(
            dataset, num_replicas=1, rank=0, shuffle=True, seed=seed, drop_last=True
        )
        train = DataLoader(dataset, batch_size=GLOBAL_BATCH, sampler=sampler, drop_last=True)
    val = make_loader(data.x_val, data.y_val, batch_size=256, shuffle=False)
    test = make_loader(data.x_test, data.y_test, batch_size=256, shuffle=False)

    seed_everything(seed)  # the same initial weights on every rank (DDP also copies rank 0's)
    model = LeNet5(10, activation=nn.ReLU, pool="max")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=5e-4)
    start = time.perf_counter()
    history = fit(model, train, val, epochs=epochs, optimizer=optimizer, device="cpu")
    seconds = time.perf_counter() - start
    test_loss, test_acc = evaluate(model, test)  # sharded and summed across ranks too
    if int(os.environ.get("RANK", "0")) != 0:
        return
    print(
        f"{world_size} process(es) x batch {GLOBAL_BATCH // world_size} "
        f"(global batch {GLOBAL_BATCH}), {torch.get_num_threads()} thread(s) each, "
        f"{len(history.steps)} steps, {seconds:.1f} s"
    )
    print("epoch  train loss  train acc   val loss    val acc")
    for e in history.epochs:
        print(
            f"{e.epoch:>5} {e.train_loss:>11.5f} {e.train_accuracy:>10.4%} "
            f"{e.val_loss:>10.5f} {e.val_accuracy:>10.4%}"
        )
    print(f"test loss {test_loss:.5f}, test accuracy {test_acc:.4%} ({len(data.y_test)} images)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    main(parser.parse_args().epochs)
