"""Train a model: :func:`fit`, :func:`evaluate`, :func:`predict`, checkpoints and a History.

One training loop for every chapter::

    from d2lcnn.train import fit, evaluate, seed_everything

    gens = seed_everything(0)                       # gens.torch feeds the DataLoader
    history = fit(model, train_loader, val_loader, epochs=5, optimizer=opt)
    test_loss, test_acc = evaluate(model, test_loader)
    fig = history.plot()

What ``fit`` shows depends on where it runs, so that an executed chapter is reproducible
byte for byte (``progress="auto"``, ``live_plot="auto"``):

==================================  ====================  ================================
where                               progress bar          loss/accuracy figure
==================================  ====================  ================================
Jupyter, a person at the frontend   tqdm (``tqdm.auto``)  redrawn after every epoch
notebook executed by nbclient       none                  drawn once, at the end
terminal (stderr is a TTY)          tqdm on stderr        none (call ``history.plot()``)
anything else (pytest, CI, logs)    none                  none
==================================  ====================  ================================

A person at JupyterLab, Notebook or VS Code is told apart from nbclient, nbconvert and
papermill by the ``allow_stdin`` flag each execute request carries: frontends that can answer
``input()`` set it, batch executors do not. Timings are recorded in the History, never printed.

The same functions take a NumPy network (a :class:`d2lcnn.numpy.nn.Module`, e.g. a
``Sequential``) with a :mod:`d2lcnn.numpy.optim` optimizer, so a chapter can train both
backends with one loop and compare the Histories; nothing to wrap::

    seq = nd.nn.Sequential(nd.nn.Conv2d(1, 16, 3, padding=1, rng=rng), ...)
    history = fit(seq, train_loader, val_loader, epochs=5, optimizer=nd.optim.SGD(
        seq.parameters(), lr=0.1), scheduler=partial(cosine_lr, lr=0.1, total_steps=5))

Each torch batch becomes NumPy (``.numpy()``, inputs cast to the model's dtype); the loss is
cross-entropy (:func:`d2lcnn.numpy.losses.cross_entropy_forward`); the scheduler is a plain
function ``t -> lr`` (see :mod:`d2lcnn.schedules`); the run is on the CPU. See :func:`fit`.

Data parallelism needs no change to the script either: under ``torchrun --nproc_per_node=N
script.py`` (``distributed="auto"``, the default) ``fit`` joins the ranks in a process group
(gloo on the CPU, nccl for CUDA tensors), wraps the model in ``DistributedDataParallel``,
shards each epoch with a ``DistributedSampler`` and sums every logged loss and accuracy (and
``evaluate``'s) across the ranks, so all of them return the same global numbers; progress,
plots and checkpoints come from rank 0 only. See :func:`fit` and
:mod:`~d2lcnn.train.distributed`.

The package, one concern a module: :mod:`~d2lcnn.train.loop` (the one loop behind ``fit``,
``evaluate`` and ``predict``), :mod:`~d2lcnn.train.steps` (what a torch or a NumPy model does
in a step), :mod:`~d2lcnn.train.history`, :mod:`~d2lcnn.train.display` (progress bar, live
plot), :mod:`~d2lcnn.train.callbacks`, :mod:`~d2lcnn.train.checkpoint` and
:mod:`~d2lcnn.train.seeding`, and :mod:`~d2lcnn.train.distributed` (process group, sharded
loaders and sums across ranks).
"""

from d2lcnn.train.callbacks import EarlyStopping
from d2lcnn.train.checkpoint import load_checkpoint, save_checkpoint
from d2lcnn.train.display import _frontend  # noqa: F401  (tests tell frontends apart with it)
from d2lcnn.train.history import EpochRecord, History, StepRecord
from d2lcnn.train.loop import evaluate, fit, predict
from d2lcnn.train.seeding import Generators, seed_everything

__all__ = [
    "fit",
    "evaluate",
    "predict",
    "History",
    "StepRecord",
    "EpochRecord",
    "EarlyStopping",
    "save_checkpoint",
    "load_checkpoint",
    "seed_everything",
    "Generators",
]
