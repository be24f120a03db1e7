"""What trains in a phase, and how it steps: the optimiser every strategy and the pair tuning share.

Learning rates follow one rule for every strategy: the head at ``head_learning_rate``, the top body
block at ``learning_rate``, and each block below at ``layer_decay`` times the one above it
(discriminative learning rates; 1 turns it off). Each phase starts a fresh AdamW (no weight decay on
biases and norms) and a linear warm-up then decay over the parameters it trains.

Both training loops, the epochs of ``tlpipe.training`` and the pair tuning of ``tlpipe.contrastive``,
run their batches through a ``StepRunner``: the loss under autocast, its backward pass through the
loss scaler, and an optimiser step every ``gradient_accumulation`` batches and after an epoch's last.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from tlpipe.config import TrainConfig

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")

Batch = TypeVar("Batch")


def block_learning_rates(train: TrainConfig, blocks: int) -> list[float]:
    """Learning rate of each body block, bottom to top: the top at ``learning_rate``, decaying downwards."""
    return [train.learning_rate * train.layer_decay ** (blocks - 1 - index) for index in range(blocks)]


def parameter_groups(model: Any, train: TrainConfig) -> list[dict[str, Any]]:
    """AdamW groups of the trainable parameters, named ``head`` and ``block<i>``, with no decay on biases and norms."""
    blocks = model.body_blocks()
    parts: list[tuple[str, nn.Module, float]] = [
        (f"block{index}", block, lr)
        for index, (block, lr) in enumerate(zip(blocks, block_learning_rates(train, len(blocks)), strict=True))
    ]
    parts.append(("head", model.head, train.head_learning_rate))
    groups = []
    for name, module, lr in parts:
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        for suffix, decay, members in (
            ("", train.weight_decay, [p for n, p in named if not _exempt_from_decay(n, p)]),
            (".no_decay", 0.0, [p for n, p in named if _exempt_from_decay(n, p)]),
        ):
            if members:
                groups.append({"name": name + suffix, "params": members, "lr": lr, "weight_decay": decay})
    return groups


def adamw(model: Any, train: TrainConfig) -> torch.optim.AdamW:
    """AdamW over ``parameter_groups(model, train)``, as one fused kernel per step where torch has one (CPU, CUDA)."""
    groups = parameter_groups(model, train)
    devices = {parameter.device.type for group in groups for parameter in group["params"]}
    # The default loops over the tensors, which makes a step over an encoder's parameters several times slower on
    # a few CPU cores (benchmarks/contrastive_step.py, benchmarks/results/contrastive_step.json).
    return torch.optim.AdamW(groups, fused=devices <= {"cpu", "cuda"})


def _exempt_from_decay(name: str, parameter: nn.Parameter) -> bool:
    # Biases and norm scales (1-d, as timm decides it; BatchNorm's are named bn1.weight) are not decayed.
    return name.endswith(NO_DECAY) or parameter.ndim <= 1


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    trainable: list[nn.Parameter],
    max_grad_norm: float,
) -> None:
    """One optimiser step on the accumulated gradients: unscale, clip their norm (0 = no clipping), step, reset."""
    if max_grad_norm > 0:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(trainable, max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def optimizer_steps(examples: int, batch_size: int, gradient_accumulation: int) -> int:
    """Optimiser steps in a ``StepRunner.epoch`` of ``examples``: one per ``gradient_accumulation`` batches or fewer."""
    return math.ceil(math.ceil(examples / batch_size) / gradient_accumulation)


def _no_context(stepping: bool) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


@dataclass(frozen=True)
class StepRunner:
    """Runs epochs of batches: forward in ``autocast_dtype``, ``train``'s gradient accumulation and clipping."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    trainable: list[nn.Parameter]
    train: TrainConfig
    device: torch.device
    autocast_dtype: torch.dtype | None

    def epoch(
        self,
        batches: Iterable[Batch],
        batch_count: int,
        loss_of: Callable[[Batch], torch.Tensor],
        accumulating: Callable[[bool], contextlib.AbstractContextManager[None]] = _no_context,
    ) -> Iterator[tuple[Batch, torch.Tensor, bool]]:
        """Each of the ``batch_count`` ``batches``, its loss, and whether an optimiser step followed it.

        ``loss_of`` runs under autocast, and ``accumulating(stepping)`` around it and the backward pass
        (DistributedDataParallel's ``no_sync`` on the batches that only accumulate).
        """
        accumulation = self.train.gradient_accumulation
        enabled = self.autocast_dtype is not None
        self.optimizer.zero_grad(set_to_none=True)
        for number, batch in enumerate(batches, start=1):
            stepping = number % accumulation == 0 or number == batch_count
            with accumulating(stepping):
                with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=enabled):
                    loss = loss_of(batch)
                self.scaler.scale(loss / accumulation).backward()
            if stepping:
                optimizer_step(self.optimizer, self.scheduler, self.scaler, self.trainable, self.train.max_grad_norm)
            yield batch, loss, stepping


def warmup_then_linear_decay(
    optimizer: torch.optim.Optimizer, warmup_ratio: float, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_ratio`` of the phase's steps, then linear decay to zero."""
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total_steps), total_steps)
