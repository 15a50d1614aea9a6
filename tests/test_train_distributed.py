"""fit and evaluate under data parallelism: two CPU processes joined by gloo on the loopback
interface (tests/distributed_support.py launches them as torchrun would) against one process.

What is asserted: every rank reports the same global metrics, equal to a single-process
evaluation of the same model (no validation sample counted twice: the shards are 51 + 50);
2 ranks at batch B equal 1 process at batch 2B after 20 steps; progress bar and checkpoint
on rank 0 only, the checkpoint loading into (and resuming) a plain model; without a group or
torchrun nothing changes (the rest of tests/test_train*.py).
"""

from __future__ import annotations

import shutil
import time

import pytest
import torch
import torch.distributed as dist
from distributed_support import ddp_worker, failing_worker, run_ranks, small_net, toy_data
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from d2lcnn.data import make_loader
from d2lcnn.train import evaluate, fit, load_checkpoint

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed gloo"
)

RANKS = 2
STEPS, BATCH = 20, 8  # the equivalence run: 20 steps at 8 samples per rank


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """One launch of 2 ranks (a launch costs seconds): (checkpoint path, results by rank)."""
    path = tmp_path_factory.mktemp("ddp") / "run.pt"
    return path, run_ranks(ddp_worker, RANKS, str(path), STEPS, BATCH, timeout=120)


@pytest.fixture
def two_rank_run(two_ranks):
    path, results = two_ranks
    return path, [r["metrics"] for r in results]


def _metrics(history: dict) -> dict:
    """The History's numbers that must agree across ranks (times are each rank's own)."""
    steps = {k: v for k, v in history["steps"].items() if k != "time"}
    epochs = {k: v for k, v in history["epochs"].items() if k != "time"}
    return {"steps": steps, "epochs": epochs, "stop_reason": history["stop_reason"]}


def test_every_rank_reports_the_same_global_metrics(two_rank_run):
    _, results = two_rank_run
    assert [r["rank"] for r in results] == list(range(RANKS))
    first = results[0]
    for other in results[1:]:
        assert _metrics(other["history"]) == _metrics(first["history"])
        assert other["evaluate"] == first["evaluate"]
        for name, value in first["state"].items():  # DDP kept the replicas identical
            torch.testing.assert_close(other["state"][name], value, rtol=0, atol=0)
    # 64 samples, 8 per rank per step: 4 steps of the global batch of 16 per epoch
    assert first["history"]["steps"]["epoch"] == [1] * 4 + [2] * 4
    assert all(r["is_plain_model"] for r in results)  # fit never replaces the user's model


def test_global_metrics_equal_a_single_process_evaluation(two_rank_run):
    _, results = two_rank_run
    model = small_net()
    model.load_state_dict(results[0]["state"])
    xv, yv = toy_data(101, seed=2)
    val = make_loader(xv, yv, batch_size=16, shuffle=False)
    loss, acc = evaluate(model, val)
    dist_loss, dist_acc = results[0]["evaluate"]
    # sums of loss * n over 51 + 50 samples, divided once: equal up to float32 round-off
    assert dist_loss == pytest.approx(loss, rel=1e-6)
    assert dist_acc == acc  # counts of correct predictions: exact
    # the last epoch's validation is the same evaluation of the same final model
    epochs = results[0]["history"]["epochs"]
    assert epochs["val_loss"][-1] == pytest.approx(loss, rel=1e-6)
    assert epochs["val_accuracy"][-1] == acc


def test_only_rank_0_shows_progress_and_writes_the_checkpoint(two_rank_run, tmp_path):
    path, results = two_rank_run
    assert "epoch 2/2" in results[0]["stderr"]  # tqdm's bar, on rank 0
    assert all(r["stderr"] == "" for r in results[1:])
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no stray temp files


