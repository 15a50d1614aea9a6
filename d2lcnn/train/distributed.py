"""Data-parallel training for :func:`~d2lcnn.train.fit`, :func:`~d2lcnn.train.evaluate` and
:func:`~d2lcnn.train.predict` under ``torchrun``: the process group, the sharded loaders and
the sums across ranks.

Run unchanged with ``torchrun --nproc_per_node=N script.py``: every rank holds a replica of
the model (``DistributedDataParallel`` all-reduces the gradients, so the replicas stay
equal), trains on its own shard of each epoch, and reports the same global numbers.

- Process group: used if one is initialised; else, with ``distributed="auto"``, initialised
  from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``)
  with ``gloo`` (CPU tensors) and, on a CUDA machine, ``nccl`` for CUDA tensors.
- Training data: a ``DataLoader`` is rebuilt with a ``DistributedSampler`` seeded with the
  loader's own generator seed (broadcast from rank 0, so every rank draws the same
  permutation); ``set_epoch(epoch)`` each epoch reshuffles. Each rank keeps the loader's
  ``batch_size``: the global batch is ``world_size * batch_size``. Without ``drop_last`` the
  sampler pads the epoch to a multiple of ``world_size`` with the first samples of the
  permutation (so every rank runs the same number of steps, as DDP needs).
- Evaluation data: rank ``r`` takes samples ``r, r + N, r + 2N, ...`` in order, with NO
  padding: every sample is counted exactly once. Losses (times batch size), sample counts
  and correct counts are summed across ranks in float64, then divided: the global mean,
  not a mean of per-rank means.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, Sampler

__all__: list[str] = []  # internal: the options of fit and evaluate reach it

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
_MODES = ("auto", True, False)


@dataclass(frozen=True)
class _Ranks:
    """Where this process stands: rank ``rank`` of ``world_size``; ``enabled`` False for a
    single-process run (rank 0 of 1, nothing to reduce)."""

    rank: int = 0
    world_size: int = 1
    enabled: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that shows progress, draws and writes checkpoints."""
        return self.rank == 0

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """``values`` summed over the ranks (float64), the same list on every rank."""
        if not self.enabled:
            return list(values)
        dev = device if device.type == "cuda" else torch.device("cpu")
        t = torch.tensor(values, dtype=torch.float64, device=dev)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


_SINGLE = _Ranks()


def _ranks(distributed, who: str) -> _Ranks:
    """The ranks ``who`` (fit or evaluate) runs on, initialising the group if asked to."""
    if distributed not in _MODES or not isinstance(distributed, bool | str):
        raise ValueError(f"{who}: distributed must be 'auto', True or False, got {distributed!r}")
    if distributed is False:
        return _SINGLE
    initialised = dist.is_available() and dist.is_initialized()
    if not initialised:
        if not (dist.is_available() and all(v in os.environ for v in _TORCHRUN_VARS)):
            if distributed is True:
                raise ValueError(
                    f"{who}: distributed=True needs an initialised process group or torchrun's "
                    f"environment variables {_TORCHRUN_VARS}; found neither"
                )
            return _SINGLE
        _init_group()
    return _Ranks(dist.get_rank(), dist.get_world_size(), True)


def _init_group() -> None:
    """Initialise the default group from torchrun's variables: gloo for CPU tensors, and
    nccl for CUDA tensors on a CUDA machine (each rank on the GPU ``LOCAL_RANK``)."""
    if torch.cuda.is_available() and dist.is_nccl_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        backend = "cpu:gloo,cuda:nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend)
    atexit.register(_destroy_group)


