"""``freeze_unfreeze``: the head alone for ``head_epochs``, then every block with layer-wise decayed
learning rates (fastai's ``fine_tune``)."""

from __future__ import annotations

from pydantic import Field

from tlpipe.config import Section, TrainConfig
from tlpipe.phases import Phase
from tlpipe.strategies.base import Strategy


class FreezeUnfreezeSettings(Section):
    """``train.freeze_unfreeze``: train the head with the body frozen, then everything (fastai's fine_tune)."""

    head_epochs: int | None = Field(
        1, ge=1, description="epochs with the body frozen, before unfreezing (null: the strategy's recipe)"
    )


class FreezeUnfreeze(Strategy):
    name = "freeze_unfreeze"
    summary = "head, then all with layer-wise decayed learning rates"
    settings_model = FreezeUnfreezeSettings
    recipes = {
        # benchmarks/recipes.py (benchmarks/results/recipes.md), cross-validated at 64 per class: 1e-4 beat 5e-5
        # beyond the folds' spread on both text datasets (seed 0; seed 1 agreed).
        "text": {
            "epochs": 5,
            "learning_rate": 1e-4,
            "head_learning_rate": 1e-3,
            "layer_decay": 0.8,
            "freeze_unfreeze": {"head_epochs": 1},
        },
        # benchmarks/image_strategies.py (benchmarks/results/image_strategies.md): 12 epochs, 2 head-only, 3e-4
        # beat the earlier 6-epoch recipe by a wide margin on both datasets and came close behind the probe.
        "image": {
            "epochs": 12,
            "learning_rate": 3e-4,
            "head_learning_rate": 3e-3,
            "layer_decay": 0.8,
            "freeze_unfreeze": {"head_epochs": 2},
        },
    }

    def phases(self, train: TrainConfig, blocks: int) -> list[Phase]:
        head = self.settings(train).head_epochs
        return [Phase("head", 1, head, 0), Phase("all", head + 1, train.epochs, blocks)]

    def refuses(self, train: TrainConfig) -> str | None:
        head_epochs = self.settings(train).head_epochs
        if head_epochs is not None and head_epochs >= train.epochs:
            return (
                f"freeze_unfreeze.head_epochs ({head_epochs}) must be less than epochs ({train.epochs}), "
                "or the body never unfreezes"
            )
        if train.layer_decay == 1.0:
            return (
                "freeze_unfreeze unfreezes with lower learning rates for earlier layers: "
                "set layer_decay below 1 (for example 0.8), or leave it to the recipe (null)"
            )
        return None


STRATEGY = FreezeUnfreeze()
