"""Data parallelism on this CPU: 2 ranks x 1 thread against 1 rank x 2 threads, LeNet-5 on the
digits at the same global batch (samples per second, and the scaling efficiency).

    python benchmarks/bench_ddp.py [--quick]

LeNet-5 (``d2lcnn.torch.models.LeNet5``, ReLU, max pooling) trained with
``d2lcnn.train.fit`` on ``load_dataset("digits", size=32)`` (1,259 training images), SGD with
momentum, global batch 64, ``drop_last`` (19 full global batches per epoch on 1 or 2 ranks),
no validation, ``num_workers=0``. The script starts itself under torchrun (2 processes,
``gloo`` on the loopback interface only) and both configurations run in that one launch,
alternating round by round so that load from other processes hits both alike:

- **2 ranks x 1 thread**: ``fit(..., distributed="auto")`` on both ranks, 32 images per rank
  per step: ``DistributedDataParallel`` all-reduces the gradients over loopback;
- **1 rank x 2 threads**: ``fit(..., distributed=False)`` on rank 0 alone with 2 intra-op
  threads and the whole batch of 64, while rank 1 waits at a barrier;
- **1 rank x 1 thread**, the same with one thread: the reference that tells whether the
  second thread helps at all (on a machine busy with other work it can make things slower).

Throughput = images trained between the end of the first and of the last step of a round,
divided by the time between them (process start-up, torch's import, the process group and
the first step are excluded). Median over the rounds. Scaling efficiency = throughput(2 ranks
x 1 thread) / throughput(1 rank x 2 threads): 1 would mean that two processes use the two
cores as well as one process with two threads does. No network access beyond loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

GLOBAL_BATCH = 64
EPOCHS_PER_ROUND = 1  # 19 steps of the global batch
CONFIGS = (  # name, ranks, threads per rank
    ("2 ranks x 1 thread", 2, 1),
    ("1 rank x 2 threads", 1, 2),
    ("1 rank x 1 thread", 1, 1),
)


def worker(rounds: int, out: str) -> None:
    """One of the 2 ranks: ``rounds`` rounds of every configuration in :data:`CONFIGS`."""
    import torch
    import torch.distributed as dist
    from torch import nn

    from d2lcnn.data import load_dataset, make_loader
    from d2lcnn.torch.models import LeNet5
    from d2lcnn.train import fit, seed_everything

    dist.init_process_group("gloo")  # from torchrun's environment; fit joins this group
    rank, world = dist.get_rank(), dist.get_world_size()
    data = load_dataset("digits", size=32, seed=0)

    def images_per_second(history) -> float:
        steps = history.steps
        images = (len(steps) - 1) * GLOBAL_BATCH  # the steps after the first
        return images / (steps[-1].time - steps[0].time)

    def train(batch_size: int, distributed: bool) -> float:
        seed_everything(0)
        model = LeNet5(10, activation=nn.ReLU, pool="max")
        loader = make_loader(data.x_train, data.y_train, batch_size=batch_size, shuffle=True,
                             seed=0, drop_last=True)
        history = fit(model, loader, epochs=EPOCHS_PER_ROUND, device="cpu", progress=False,
                      live_plot=False, distributed=distributed,
                      optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
        return images_per_second(history)

    results = {name: [] for name, _, _ in CONFIGS}
    for _ in range(rounds):
        for name, ranks, threads in CONFIGS:
            torch.set_num_threads(threads)
            dist.barrier()
            if ranks == world:
                results[name].append(train(GLOBAL_BATCH // world, distributed=True))
            elif rank == 0:
                results[name].append(train(GLOBAL_BATCH, distributed=False))
            dist.barrier()  # rank 1 waits here, blocked on a socket, while rank 0 trains alone
    if rank == 0:
        results["torch"] = torch.__version__
        model = LeNet5(10, activation=nn.ReLU, pool="max")
        results["parameters"] = sum(p.numel() for p in model.parameters())
        Path(out).write_text(json.dumps(results))
    dist.destroy_process_group()


def launch(rounds: int) -> dict:
    """Run :func:`worker` on 2 ranks under torchrun (loopback only); rank 0's results."""
    loopback = "lo0" if sys.platform == "darwin" else "lo"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "results.json")
        run = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
             __file__, "--worker", "--rounds", str(rounds), "--out", str(out)],
            env={**os.environ, "GLOO_SOCKET_IFNAME": loopback, "OMP_NUM_THREADS": "1"},
            capture_output=True, text=True, timeout=600,
        )
        if run.returncode != 0:
            raise RuntimeError(f"the 2-rank run failed:\n{run.stderr[-3000:]}")
        return json.loads(out.read_text())


def report(results: dict, rounds: int) -> None:
    median = {name: statistics.median(results[name]) for name, _, _ in CONFIGS}
    ddp, single = median["2 ranks x 1 thread"], median["1 rank x 2 threads"]
    print(f"LeNet-5 on digits 32x32, global batch {GLOBAL_BATCH}, {rounds} alternating rounds "
          f"of {EPOCHS_PER_ROUND} epoch(s) per configuration;\nimages/s, median (min-max)")
    head = f"{'configuration':<22} {'per rank':>9} {'images/s':>9} {'range':>15}"
    print(head)
    print("-" * len(head))
    for name, ranks, _ in CONFIGS:
        values = results[name]
        print(f"{name:<22} {'batch ' + str(GLOBAL_BATCH // ranks):>9} {median[name]:9.0f} "
              f"{f'{min(values):.0f}-{max(values):.0f}':>15}")
    print(f"scaling efficiency (2 ranks x 1 thread / 1 rank x 2 threads): {ddp / single:.2f}")
    mb = 4 * results["parameters"] / 1e6  # float32 gradients
    if single < median["1 rank x 1 thread"]:
        print("Here 2 threads were SLOWER than 1 in the same process: other programs keep the "
              "cores busy, and\nintra-op threads that must wait for each other at every "
              "operator lose far more from that than\nseparate processes do, so the efficiency "
              "above says more about the load than about data\nparallelism. Rerun on an idle "
              "machine (see the load average above).")
    print(f"Why it can be below 1 on a 2-core CPU: the single process already uses both cores "
          f"(its 2 intra-op\nthreads split every convolution and matrix product), so the 2 "
          f"ranks have no idle core to gain;\ninstead each step adds a gloo all-reduce of "
          f"LeNet-5's {results['parameters']:,} gradients ({mb:.2f} MB) over\nloopback, and "
          f"each rank waits there for the slower one. Start-up (two more processes importing\n"
          f"torch, the process group) is excluded above and costs seconds more.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds instead of 5")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.rounds, args.out)
        return
    rounds = 2 if args.quick else 5
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"python {platform.python_version()}, {platform.machine()}, {platform.system()}, "
          f"{os.cpu_count()} logical CPUs, load average {load} (1, 5, 15 min)")
    results = launch(rounds)
    print(f"torch {results['torch']}, gloo over loopback\n")
    report(results, rounds)


if __name__ == "__main__":
    main()
