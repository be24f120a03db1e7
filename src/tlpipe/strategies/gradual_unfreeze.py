"""``gradual_unfreeze``: the head alone, then one more block from the top every ``epochs_per_block``
epochs until all train (ULMFiT), the last phase taking the remaining epochs."""

from __future__ import annotations

from pydantic import Field

from tlpipe.config import Section, TrainConfig
from tlpipe.phases import Phase
from tlpipe.strategies.base import Strategy


class GradualUnfreezeSettings(Section):
    """``train.gradual_unfreeze``: head first, then one more body block from the top every few epochs (ULMFiT)."""

    epochs_per_block: int = Field(1, ge=1, description="epochs before the next block down is unfrozen")


class GradualUnfreeze(Strategy):
    name = "gradual_unfreeze"
    summary = "one more block from the top every few epochs (ULMFiT)"
    settings_model = GradualUnfreezeSettings
    recipes = {
        "text": {"epochs": 8, "learning_rate": 5e-5, "head_learning_rate": 1e-3, "layer_decay": 1.0},
        "image": {"epochs": 8, "learning_rate": 1e-4, "head_learning_rate": 1e-3, "layer_decay": 1.0},  # not measured
    }

    def phases(self, train: TrainConfig, blocks: int) -> list[Phase]:
        epochs, per_block = train.epochs, self.settings(train).epochs_per_block
        phases = []
        first = 1
        for unfrozen in range(blocks + 1):
            last = epochs if unfrozen == blocks else min(first + per_block - 1, epochs)
            name = "head" if unfrozen == 0 else f"top {unfrozen}" if unfrozen < blocks else "all"
            phases.append(Phase(name, first, last, unfrozen))
            first = last + 1
            if first > epochs:
                break
        return phases


STRATEGY = GradualUnfreeze()
