"""Run a function in N fresh processes joined by a gloo group on the loopback interface, for
tests/test_train_distributed.py; and the workers those tests run.

Each worker gets torchrun's environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR=127.0.0.1`` and a free ``MASTER_PORT``) and one torch thread, so that
``fit(..., distributed="auto")`` finds exactly what ``torchrun`` would give it. The workers
live here, not in the test file, so that the spawned processes can import them by name.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(fn, world_size: int, *args, timeout: float = 60.0) -> list:
    """``[fn(rank, world_size, *args) for each rank]``, each run in its own process.

    A worker that raises ends the run (the workers still running are terminated) with a
    ``RuntimeError`` holding the traceback of every rank that raised; a run that takes
    longer than ``timeout`` seconds is killed and raises ``TimeoutError``.
    """
    port = free_port()
    with tempfile.TemporaryDirectory() as out:
        context = mp.start_processes(
            _worker,
            args=(fn, world_size, port, out, args),
            nprocs=world_size,
            join=False,
            start_method="spawn",
        )
        deadline = time.monotonic() + timeout
        try:
            while not context.join(timeout=1.0):
                if time.monotonic() > deadline:
                    for p in context.processes:
                        p.kill()
                    raise TimeoutError(f"{fn.__name__} on {world_size} ranks took over {timeout} s")
        except (mp.ProcessRaisedException, mp.ProcessExitedException) as e:
            errors = sorted(Path(out).glob("*.err"))
            report = "\n".join(f"rank {p.stem}: {p.read_text()}" for p in errors)
            raise RuntimeError(f"{fn.__name__} failed:\n{report or e}") from e
        return [torch.load(Path(out) / f"{r}.pt", weights_only=False) for r in range(world_size)]


def _worker(rank: int, fn, world_size: int, port: int, out: str, args: tuple) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        GLOO_SOCKET_IFNAME="lo0" if sys.platform == "darwin" else "lo",  # loopback only
    )
    torch.set_num_threads(1)
    try:
        result = fn(rank, world_size, *args)
    except BaseException:
        (Path(out) / f"{rank}.err").write_text(traceback.format_exc())
        raise
    torch.save(result, Path(out) / f"{rank}.pt")
    if dist.is_initialized():
        dist.destroy_process_group()


# ----------------------------------------------------------------------------- data and models


def small_net(batch_norm: bool = False) -> nn.Module:
    """A tiny convnet for 1x8x8 inputs and 3 classes, seeded."""
    torch.manual_seed(0)
    layers = [nn.Conv2d(1, 4, 3, padding=1)]
    layers += [nn.BatchNorm2d(4)] if batch_norm else []
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)]
    return nn.Sequential(*layers)


def toy_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random 1x8x8 images and labels in 0..2 that depend on them (learnable)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean(dim=(1, 2)) > 0).long() + (x[:, 0, 4:].mean(dim=(1, 2)) > 0.2).long()
    return x, y


# ----------------------------------------------------------------------------- workers


def metrics_worker(rank: int, world_size: int, checkpoint: str) -> dict:
    """Two epochs of fit (group made by fit from the environment), then evaluate.

    Returns what the test compares across ranks and with a single process.
    """
    from d2lcnn.data import make_loader
    from d2lcnn.train import evaluate, fit

    assert not dist.is_initialized()
    x, y = toy_data(64, seed=1)
    xv, yv = toy_data(101, seed=2)  # odd: the shards are 51 and 50 samples
    train = make_loader(x, y, batch_size=8, shuffle=True, seed=3)
    val = make_loader(xv, yv, batch_size=16, shuffle=False)
    model = small_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        history = fit(
            model, train, val, epochs=2, optimizer=opt, progress=True, checkpoint=checkpoint
        )
    assert dist.is_initialized() and dist.get_world_size() == world_size
    return {
        "history": history.as_dict(),
        "evaluate": evaluate(model, val),
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "stderr": stderr.getvalue(),
        "rank": dist.get_rank(),
        "is_plain_model": type(model) is nn.Sequential,
    }


def equivalence_worker(rank: int, world_size: int, steps: int, batch: int) -> dict:
    """``steps`` steps at per-rank batch ``batch``, shuffled, in the group that is already
    initialised (``fit`` must find it, or make it when run alone); the final parameters and
    step losses, and the error ``sync_batchnorm=True`` raises on the CPU."""
    from d2lcnn.data import make_loader
    from d2lcnn.train import fit

    if not dist.is_initialized():
        dist.init_process_group("gloo", rank=rank, world_size=world_size)
    x, y = toy_data(steps * batch * world_size // 2, seed=4)  # two epochs of steps // 2
    loader = make_loader(x, y, batch_size=batch, shuffle=True, seed=5)
    model = small_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = fit(model, loader, epochs=2, optimizer=opt)
    sync_bn_error = None
    try:
        bn = small_net(batch_norm=True)
        fit(
            bn,
            loader,
            epochs=1,
            optimizer=torch.optim.SGD(bn.parameters(), lr=0.1),
            sync_batchnorm=True,
        )
    except ValueError as e:
        sync_bn_error = str(e)
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "losses": [r.loss for r in history.steps],
        "sync_bn_error": sync_bn_error,
    }


def ddp_worker(rank: int, world_size: int, checkpoint: str, steps: int, batch: int) -> dict:
    """Both workers in one launch (a launch costs seconds: each process imports torch)."""
    return {
        "metrics": metrics_worker(rank, world_size, checkpoint),
        "equivalence": equivalence_worker(rank, world_size, steps, batch),
    }


class _FailOnRank:
    """A callback that raises on one rank at a given step (the others wait in all-reduce)."""

    def __init__(self, rank: int, step: int):
        self.rank, self.step = rank, step

    def on_step_end(self, history, model):
        if dist.get_rank() == self.rank and len(history.steps) == self.step:
            raise RuntimeError(f"rank {self.rank} fails at step {self.step}")


def failing_worker(rank: int, world_size: int) -> None:
    """fit on all ranks; rank 1 raises at step 2 while rank 0 waits for its gradients."""
    from d2lcnn.data import make_loader
    from d2lcnn.train import fit

    x, y = toy_data(64, seed=1)
    model = small_net()
    fit(
        model,
        make_loader(x, y, batch_size=8, shuffle=True, seed=3),
        epochs=1,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        callbacks=[_FailOnRank(1, 2)],
    )
