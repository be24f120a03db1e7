"""``bitfit``: only the body's bias terms and the head train (BitFit, Ben Zaken et al., 2022), so a tuned
body differs from the pretrained one in about 0.1% of its parameters."""

from __future__ import annotations

from typing import Any

from tlpipe.config import TrainConfig
from tlpipe.phases import Phase, apply_phase
from tlpipe.strategies.base import Strategy


class BitFit(Strategy):
    name = "bitfit"
    summary = "only the body's biases and the head train (BitFit)"
    # Biases at the top of the paper's learning-rate range (1e-4 to 1e-3), as small biases move slowly. Epochs:
    # 10 beat 5 beyond the folds' spread on both datasets at 16 per class, seeds 0 and 1 (benchmarks/recipes.py,
    # benchmarks/results/recipes.md); the other keys are not cross-validated yet.
    recipes = {"text": {"epochs": 10, "learning_rate": 1e-3, "head_learning_rate": 1e-3, "layer_decay": 1.0}}
    not_for = "it has only been tried on transformer encoders, whose biases carry it"

    def phases(self, train: TrainConfig, blocks: int) -> list[Phase]:
        return [Phase("biases", 1, train.epochs, blocks)]

    def apply_phase(self, model: Any, phase: Phase) -> None:
        apply_phase(model, phase)
        for name, parameter in model.body.named_parameters():
            if not name.endswith("bias"):
                parameter.requires_grad_(False)


STRATEGY = BitFit()