def _destroy_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _data_parallel(
    ranks: _Ranks, sync_batchnorm: bool
) -> Callable[[torch.nn.Module, torch.device], torch.nn.Module] | None:
    """What wraps the model for training (``None`` in a single process)."""
    if not ranks.enabled:
        return None

    def wrap(model: torch.nn.Module, dev: torch.device) -> torch.nn.Module:
        if sync_batchnorm and dev.type == "cpu":
            raise ValueError(
                "fit: sync_batchnorm=True needs a GPU (torch's SyncBatchNorm does not run on "
                f"the CPU), got device {dev}; on the CPU use a model without BatchNorm, or "
                "sync_batchnorm=False (each rank normalises with its own shard's statistics)"
            )
        if sync_batchnorm:
            # In place for the children, so the optimizer's parameters stay the model's.
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if dev.type == "cuda":
            index = dev.index if dev.index is not None else torch.cuda.current_device()
            return DistributedDataParallel(model, device_ids=[index])
        return DistributedDataParallel(model)  # broadcasts rank 0's weights to all ranks

    return wrap


# ----------------------------------------------------------------------------- loaders


def _train_shard(loader, ranks: _Ranks, who: str):
    """``loader`` rebuilt to yield this rank's shard of every epoch (see the module doc).

    A loader that already has a ``DistributedSampler``, and any iterable that is not a
    ``DataLoader``, are taken as sharded by the caller and returned as they are.
    """
    if not ranks.enabled or not isinstance(loader, DataLoader):
        return loader
    if isinstance(loader.sampler, DistributedSampler):
        return loader
    shuffle = _check_plain(loader, who)
    seed = loader.generator.initial_seed() if loader.generator is not None else 0
    seed = int(ranks.sum([seed if ranks.is_main else 0], torch.device("cpu"))[0])  # rank 0's
    sampler = DistributedSampler(
        loader.dataset,
        num_replicas=ranks.world_size,
        rank=ranks.rank,
        shuffle=shuffle,
        seed=seed,
        drop_last=loader.drop_last,
    )
    return _with_sampler(loader, sampler)


class _Strided(Sampler):
    """Samples ``rank, rank + world_size, ...`` of ``n``: each sample on exactly one rank."""

    def __init__(self, n: int, rank: int, world_size: int):
        self.indices = range(rank, n, world_size)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _eval_shard(loader, ranks: _Ranks, who: str) -> tuple[object, bool]:
    """``(this rank's part of loader, whether it was split)``: without padding, so the sums
    over ranks count every sample once. Anything but a plain ``DataLoader`` runs whole on
    every rank (and then needs no sums)."""
    if not ranks.enabled or not isinstance(loader, DataLoader):
        return loader, False
    if isinstance(loader.sampler, DistributedSampler):
        return loader, True  # the caller sharded it; trust that it does not pad
    _check_plain(loader, who)
    sampler = _Strided(len(loader.dataset), ranks.rank, ranks.world_size)
    return _with_sampler(loader, sampler), True


def _set_epoch(loader, epoch: int) -> None:
    """Reshuffle a ``DistributedSampler`` for ``epoch`` (the same permutation on all ranks)."""
    sampler = getattr(loader, "sampler", None)
    if callable(getattr(sampler, "set_epoch", None)):
        sampler.set_epoch(epoch)


def _check_plain(loader: DataLoader, who: str) -> bool:
    """Refuse loaders whose order cannot be sharded faithfully; True if it shuffles."""
    sampler = loader.sampler
    kind = type(sampler).__name__
    if kind not in ("RandomSampler", "SequentialSampler") or type(loader.batch_sampler) is not (
        BatchSampler
    ):
        raise ValueError(
            f"{who}: to shard a DataLoader across ranks it must use shuffle=True or False with "
            f"batch_size (got a {kind}); or pass a DataLoader with a DistributedSampler"
        )
    if kind == "RandomSampler" and (sampler.replacement or sampler._num_samples is not None):
        raise ValueError(
            f"{who}: a RandomSampler with replacement or num_samples cannot be sharded; "
            "pass a DataLoader with a DistributedSampler"
        )
    return kind == "RandomSampler"


def _with_sampler(loader: DataLoader, sampler: Sampler) -> DataLoader:
    """A copy of ``loader`` that draws its indices from ``sampler``."""
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        generator=loader.generator,
        prefetch_factor=loader.prefetch_factor,
        persistent_workers=loader.persistent_workers,
    )
