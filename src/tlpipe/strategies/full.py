"""``full``: every body block trains from the first epoch."""

from __future__ import annotations

from tlpipe.strategies.base import AllBlocks


class Full(AllBlocks):
    name = "full"
    summary = "every block trains from the first epoch"
    # Images: a starting point, not measured (benchmarks/image_strategies.py measured the probe and freeze_unfreeze).
    recipes = {
        "text": {"epochs": 5, "learning_rate": 5e-5, "head_learning_rate": 1e-3, "layer_decay": 1.0},
        "image": {"epochs": 6, "learning_rate": 1e-4, "head_learning_rate": 1e-3, "layer_decay": 1.0},
    }


STRATEGY = Full()
