"""Phases: stretches of epochs and what trains in each, the schedule a strategy gives the training loop.

Apart from ``tlpipe.optimization`` (which builds on them) because it needs no torch: the strategies, and so
reading params.yaml, import it without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Phase:
    """Epochs ``first_epoch`` .. ``last_epoch`` (1-based, inclusive), training the top ``trainable_blocks`` blocks."""

    name: str
    first_epoch: int
    last_epoch: int
    trainable_blocks: int

    @property
    def epochs(self) -> int:
        return self.last_epoch - self.first_epoch + 1


def apply_phase(model: Any, phase: Phase) -> None:
    """Set ``requires_grad``: the head and the top ``phase.trainable_blocks`` body blocks train, nothing else."""
    for parameter in model.body.parameters():
        parameter.requires_grad_(False)
    blocks = model.body_blocks()
    for block in blocks[len(blocks) - phase.trainable_blocks :]:
        for parameter in block.parameters():
            parameter.requires_grad_(True)
    for parameter in model.head.parameters():
        parameter.requires_grad_(True)