def test_the_checkpoint_loads_into_and_resumes_a_plain_model(two_rank_run, tmp_path):
    path, results = two_rank_run
    plain = small_net()
    state = load_checkpoint(path, plain)  # strict: no "module." prefixes from DDP
    assert state["epoch"] == 2
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(value, results[0]["state"][name], rtol=0, atol=0)
    # one more epoch in a single process, resumed from the 2-rank checkpoint
    copy = tmp_path / "resume.pt"
    shutil.copy(path, copy)
    x, y = toy_data(64, seed=1)
    model = small_net()
    history = fit(
        model,
        make_loader(x, y, batch_size=16, shuffle=True, seed=3),
        epochs=3,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        checkpoint=copy,
        resume=True,
    )
    assert [e.epoch for e in history.epochs] == [1, 2, 3]
    assert history.epochs[:2] == [
        type(history.epochs[0])(*values)
        for values in zip(*results[0]["history"]["epochs"].values(), strict=True)
    ]


def test_two_ranks_at_batch_b_equal_one_process_at_batch_2b(two_ranks):
    steps, batch = STEPS, BATCH
    results = [r["equivalence"] for r in two_ranks[1]]
    # one process, global batch 2B, the same order: the permutation a DistributedSampler
    # draws for epoch e with seed 5, which each rank strides through (rank r: r, r+2, ...)
    x, y = toy_data(steps * batch * RANKS // 2, seed=4)
    dataset = TensorDataset(x, y)
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=5)
    loader = DataLoader(dataset, batch_size=RANKS * batch, sampler=sampler)
    model = small_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = fit(model, loader, epochs=2, optimizer=opt)
    assert len(history.steps) == steps
    for r in results:
        assert r["losses"] == pytest.approx([s.loss for s in history.steps], rel=1e-5)
        for name, value in model.state_dict().items():
            torch.testing.assert_close(r["state"][name], value, rtol=1e-5, atol=1e-5)
        assert "sync_batchnorm=True needs a GPU" in r["sync_bn_error"]
    assert sampler.epoch == 2  # fit called set_epoch every epoch: each epoch reshuffles


def test_a_rank_that_raises_ends_every_rank_with_its_error():
    start = time.monotonic()
    # rank 0, waiting in an all-reduce, fails too (gloo: connection closed) or is stopped
    with pytest.raises(RuntimeError, match=r"(?s)rank 1: .*RuntimeError: rank 1 fails at step 2"):
        run_ranks(failing_worker, RANKS, timeout=60)
    assert time.monotonic() - start < 60  # nobody hangs


# ----------------------------------------------------------------------------- in one process


def test_distributed_must_be_auto_true_or_false():
    x, y = toy_data(8, seed=0)
    loader = make_loader(x, y, batch_size=4, shuffle=False)
    model = small_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="distributed must be 'auto', True or False, got 'yes'"):
        fit(model, loader, epochs=1, optimizer=opt, distributed="yes")
    with pytest.raises(ValueError, match="sync_batchnorm must be True or False, got 1"):
        fit(model, loader, epochs=1, optimizer=opt, sync_batchnorm=1)


def test_distributed_true_without_a_group_or_torchrun_is_refused(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    x, y = toy_data(8, seed=0)
    loader = make_loader(x, y, batch_size=4, shuffle=False)
    model = small_net()
    with pytest.raises(ValueError, match="distributed=True needs an initialised process group"):
        evaluate(model, loader, distributed=True)
    assert evaluate(model, loader, distributed=False) == evaluate(model, loader)


@pytest.mark.parametrize(("n", "world_size"), [(101, 2), (3, 4), (12, 3)])
def test_evaluation_shards_cover_every_sample_once(n, world_size):
    from d2lcnn.train.distributed import _eval_shard, _Ranks

    x, y = toy_data(n, seed=0)
    loader = make_loader(x, y, batch_size=4, shuffle=True)
    seen = []
    for rank in range(world_size):
        shard, split = _eval_shard(loader, _Ranks(rank, world_size, True), "evaluate")
        assert split and shard.batch_size == 4
        seen += [int(i) for i in shard.sampler]
    assert sorted(seen) == list(range(n))  # no padding, no sample twice
