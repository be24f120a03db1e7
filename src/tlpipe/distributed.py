"""Data-parallel training across processes with PyTorch's DistributedDataParallel, launched by ``torchrun``.

``train.processes: N`` makes ``tlpipe train`` (and so ``dvc repro`` and the Prefect flow) start
itself under ``torchrun --standalone --nproc-per-node N``; ``torchrun -m tlpipe train`` does the
same by hand, across machines too. torchrun tells each process its rank through the environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); without it there is one process and nothing here does
anything. Each process joins the group (NCCL on GPUs, one GPU
per process; gloo on CPUs), trains the same model on its shard of every epoch's batches, and
DDP averages the gradients, so every process takes the same optimiser step.

- ``train.batch_size`` stays the effective batch: each process takes ``ceil(batch_size / N)`` of
  it, so the learning rates, the schedule and the number of steps of a recipe hold unchanged
  whatever N is.
- Every process scores the whole validation split with the same weights, so all agree on the best
  epoch and on early stopping without talking; only rank 0 writes outputs (states, checkpoints,
  logs).
- The contrastive phase (pairs) and the linear probe's feature encoding run whole in every process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tlpipe.errors import TrainingError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workers:
    """This process's place among the training processes (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 writes every output; the others only train."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def batch_size(self, effective: int) -> int:
        """Each process's share of the effective batch."""
        return -(-effective // self.world_size)

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This process's part of an epoch's example order, as ``DistributedSampler`` deals it out.

        The order is padded by repeating its start until it divides evenly, so every process runs
        the same number of steps (a process with fewer would wait forever for the others' gradients).
        """
        if not self.distributed:
            return order
        from torch.utils.data import DistributedSampler

        sampler = DistributedSampler(range(len(order)), self.world_size, self.rank, shuffle=False, drop_last=False)
        return order[list(sampler)]

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` in DistributedDataParallel over the parameters that train now (call again when that changes)."""
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        # Every trainable parameter reaches the loss: strategies unfreeze whole blocks, and parts outside
        # them (BERT's pooler) stay frozen, so DDP need not search the graph for unused ones each step.
        return DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=False
        )

    def accumulating(self, model: nn.Module, stepping: bool) -> contextlib.AbstractContextManager[None]:
        """Skip the gradient all-reduce on batches that only accumulate; it runs once, on the stepping batch."""
        if self.distributed and not stepping:
            return model.no_sync()
        return contextlib.nullcontext()

    def mean(self, total: float, count: int) -> float:
        """``sum(total) / sum(count)`` over every process (the epoch's training loss)."""
        if not self.distributed:
            return total / count
        import torch.distributed as dist

        # NCCL reduces only tensors on the GPU; gloo those on the CPU.
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
        sums = torch.tensor([total, float(count)], dtype=torch.float64, device=device)
        dist.all_reduce(sums)
        return float(sums[0] / sums[1])

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()


def launched_by_torchrun() -> bool:
    """Whether this process is one of several that torchrun started."""
    return "TORCHELASTIC_RUN_ID" in os.environ or "RANK" in os.environ


def launch_training(processes: int, params_path: Path) -> None:
    """Run ``tlpipe train`` as ``processes`` torchrun processes on this machine and wait for them."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
        "-m", "tlpipe", "--params", str(params_path), "train",
    ]  # fmt: skip
    log.info("Starting %d training processes: %s", processes, " ".join(command[1:]))
    status = subprocess.run(command, check=False).returncode
    if status != 0:
        raise TrainingError(
            f"the {processes} training processes (train.processes) failed with exit status {status}; their "
            "messages are above. Set train.processes: 1 to train in this process."
        )


def join_process_group() -> Workers:
    """Join the process group torchrun set up (once per process); one process of one without torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Workers()
    import torch.distributed as dist

    workers = Workers(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(workers.local_rank)
        dist.init_process_group(backend)
        if not workers.is_main:
            logging.getLogger("tlpipe").setLevel(logging.WARNING)  # one log, rank 0's
        log.info("Process group: %d processes (%s); this is rank %d", world_size, backend, workers.rank)
    return workers


def leave_process_group() -> None:
    """Tear the group down at the end of the stage (a no-op without one)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def process_group() -> Iterator[Workers]:
    """Join the group for the length of a stage, and leave it even when the stage fails."""
    try:
        yield join_process_group()
    finally:
        leave_process_group()
