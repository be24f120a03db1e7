"""Data-parallel pieces that need no second process: sharding, batch shares, loader workers."""

from __future__ import annotations

import subprocess

import pytest
import torch

from tlpipe.cli import run_stage
from tlpipe.config import TrainConfig
from tlpipe.distributed import Workers, join_process_group
from tlpipe.errors import TrainingError
from tlpipe.runtime import Runtime
from tlpipe.training import loader_workers


@pytest.mark.parametrize(("examples", "world_size"), [(10, 2), (11, 2), (7, 3), (2, 4)])
def test_shards_cover_every_example_in_equal_lengths(examples: int, world_size: int) -> None:
    order = torch.randperm(examples, generator=torch.Generator().manual_seed(0))

    shards = [Workers(rank, world_size).shard(order) for rank in range(world_size)]

    assert len({len(shard) for shard in shards}) == 1
    assert set(torch.cat(shards).tolist()) == set(order.tolist())
    assert sum(len(shard) for shard in shards) - examples < world_size  # padding only to divide evenly


def test_one_process_keeps_the_whole_order_and_batch() -> None:
    order = torch.arange(9)

    assert torch.equal(Workers().shard(order), order)
    assert Workers().batch_size(16) == 16


def test_each_process_takes_its_share_of_the_effective_batch() -> None:
    assert Workers(0, 2).batch_size(16) == 8
    assert Workers(1, 3).batch_size(16) == 6


def test_without_torchrun_there_is_one_process(monkeypatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)

    workers = join_process_group()

    assert (workers.rank, workers.world_size, workers.is_main, workers.distributed) == (0, 1, True, False)


def test_loader_workers_are_none_on_a_cpu_and_some_on_a_gpu_unless_set(monkeypatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    cpu, gpu = Runtime(torch.device("cpu"), None), Runtime(torch.device("cuda", 1), torch.bfloat16)

    assert loader_workers(TrainConfig(), cpu) == 0
    assert loader_workers(TrainConfig(), gpu) == 4
    assert loader_workers(TrainConfig(loader_workers=3), cpu) == 3
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert loader_workers(TrainConfig(), gpu) == 1


def test_train_processes_above_one_launch_the_stage_under_torchrun(project, monkeypatch) -> None:
    launched: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda command, check: launched.append(command) or _Exit(0))
    for var in ("RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    _set_processes(project, 3)

    run_stage("train")

    [command] = launched
    assert command[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=3"]
    assert command[-5:] == ["-m", "tlpipe", "--params", "params.yaml", "train"]


def test_failed_training_processes_are_one_error_that_says_how_to_train_in_one(project, monkeypatch) -> None:
    monkeypatch.setattr(subprocess, "run", lambda command, check: _Exit(1))
    _set_processes(project, 2)

    with pytest.raises(TrainingError, match="2 training processes .* failed with exit status 1.*train.processes: 1"):
        run_stage("train")


class _Exit:
    def __init__(self, returncode: int) -> None:
        self.returncode = returncode


def _set_processes(project, processes: int) -> None:
    import yaml

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["processes"] = processes
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
